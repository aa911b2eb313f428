package tortest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// reachTimeout bounds the wait for an onion service to answer through
// the client, from the moment both tors have bootstrapped. It takes a few
// seconds on an idle machine: the service's introduction circuits, its
// descriptor's upload, the client's fetch and two circuits more.
const reachTimeout = 2 * time.Minute

// TestNetworkUp: the shared network comes up, with the relays tor made
// from the identity keys written here, every relay flagged Guard and HSDir
// and none Exit.
func TestNetworkUp(t *testing.T) {
	Skip(t)
	n := Shared(t)
	t.Logf("network of %d authorities and %d relays up in %v", numAuthorities, numRelays, n.UpAfter().Round(time.Millisecond))
	for _, nd := range n.nodes {
		b, err := os.ReadFile(filepath.Join(nd.dir, "fingerprint"))
		if err != nil {
			t.Fatal(err)
		}
		if want := nd.name + " " + nd.fingerprint; strings.TrimSpace(string(b)) != want {
			t.Errorf("tor's fingerprint file says %q, the key written here is %q", strings.TrimSpace(string(b)), want)
		}
	}
	c, err := fetchConsensus(t.Context(), n.nodes[0].dirPort)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.routers) != len(n.nodes) {
		t.Errorf("consensus lists %d relays, want %d", len(c.routers), len(n.nodes))
	}
	for _, r := range c.routers {
		for _, f := range r.flags {
			if f == "Exit" {
				t.Errorf("%s has the Exit flag: nothing should leave the network", r.nickname)
			}
		}
	}
}

// TestOnionService: a client reaches two onion services of a second tor,
// one from HiddenServiceDir in its torrc and one made with ADD_ONION,
// through its SOCKS port with the onion name sent to tor (never resolved
// here). It logs how long each step took.
func TestOnionService(t *testing.T) {
	Skip(t)
	n := Shared(t)
	const greeting = "hello through the private Tor network"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, greeting)
	}))
	defer srv.Close()
	target := srv.Listener.Addr().String()
	hsDir := filepath.Join(t.TempDir(), "hs")

	// Both tors at once, as a test of the product would.
	start := time.Now()
	var client, service *Client
	var clientErr, serviceErr error
	var wg sync.WaitGroup
	wg.Go(func() { client, clientErr = n.startClient(t.Context(), t.TempDir(), nil) })
	wg.Go(func() {
		service, serviceErr = n.startClient(t.Context(), t.TempDir(), []string{
			"HiddenServiceDir " + hsDir,
			"HiddenServicePort 80 " + target,
		})
	})
	wg.Wait()
	for _, c := range []*Client{client, service} {
		if c != nil && c.proc != nil {
			t.Cleanup(func() {
				c.Stop()
				if t.Failed() {
					t.Logf("tor %s:\n%s", c.DataDir, c.proc.diagnostics())
				}
			})
		}
	}
	if err := errors.Join(clientErr, serviceErr); err != nil {
		t.Fatal(err)
	}
	t.Logf("client bootstrapped in %v, onion service's tor in %v", client.Bootstrapped.Round(time.Millisecond), service.Bootstrapped.Round(time.Millisecond))

	// The client's consensus is the private network's, all on loopback.
	ns, err := client.Control(t.Context(), "GETINFO ns/all")
	if err != nil {
		t.Fatal(err)
	}
	relays := 0
	for _, l := range ns {
		if f := strings.Fields(l); len(f) > 6 && f[0] == "r" {
			relays++
			if f[6] != "127.0.0.1" {
				t.Errorf("the client's consensus has a relay at %s: %s", f[6], l)
			}
		}
	}
	if relays != len(n.nodes) {
		t.Errorf("the client's consensus has %d relays, want %d", relays, len(n.nodes))
	}

	// An ADD_ONION service, watching its descriptor's upload.
	events, err := service.dialControl(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	if _, err := events.do("SETEVENTS HS_DESC"); err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	reply, err := service.Control(t.Context(), "ADD_ONION NEW:ED25519-V3 Flags=Detach,DiscardPK Port=80,"+target)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, l := range reply {
		if v, ok := strings.CutPrefix(l, "ServiceID="); ok {
			id = v
		}
	}
	if id == "" {
		t.Fatalf("ADD_ONION answered %q", reply)
	}
	uploaded := make(chan time.Duration, 1)
	go func() {
		_ = events.SetDeadline(time.Now().Add(reachTimeout))
		for {
			line, err := events.readLine()
			if err != nil {
				return
			}
			// 650 HS_DESC UPLOADED <address> UNKNOWN <hsdir>
			if f := strings.Fields(line); len(f) > 3 && f[1] == "HS_DESC" && f[2] == "UPLOADED" && f[3] == id {
				uploaded <- time.Since(added)
				return
			}
		}
	}()

	ctx, cancel := context.WithTimeout(t.Context(), reachTimeout)
	defer cancel()
	took := reach(ctx, t, client.SocksAddr, id+".onion", greeting)
	select {
	case d := <-uploaded:
		t.Logf("ADD_ONION service: first descriptor uploaded %v after ADD_ONION", d.Round(time.Millisecond))
	default:
		t.Errorf("no HS_DESC UPLOADED event for %s, yet it answered", id)
	}
	t.Logf("ADD_ONION service reachable %v after ADD_ONION", took.Round(time.Millisecond))

	host, err := os.ReadFile(filepath.Join(hsDir, "hostname"))
	if err != nil {
		t.Fatal(err)
	}
	reach(ctx, t, client.SocksAddr, strings.TrimSpace(string(host)), greeting)
	t.Logf("HiddenServiceDir service reachable %v after both tors started", time.Since(start).Round(time.Millisecond))
}

