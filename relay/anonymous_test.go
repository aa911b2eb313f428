package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestAnonymousListener: on the listener an onion service's tor forwards
// to, the local tor's address is not a client's, so no per-address limit
// counts it: a sixth connection from it is served where ConnsPerAddr is
// 3 (without the wrapper it is answered 429).
func TestAnonymousListener(t *testing.T) { forEachStore(t, testAnonymousListener) }

func testAnonymousListener(t *testing.T, be backend) {
	st, err := be.open(t)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := NewServer(st, Config{ConnsPerAddr: 3, ReadsPerAddr: 1, MaxConnections: 8, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, AnonymousListener(ln)) }()
	defer func() { cancel(); <-done }()
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range 6 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	// Each connection answers a request, the sixth as the first: none
	// is refused for its address.
	for i, c := range open {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 12)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "HTTP/1.1 200" {
			t.Errorf("connection %d: %q %v", i+1, buf, err)
		}
	}
}
