package tor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/tor/faketor"
)

// noLocalDNS makes every DNS query of this process fail the test, for
// the test's duration: anything resolved here rather than by tor shows.
// (Names in /etc/hosts are answered without a query; the tests use names
// that are not there.)
func noLocalDNS(t *testing.T) {
	t.Helper()
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		t.Errorf("a DNS query from this process (to %s): a name was resolved outside tor", address)
		return nil, errors.New("no DNS in this test")
	}}
	t.Cleanup(func() { net.DefaultResolver = old })
}

// echoServer is a TCP server on loopback that echoes one line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "echo "+line)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestDialerSendsNamesToTor: the host name goes to tor as a name (SOCKS5
// address type 3), never resolved here; the isolation string is the user
// name and password; an IP address goes as an address.
func TestDialerSendsNamesToTor(t *testing.T) {
	noLocalDNS(t)
	f := newFake(t, faketor.Options{})
	echo := echoServer(t)
	f.Map("relay.pursuance.test:443", echo)
	f.Map("127.0.0.1:7", echo)
	d := NewDialer(f.SOCKSAddr(), "iso-A")
	c, err := d.DialContext(context.Background(), "tcp", "relay.pursuance.test:443")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "hello\n")
	got, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if got != "echo hello\n" {
		t.Errorf("through the double: %q", got)
	}
	c, err = NewDialer(f.SOCKSAddr(), "").DialContext(context.Background(), "tcp", "127.0.0.1:7")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	reqs := f.Requests()
	want := []faketor.Request{
		{Method: 2, User: "iso-A", Pass: "iso-A", Atyp: 3, Host: "relay.pursuance.test", Port: 443},
		{Method: 0, Atyp: 1, Host: "127.0.0.1", Port: 7},
	}
	if fmt.Sprint(reqs) != fmt.Sprint(want) {
		t.Errorf("requests\n%+v\nwant\n%+v", reqs, want)
	}
}

// TestDialerIsolation: HTTP clients over dialers of different isolation
// strings present different credentials, one per string, on every
// connection (tor keeps their streams on different circuits).
func TestDialerIsolation(t *testing.T) {
	noLocalDNS(t)
	f := newFake(t, faketor.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	f.Map("a.pursuance.test:80", strings.TrimPrefix(srv.URL, "http://"))
	get := func(iso string) {
		d := NewDialer(f.SOCKSAddr(), iso)
		hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
		resp, err := hc.Get("http://a.pursuance.test/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get("one")
	get("two")
	get("one")
	var users []string
	for _, r := range f.Requests() {
		users = append(users, r.User+"/"+r.Pass)
	}
	if strings.Join(users, " ") != "one/one two/two one/one" {
		t.Errorf("credentials %q", users)
	}
}

// TestDialerErrors: tor's refusals become errors that say what happened
// and match ErrUnreachable, ErrRefused, ErrTimedOut; a dead SOCKS port
// says tor is not running.
func TestDialerErrors(t *testing.T) {
	f := newFake(t, faketor.Options{ExtendedErrors: true})
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	f.Map("refused.pursuance.test:80", deadAddr)
	f.Refuse("slow.pursuance.test:80", 6)
	f.Refuse("general.pursuance.test:80", 1)
	onion := "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion:80"
	d := NewDialer(f.SOCKSAddr(), "x")
	for _, c := range []struct {
		addr  string
		class error
		words string
	}{
		{onion, ErrUnreachable, "descriptor was not found"},
		{"nowhere.pursuance.test:80", ErrUnreachable, "host unreachable"},
		{"refused.pursuance.test:80", ErrRefused, "connection refused"},
		{"slow.pursuance.test:80", ErrTimedOut, "TTL expired"},
		{"general.pursuance.test:80", ErrSOCKS, "general failure"},
	} {
		_, err := d.DialContext(context.Background(), "tcp", c.addr)
		var op *net.OpError
		var se *SOCKSError
		if !errors.As(err, &op) || op.Op != "dial" || !errors.As(err, &se) || !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.words) {
			t.Errorf("%s: %v (want a dial error, %v, %q)", c.addr, err, c.class, c.words)
		}
	}
	// Without extended errors, an onion that tor cannot find is "host
	// unreachable", worded for an onion service.
	plain := newFake(t, faketor.Options{})
	_, err = NewDialer(plain.SOCKSAddr(), "").DialContext(context.Background(), "tcp", onion)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "onion service is unreachable") {
		t.Errorf("an unknown onion without extended errors: %v", err)
	}
	_, err = NewDialer(deadAddr, "").DialContext(context.Background(), "tcp", "a.pursuance.test:80")
	if err == nil || !strings.Contains(err.Error(), "is tor running") {
		t.Errorf("a dead SOCKS port: %v", err)
	}
	if _, err := d.DialContext(context.Background(), "udp", "a.pursuance.test:53"); err == nil {
		t.Error("UDP through tor")
	}
}

// TestDialerHandshakeBounded: a SOCKS port that accepts and never answers
// holds a dial only as long as its context.
func TestDialerHandshakeBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = NewDialer(ln.Addr().String(), "x").DialContext(ctx, "tcp", "a.pursuance.test:80")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a silent SOCKS port: %v", err)
	}
	// Generous: the point is that it ends, not how fast on a loaded machine.
	if time.Since(start) > 10*time.Second {
		t.Errorf("the dial took %s for a 200ms context", time.Since(start))
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	if _, err = NewDialer(ln.Addr().String(), "x").DialContext(ctx, "tcp", "a.pursuance.test:80"); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled dial: %v", err)
	}
}
