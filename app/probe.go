package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
// this program speaks, within a few seconds, over connections dial opens
// (nil: directly; see HTTPClient), isolated from every other connection
// (a random isolation string). It returns nil for a relay,
// an error wrapping ErrNotRelay for a server that answered otherwise (a
// web site, a relay of another version), and the network's error for one
// that did not answer (RelayError words it for people).
func ProbeRelay(ctx context.Context, url string, dial DialFunc) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	iso := make([]byte, 16)
	rand.Read(iso)
	_, err := relay.NewClient(url, HTTPClient(dial, "probe-"+hex.EncodeToString(iso))).Info(ctx)
	if err != nil && !errors.Is(err, ErrNotRelay) {
		return fmt.Errorf("%s: %s", url, RelayError(err))
	}
	if err != nil {
		return fmt.Errorf("%s is %w", url, err)
	}
	return nil
}
