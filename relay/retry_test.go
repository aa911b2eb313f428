package relay

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRetryAfter: a refusal's Retry-After reaches the caller, bounded; a
// relay that is full (507) is not worth retrying soon, one that is busy
// (429, 503) is.
func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		status    int
		after     string
		wait      time.Duration
		retryable bool
	}{
		{http.StatusTooManyRequests, "2", 2 * time.Second, true},
		{http.StatusServiceUnavailable, "", 0, true},
		{http.StatusTooManyRequests, "forever", 0, true},
		{http.StatusTooManyRequests, "99999999", maxRetryAfter * time.Second, true},
		{http.StatusInsufficientStorage, "60", time.Minute, false},
		{http.StatusForbidden, "", 0, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.after != "" {
				w.Header().Set("Retry-After", c.after)
			}
			writeJSON(w, c.status, apiError{Error: "no"})
		}))
		_, err := NewClient(srv.URL, nil).Read(context.Background(), [32]byte{1}, 0, 10)
		srv.Close()
		var se *StatusError
		if !errors.As(err, &se) || se.Status != c.status || se.RetryAfter != c.wait {
			t.Errorf("%d, Retry-After %q: %v (%+v), want a wait of %s", c.status, c.after, err, se, c.wait)
		}
		if IsRetryable(err) != c.retryable {
			t.Errorf("%d: retryable %v, want %v", c.status, IsRetryable(err), c.retryable)
		}
	}
}

// A stall before any connection is made (nothing answered the dial:
// through Tor, an onion service that is down) is ErrConnectStalled, not
// a relay that "accepts connections but sends nothing"; a stall after
// the connection is ErrStalled alone.
func TestClientConnectStalls(t *testing.T) {
	ctx := context.Background()
	blocked := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done() // a SOCKS CONNECT that tor never answers
		return nil, ctx.Err()
	}}}
	c := NewClient("http://relay.invalid", blocked).Stall(200 * time.Millisecond)
	if _, err := c.Info(ctx); !errors.Is(err, ErrConnectStalled) || !errors.Is(err, ErrStalled) {
		t.Errorf("a dial that never completes: %v, want ErrConnectStalled", err)
	}
	c = NewClient(hangingListener(t), nil).Stall(200 * time.Millisecond)
	if _, err := c.Info(ctx); !errors.Is(err, ErrStalled) || errors.Is(err, ErrConnectStalled) {
		t.Errorf("a relay that accepts and never answers: %v, want ErrStalled alone", err)
	}
}

// An onion service gets OnionConnectStall to be connected to (tor fetches
// its descriptor and builds two circuits first), where a direct relay
// gets the client's stall; once connected, the client's stall applies to
// both. The dialer here takes 400 ms to connect to a server that answers
// at once: the onion name waits for it, the direct one gives up at
// 150 ms.
func TestClientOnionConnectStall(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{})
	}))
	defer srv.Close()
	slow := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		select {
		case <-time.After(400 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}}}
	onion := NewClient("http://"+strings.Repeat("a", 56)+".onion", slow).Stall(150 * time.Millisecond)
	onion.onionStall = 5 * time.Second
	if _, err := onion.Info(ctx); err != nil && errors.Is(err, ErrStalled) {
		t.Errorf("an onion service connected in 400 ms: %v, want its connect stall to wait", err)
	}
	direct := NewClient("http://relay.invalid", slow).Stall(150 * time.Millisecond)
	direct.onionStall = 5 * time.Second
	if _, err := direct.Info(ctx); !errors.Is(err, ErrConnectStalled) {
		t.Errorf("a direct relay connected in 400 ms: %v, want ErrConnectStalled at 150 ms", err)
	}
}