// reach fetches http://onion/ through the SOCKS port until it answers
// with want, and returns how long that took; it fails t at ctx's end.
func reach(ctx context.Context, t *testing.T, socksAddr, onion, want string) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	for attempt := 1; ; attempt++ {
		body, err := httpGetViaSocks(ctx, socksAddr, onion)
		if err == nil && body == want {
			if attempt > 1 {
				t.Logf("%s answered at attempt %d (before: %v)", onion, attempt, last)
			}
			return time.Since(start)
		}
		if err == nil {
			err = fmt.Errorf("answered %q", body)
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("%s never answered through %s: %v", onion, socksAddr, last)
		case <-time.After(time.Second):
		}
	}
}

// httpGetViaSocks sends GET / to host:80 through a SOCKS5 proxy and
// returns the body.
func httpGetViaSocks(ctx context.Context, socksAddr, host string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := socksDial(ctx, socksAddr, host, 80)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return string(b), err
}

// socksError is a SOCKS5 reply other than success; tor's extended codes
// (ExtendedErrors) say why an onion could not be reached.
type socksError byte

func (e socksError) Error() string {
	names := map[socksError]string{
		0x01: "general failure", 0x04: "host unreachable", 0x05: "connection refused", 0x06: "TTL expired",
		0xF0: "onion descriptor not found", 0xF1: "onion descriptor invalid", 0xF2: "introduction failed",
		0xF3: "rendezvous failed", 0xF4: "missing client authorization", 0xF5: "wrong client authorization",
		0xF6: "bad onion address", 0xF7: "introduction timed out",
	}
	return fmt.Sprintf("SOCKS5 reply %#02x (%s)", byte(e), names[e])
}

// socksDial opens a SOCKS5 connection (no authentication) to host:port,
// sending host as a domain name for the proxy to resolve.
func socksDial(ctx context.Context, socksAddr, host string, port uint16) (net.Conn, error) {
	if len(host) > 255 {
		return nil, errors.New("socks: host name too long")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", socksAddr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	fail := func(err error) (net.Conn, error) {
		conn.Close()
		return nil, err
	}
	if _, err := conn.Write([]byte{5, 1, 0}); err != nil {
		return fail(err)
	}
	var hello [2]byte
	if _, err := io.ReadFull(conn, hello[:]); err != nil {
		return fail(err)
	}
	if hello != [2]byte{5, 0} {
		return fail(fmt.Errorf("socks: proxy chose method %v", hello))
	}
	req := []byte{5, 1, 0, 3, byte(len(host))}
	req = append(req, host...)
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := conn.Write(req); err != nil {
		return fail(err)
	}
	var head [4]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return fail(err)
	}
	if head[0] != 5 {
		return fail(fmt.Errorf("socks: reply version %d", head[0]))
	}
	if head[1] != 0 {
		return fail(socksError(head[1]))
	}
	var skip int
	switch head[3] {
	case 1:
		skip = 4 + 2
	case 4:
		skip = 16 + 2
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return fail(err)
		}
		skip = int(l[0]) + 2
	default:
		return fail(fmt.Errorf("socks: reply address type %d", head[3]))
	}
	if _, err := io.ReadFull(conn, make([]byte, skip)); err != nil {
		return fail(err)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}
