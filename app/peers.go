package app

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// Members' nodes as peers (docs/sync.md, "Peers"): a member whose node
// runs with Tor announces its onion service in the log (a node-address
// event, docs/ops.md §4.33), and every other member's node syncs with it
// in its rounds, beside the relays.

// The bounds on syncing with members' nodes.
const (
	// PeerStall is how long a round waits for a member's node that sends
	// nothing (the connection through Tor included) before it gives up on
	// it: shorter than a relay's (relay.DefaultStall), since a node is
	// often simply off, and a round must not wait long for it.
	PeerStall = 10 * time.Second
	// PeerBackoffMin is how long a node that failed is left out of rounds
	// before it is tried again; each failure in a row doubles it, up to
	// PeerBackoffMax. An answer resets it.
	PeerBackoffMin = 30 * time.Second
	PeerBackoffMax = 10 * time.Minute
)

// NodePeers returns the nodes the other current members of pursuance p
// announced (never this member's own, nor one at this node's own URL
// own), sorted. With own set — this node runs with Tor and is reached
// there — it first makes sure the log says so: it signs a node-address
// event only when this member's address in force differs, so that a node
// that restarts does not add one each time; announced reports whether it
// signed one. A former member announces nothing.
func (n *Node) NodePeers(ctx context.Context, p event.ID, own string) (peers []string, announced bool, err error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return nil, false, err
	}
	me := n.id.ID() // this device's own node (docs/devices.md)
	if _, member := s.Member(n.me()); member && own != "" {
		if cur, ok := s.NodeAddress(me); !ok || cur != own {
			if _, err := n.do(ctx, s, &state.NodeAddress{URL: own}, DoOptions{}); err != nil {
				return nil, false, err
			}
			announced = true
		}
	}
	for _, a := range s.NodeAddresses() {
		if a.Device != me && a.URL != own {
			peers = append(peers, a.URL)
		}
	}
	slices.Sort(peers)
	return slices.Compact(peers), announced, nil
}

// PeerBackoff keeps members' nodes that did not answer out of rounds for
// a while (PeerBackoffMin, doubling to PeerBackoffMax), so that a node
// that is off costs a round once, not every round. It is safe for
// concurrent use.
type PeerBackoff struct {
	mu sync.Mutex
	m  map[string]peerFailure
}

type peerFailure struct {
	fails int
	until time.Time
}

// Due reports whether the node at url may be tried at now.
func (b *PeerBackoff) Due(url string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.m[url]
	return !ok || !now.Before(f.until)
}

// Record notes how trying the node at url at now went: an answer
// (err nil) clears it; a failure leaves it out until the returned time.
func (b *PeerBackoff) Record(url string, err error, now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		delete(b.m, url)
		return time.Time{}
	}
	if b.m == nil {
		b.m = map[string]peerFailure{}
	}
	f := b.m[url]
	wait := PeerBackoffMin
	for i := 0; i < f.fails && wait < PeerBackoffMax; i++ {
		wait *= 2
	}
	wait = min(wait, PeerBackoffMax)
	f.fails++
	f.until = now.Add(wait)
	b.m[url] = f
	return f.until
}
