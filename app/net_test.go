package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
)

// noLocalDNS makes every DNS query of this process fail the test, for
// the test's duration (names in /etc/hosts are answered without one; the
// tests use names that are not there).
func noLocalDNS(t *testing.T) {
	t.Helper()
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		t.Errorf("a DNS query from this process (to %s): a relay's name was resolved outside the dialer", address)
		return nil, errors.New("no DNS in this test")
	}}
	t.Cleanup(func() { net.DefaultResolver = old })
}

// namedDialer stands for Tor in the app's tests: it connects names to
// loopback relays as a test maps them, records every address and
// isolation string it is given, and resolves nothing.
type namedDialer struct {
	mu    sync.Mutex
	names map[string]string // "name:port" → "127.0.0.1:N"
	calls []dialCall
}

type dialCall struct{ addr, isolation string }

func (d *namedDialer) dial(ctx context.Context, network, addr, isolation string) (net.Conn, error) {
	d.mu.Lock()
	d.calls = append(d.calls, dialCall{addr, isolation})
	target, ok := d.names[addr]
	d.mu.Unlock()
	if !ok {
		return nil, errors.New("no such name in this test: " + addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, target)
}

func (d *namedDialer) isolations(addr string) map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for _, c := range d.calls {
		if c.addr == addr {
			out[c.isolation]++
		}
	}
	return out
}

// TestDialCarriesNamesAndIsolation: with Options.Dial, every connection a
// node makes, to sync, join or follow a pursuance, goes through it, with
// the relay's host name as the URL has it (nothing is resolved by the
// node: a DNS query fails this test), and with one isolation string per
// pursuance: a member's two pursuances never share one, so through Tor
// they never share a circuit; a join uses the joined pursuance's.
func TestDialCarriesNamesAndIsolation(t *testing.T) {
	noLocalDNS(t)
	ctx := context.Background()
	r, _ := testRelay(t)
	const name = "relay-a.pursuance.test"
	d := &namedDialer{names: map[string]string{name + ":80": strings.TrimPrefix(r, "http://")}}
	alice, bob := newMember(t, "Alice"), newMember(t, "Bob")
	alice.opts.Dial, bob.opts.Dial = d.dial, d.dial
	c, _ := charter.Template("desk")
	var ps []event.ID
	for range 2 {
		p, err := alice.Create(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.SetRelays(ctx, p, []string{"http://" + name}, nil, DoOptions{}); err != nil {
			t.Fatal(err)
		}
		if res, err := alice.Sync(ctx, p, SyncOptions{}); err != nil || relayErrors(res) != "" || res.Sent == 0 {
			t.Fatalf("alice's sync through the dialer: %+v %v", res, err)
		}
		ps = append(ps, p)
	}
	code, _, err := alice.Invite(ctx, ps[0], "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx, ps[0], SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if res, err := bob.Join(ctx, code, DoOptions{}); err != nil || res.SyncErr != nil {
		t.Fatalf("bob's join through the dialer: %v %v", err, res.SyncErr)
	}
	d.mu.Lock()
	for _, c := range d.calls {
		if c.addr != name+":80" {
			t.Errorf("a connection to %q: the dialer got something else than the URL's host name", c.addr)
		}
	}
	d.mu.Unlock()
	isos := d.isolations(name + ":80")
	a0, a1, b0 := alice.isolation(ps[0]), alice.isolation(ps[1]), bob.isolation(ps[0])
	if a0 == a1 || a0 == b0 || len(isos) != 3 || isos[a0] == 0 || isos[a1] == 0 || isos[b0] == 0 {
		t.Errorf("isolation strings used %v; want alice's two pursuances (%s, %s) and bob's join (%s), all different", isos, a0, a1, b0)
	}
	// Following a pursuance live is one of its connections too.
	ws, err := alice.WatchTargets(ctx, ps[1], nil)
	if err != nil || len(ws) != 1 || ws[0].Isolation != a1 {
		t.Errorf("watch targets %+v %v, want the isolation %s", ws, err, a1)
	}
	// A node's HTTP client through Dial takes no proxy from the
	// environment: every byte goes through Dial.
	if tr, ok := HTTPClient(d.dial, "x").Transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Error("the client through Dial would take HTTP(S)_PROXY")
	}
}

