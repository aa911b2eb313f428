package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pursuance/pursuance/relay"
)

// probeTimeout bounds ProbeRelay.
const probeTimeout = 5 * time.Second

// ErrNotRelay is wrapped by ProbeRelay's error for a server that answers,
// but not as a relay.
var ErrNotRelay = relay.ErrNotRelay

// ProbeRelay asks the server at url whether it is a relay of the protocol
// this program speaks, within a few seconds. It returns nil for a relay,
// an error wrapping ErrNotRelay for a server that answered otherwise (a
// web site, a relay of another version), and the network's error for one
// that did not answer (RelayError words it for people).
func ProbeRelay(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := relay.NewClient(url, nil).Info(ctx)
	if err != nil && !errors.Is(err, ErrNotRelay) {
		return fmt.Errorf("%s: %s", url, RelayError(err))
	}
	if err != nil {
		return fmt.Errorf("%s is %w", url, err)
	}
	return nil
}
