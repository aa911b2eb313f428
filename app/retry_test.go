package app

import (
	"errors"
	"testing"
	"time"

	"github.com/pursuance/pursuance/relay"
)

// TestRetryWait: a sync backs off by its own delay, or by the relay's
// Retry-After when that is longer, and leaves for the next sync a relay
// that asks for more than a sync waits.
func TestRetryWait(t *testing.T) {
	const delay = 400 * time.Millisecond
	for _, c := range []struct {
		err  error
		wait time.Duration
		ok   bool
	}{
		{errors.New("connection reset"), delay, true},
		{&relay.StatusError{Status: 503}, delay, true},
		{&relay.StatusError{Status: 429, RetryAfter: 100 * time.Millisecond}, delay, true},
		{&relay.StatusError{Status: 429, RetryAfter: 2 * time.Second}, 2 * time.Second, true},
		{&relay.StatusError{Status: 429, RetryAfter: time.Minute}, time.Minute, false},
	} {
		wait, ok := retryWait(c.err, delay)
		if wait != c.wait || ok != c.ok {
			t.Errorf("%v: wait %s %v, want %s %v", c.err, wait, ok, c.wait, c.ok)
		}
	}
}