// TestOnionNeedsTor: without Dial, an onion relay fails with
// ErrNeedsTor's words, before any connection or lookup; an invite code
// that names only onion services (and loopback) needs Tor; one that also
// names a clear-net relay does not.
func TestOnionNeedsTor(t *testing.T) {
	noLocalDNS(t)
	ctx := context.Background()
	const onion = "http://25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion"
	alice := newMember(t, "Alice")
	p := deskOn(t, alice, onion)
	res, err := alice.Sync(ctx, p, SyncOptions{})
	if err != nil || len(res.Relays) != 1 || !errors.Is(res.Relays[0].Err, ErrNeedsTor) || RelayError(res.Relays[0].Err) != ErrNeedsTor.Error() {
		t.Fatalf("sync with an onion relay without Tor: %+v %v", res, err)
	}
	if err := ProbeRelay(ctx, onion, nil); err == nil || !strings.Contains(err.Error(), "run with --tor") {
		t.Errorf("probing an onion relay without Tor: %v", err)
	}
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A join with a code that names only onion services stops before
	// anything is staged, saying it needs Tor.
	bob := newMember(t, "Bob")
	onlyOnion := code
	onlyOnion.Relays = []string{onion}
	if _, err := bob.Join(ctx, onlyOnion, DoOptions{}); !errors.Is(err, ErrNeedsTor) {
		t.Errorf("a join naming only an onion service, without Tor: %v", err)
	}
	if ps, _ := bob.Pursuances(ctx); len(ps) != 0 {
		t.Errorf("the refused join left %v", ps)
	}
	for _, c := range []struct {
		relays []string
		want   Reach
	}{
		{[]string{onion}, ReachTor},
		{[]string{"http://127.0.0.1:8765", onion}, ReachTor},
		{[]string{onion, "https://relay.example.org"}, ReachRelays},
		{[]string{"http://127.0.0.1:8765"}, ReachThisMachine},
	} {
		code.Relays = c.relays
		if got := code.Reach(); got != c.want {
			t.Errorf("a code naming %v: %s, want %s", c.relays, got, c.want)
		}
	}
}

// TestLinkIsolation: a link's channel has connections of its own, apart
// from its pursuance's and from other links'; another home's differ.
func TestLinkIsolation(t *testing.T) {
	a, b := newMember(t, "Alice"), newMember(t, "Bob")
	p, l1, l2 := event.ID{1}, event.ID{2}, event.ID{3}
	isos := []string{a.isolation(p), a.linkIsolation(p, l1), a.linkIsolation(p, l2), b.linkIsolation(p, l1)}
	if len(slices.Compact(slices.Sorted(slices.Values(isos)))) != len(isos) {
		t.Errorf("isolation strings %q: want all different", isos)
	}
	if again := a.linkIsolation(p, l1); again != isos[1] {
		t.Error("a link's isolation string changes")
	}
}

// TestOnionDownIsUnreachable: a relay that no connection reaches within
// the relay timeout (through Tor, an onion service that is down: tor
// never answers the SOCKS CONNECT) is named unreachable, not a relay
// that "accepts connections but sends nothing" (found by
// cmd/pursuance/torsuite's TestTorEndToEnd, with real tor).
func TestOnionDownIsUnreachable(t *testing.T) {
	noLocalDNS(t)
	ctx := context.Background()
	const onion = "http://25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion"
	alice := newMember(t, "Alice")
	alice.opts.Dial = func(ctx context.Context, _, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	alice.opts.RelayTimeout = 200 * time.Millisecond
	p := deskOn(t, alice, onion)
	res, err := alice.Sync(ctx, p, SyncOptions{})
	if err != nil || len(res.Relays) != 1 || res.Relays[0].Err == nil {
		t.Fatalf("sync with an onion relay that never answers: %+v %v", res, err)
	}
	if msg := RelayError(res.Relays[0].Err); !strings.HasPrefix(msg, "unreachable") || strings.Contains(msg, "accepts connections") {
		t.Errorf("RelayError = %q, want it named unreachable", msg)
	}
}
