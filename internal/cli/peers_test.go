package cli

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/tor/faketor"
	"github.com/pursuance/pursuance/relay"
)

// TestUpPeersThroughOnions: two members whose nodes run up --tor (the
// tor double) find each other through the node addresses their nodes
// announce — no relays event names the nodes, and Bob, a researcher,
// may not manage relays. Once the pursuance's relay is gone, what Bob
// writes reaches Alice's running node from Bob's node's round, through
// Alice's onion service. A node announces once, not every round; a round
// with a member's node that is off says so and goes on; a node without
// Tor leaves the members' nodes out and says why.
func TestUpPeersThroughOnions(t *testing.T) {
	noLocalDNS(t)
	f, err := faketor.New(faketor.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The pursuance's relay, which goes away half-way.
	st, err := relay.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	defer ts.Close()
	// A loopback URL: the node without Tor (at the end) connects to it
	// directly, resolving no name; the others reach it through the
	// double, which maps it to itself.
	f.Map(strings.TrimPrefix(ts.URL, "http://"), strings.TrimPrefix(ts.URL, "http://"))

	aliceHome, bobHome := t.TempDir(), t.TempDir()
	alice, bob := homeRunner(t, aliceHome, nil), homeRunner(t, bobHome, nil)
	tor := []string{"--tor", "--tor-control", f.ControlAddr()}
	must := func(r func(...string) (int, string, string), args ...string) (string, string) {
		t.Helper()
		code, out, errOut := r(args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", args, code, errOut)
		}
		return strings.TrimSpace(out), errOut
	}
	withTor := func(args ...string) []string { return append(slices.Clone(tor), args...) }
	must(alice, "id", "new", "--name", "Alice", "--insecure-test-kdf")
	must(bob, "id", "new", "--name", "Bob", "--insecure-test-kdf")
	must(alice, withTor("create", "--name", "Desk", "--relay", ts.URL)...)
	code, _ := must(alice, withTor("invite", "Desk", "--role", "researcher")...)
	must(bob, withTor("join", code)...)

	onionOf := regexp.MustCompile(`other members' nodes reach it at (http://[a-z2-7]{56}\.onion)`)
	_, aliceUp := must(alice, withTor("up", "--once")...)
	aliceOnion := onionOf.FindStringSubmatch(aliceUp)[1]
	if !strings.Contains(aliceUp, "announced this node's onion service") {
		t.Errorf("alice's node did not announce its onion service:\n%s", aliceUp)
	}
	_, bobUp := must(bob, withTor("up", "--once")...)
	bobOnion := onionOf.FindStringSubmatch(bobUp)[1]
	if !strings.Contains(bobUp, "announced this node's onion service") {
		t.Errorf("bob's node did not announce its onion service:\n%s", bobUp)
	}
	// Alice's node learns Bob's node in a round, and tries it from the
	// next one on; Bob's is off: the round says so and ends.
	_, aliceUp = must(alice, withTor("up", "--once")...)
	if strings.Contains(aliceUp, "announced this node's onion service") {
		t.Errorf("alice's node announced again, its address unchanged:\n%s", aliceUp)
	}
	from := len(f.Requests())
	start := time.Now()
	_, aliceUp = must(alice, withTor("up", "--once")...)
	if !strings.Contains(aliceUp, "a member's node did not answer") || !strings.Contains(aliceUp, bobOnion) {
		t.Errorf("alice's round with bob's node off does not say so:\n%s", aliceUp)
	}
	if took := time.Since(start); took > 60*time.Second {
		t.Errorf("alice's round with bob's node off took %v", took)
	}
	if !slices.ContainsFunc(f.Requests()[from:], func(r faketor.Request) bool { return "http://"+r.Host == bobOnion }) {
		t.Errorf("alice's node did not try bob's onion service: %+v", f.Requests()[from:])
	}

	// The relay goes; Alice's node runs.
	ts.Close()
	e, _, _ := testEnv(map[string]string{"PURSUANCE_HOME": aliceHome, "PURSUANCE_PASSPHRASE": "pw"}, nil)
	e.Rand = rand.Reader
	nodeErr := &syncBuffer{}
	e.Stderr = nodeErr
	ctx, cancel := context.WithCancel(context.Background())
	e.Context = ctx
	done := make(chan int, 1)
	go func() { done <- Run(withTor("up", "--interval", "300ms"), e) }()
	defer func() {
		cancel()
		if c := <-done; c != 0 {
			t.Errorf("alice's node stopped with %d:\n%s", c, nodeErr.String())
		}
	}()
	waitFor(t, "alice's node up", func() bool { return strings.Contains(nodeErr.String(), "Node of Alice is up") })

	// Bob writes (nothing goes out: the relay is gone and his node is
	// off), then his node's round sends it to Alice's node.
	must(bob, "--offline", "task", "add", "Desk", "--title", "Sent node to node")
	from = len(f.Requests())
	_, bobUp = must(bob, withTor("up", "--once")...)
	if !slices.ContainsFunc(f.Requests()[from:], func(r faketor.Request) bool { return "http://"+r.Host == aliceOnion }) {
		t.Errorf("bob's node did not sync with alice's onion service:\n%s", bobUp)
	}
	if strings.Contains(bobUp, "did not answer") && strings.Contains(bobUp, aliceOnion) {
		t.Errorf("alice's running node did not answer bob's:\n%s", bobUp)
	}
	waitFor(t, "alice sees bob's task", func() bool {
		_, out, _ := alice("--offline", "task", "list", "Desk", "--json")
		return strings.Contains(out, "Sent node to node")
	})

	// Without Tor, Bob's node leaves the members' nodes out, and says why.
	from = len(f.Requests())
	_, bobUp = must(bob, "--tor=false", "up", "--once")
	if !strings.Contains(bobUp, "members' nodes not synced with: they are onion services, and this node runs without Tor") {
		t.Errorf("bob's node without Tor does not say why it leaves alice's out:\n%s", bobUp)
	}
	if strings.Contains(bobUp, "announced") {
		t.Errorf("bob's node without Tor announced:\n%s", bobUp)
	}
	// Alice's node, running, tries Bob's node through Tor in its rounds
	// (its first one runs once its UI serves, so it may fall here): what
	// goes to Bob's own onion service is not Bob's node's.
	if bobs := slices.DeleteFunc(slices.Clone(f.Requests()[from:]), func(r faketor.Request) bool { return "http://"+r.Host == bobOnion }); len(bobs) > 0 {
		t.Errorf("bob's node without Tor went through tor: %+v", bobs)
	}
}

// waitFor polls cond for up to a minute (a loaded machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
