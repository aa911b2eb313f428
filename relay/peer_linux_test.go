package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer for a logger written from several
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAcceptLogNamesPeer: at Debug, the relay logs each connection it
// accepts: on a Unix socket with no remote address and the connecting
// process's ID, on TCP with the client's address. The Tor end-to-end test
// (cmd/pursuance/torsuite) checks from these records that every
// connection to an onion relay came from its own tor.
func TestAcceptLogNamesPeer(t *testing.T) { forEachStore(t, testAcceptLogNamesPeer) }

func testAcceptLogNamesPeer(t *testing.T, be backend) {
	var logs lockedBuffer
	st, err := be.open(t)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := NewServer(st, Config{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	sock := filepath.Join(t.TempDir(), "r.sock")
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, ln := range []net.Listener{uln, tln} {
		go func() { srv.Serve(ctx, ln); done <- struct{}{} }()
	}
	defer func() { cancel(); <-done; <-done }()

	get := func(dial func(ctx context.Context, _, _ string) (net.Conn, error)) {
		c := &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: 10 * time.Second}
		resp, err := c.Get("http://relay/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.CloseIdleConnections()
	}
	var d net.Dialer
	get(func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "unix", sock) })
	var client string
	get(func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, err := d.DialContext(ctx, "tcp", tln.Addr().String())
		if err == nil {
			client = c.LocalAddr().String()
		}
		return c, err
	})

	var unixSeen, tcpSeen bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var r struct {
			Msg, Network, Local, Remote string
			PeerPID                     int `json:"peer_pid"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Msg != "connection accepted" {
			continue
		}
		switch r.Network {
		case "unix":
			unixSeen = true
			// An unnamed Unix socket's address is "@" on Linux.
			if r.Local != sock || (r.Remote != "" && r.Remote != "@") || r.PeerPID != os.Getpid() {
				t.Errorf("a Unix connection logged as %s; want local %s, no remote, peer_pid %d", line, sock, os.Getpid())
			}
		case "tcp":
			tcpSeen = true
			if r.Local != tln.Addr().String() || r.Remote != client || r.PeerPID != 0 {
				t.Errorf("a TCP connection logged as %s; want local %s, remote %s, no peer_pid", line, tln.Addr(), client)
			}
		}
	}
	if !unixSeen || !tcpSeen {
		t.Errorf("accepted connections not logged (unix %v, tcp %v):\n%s", unixSeen, tcpSeen, logs.String())
	}
}
