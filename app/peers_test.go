package app

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/relay/relaytest"
	"github.com/pursuance/pursuance/state"
)

// Two valid v3 onion addresses (the keys are not real keys; the rules
// check the form and checksum only).
const (
	onionA = "http://25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion"
	onionB = "http://pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
)

// TestNodePeers: a node with Tor announces its onion once (not again
// while the log says it), a node without Tor announces nothing, and each
// gets the other members' announced nodes, never its own; a removed
// member's node is no peer.
func TestNodePeers(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{onionA, onionB} {
		if err := state.CheckNodeAddress(u); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob, p := desk(t)
	peers, announced, err := alice.NodePeers(ctx, p, onionA)
	if err != nil || !announced || len(peers) != 0 {
		t.Fatalf("alice's first: %v %v %v", peers, announced, err)
	}
	if _, announced, err = alice.NodePeers(ctx, p, onionA); err != nil || announced {
		t.Fatalf("alice's second: announced again (%v, %v)", announced, err)
	}
	copyAll(t, alice, bob, p)
	peers, announced, err = bob.NodePeers(ctx, p, "")
	if err != nil || announced || !slices.Equal(peers, []string{onionA}) {
		t.Fatalf("bob without Tor: %v %v %v", peers, announced, err)
	}
	s, _ := bob.State(ctx, p)
	if _, ok := s.NodeAddress(bob.id.ID()); ok {
		t.Errorf("bob without Tor announced a node")
	}
	peers, announced, err = bob.NodePeers(ctx, p, onionB)
	if err != nil || !announced || !slices.Equal(peers, []string{onionA}) {
		t.Fatalf("bob with Tor: %v %v %v", peers, announced, err)
	}
	copyAll(t, bob, alice, p)
	if peers, _, _ := alice.NodePeers(ctx, p, onionA); !slices.Equal(peers, []string{onionB}) {
		t.Errorf("alice's peers %v, want bob's node", peers)
	}
	// Bob removed: his node is no longer one of alice's peers.
	do(t, alice, p, &state.Remove{Member: bob.id.ID()})
	if peers, _, _ := alice.NodePeers(ctx, p, onionA); len(peers) != 0 {
		t.Errorf("alice's peers after bob's removal: %v", peers)
	}
}

// TestPeerBackoff: a node that failed is left out for PeerBackoffMin,
// then twice as long after each failure in a row, up to PeerBackoffMax;
// an answer clears it.
func TestPeerBackoff(t *testing.T) {
	var b PeerBackoff
	now := time.Unix(1_800_000_000, 0)
	fail := errors.New("no answer")
	if !b.Due(onionA, now) {
		t.Fatal("a node never tried is not due")
	}
	want := PeerBackoffMin
	for range 8 {
		until := b.Record(onionA, fail, now)
		if until.Sub(now) != want {
			t.Fatalf("left out for %v, want %v", until.Sub(now), want)
		}
		if b.Due(onionA, until.Add(-time.Millisecond)) || !b.Due(onionA, until) {
			t.Fatalf("due before %v, or not at it", until)
		}
		if !b.Due(onionB, now) {
			t.Fatal("another node left out too")
		}
		want = min(2*want, PeerBackoffMax)
	}
	b.Record(onionA, nil, now)
	if !b.Due(onionA, now) {
		t.Error("an answer did not clear the node")
	}
	if until := b.Record(onionA, fail, now); until.Sub(now) != PeerBackoffMin {
		t.Errorf("after an answer, a failure leaves it out for %v", until.Sub(now))
	}
}

// TestSyncPeerStall: a member's node that accepts connections and never
// answers costs a sync the peers' stall time, not the relays' (set here
// to a minute, so that a sync that waited for it fails the bound); the
// relay gets what it lacks meanwhile.
func TestSyncPeerStall(t *testing.T) {
	ctx := context.Background()
	good, _ := testRelay(t)
	alice, _, p, _ := twoOnRelays(t, good)
	hanging, _ := relaytest.Hanging(t)
	alice.opts.RelayTimeout = time.Minute
	alice.opts.limits.peerStall = time.Second
	do(t, alice, p, &state.TaskCreate{Title: "while a member's node hangs"})
	start := time.Now()
	res, err := alice.Sync(ctx, p, SyncOptions{Peers: []string{hanging}})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// Under half the relays' stall: on a loaded machine the peer's one
	// second may stretch, not to thirty.
	if took > 30*time.Second {
		t.Errorf("the sync took %v: it waited for the hanging node as for a relay", took)
	}
	seen := 0
	for _, r := range res.Relays {
		switch r.URL {
		case hanging:
			seen++
			if !errors.Is(r.Err, relay.ErrStalled) {
				t.Errorf("the hanging node's error: %v", r.Err)
			}
		case good:
			seen++
			if r.Err != nil || r.Sent == 0 {
				t.Errorf("the relay: %+v", r)
			}
		}
	}
	if seen != 2 {
		t.Errorf("the sync worked %d of the relay and the node: %+v", seen, res.Relays)
	}
}
