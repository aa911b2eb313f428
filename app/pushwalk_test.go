package app

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
	"github.com/pursuance/pursuance/store"
)

// iterCounter is a store that counts its walks of a whole log.
type iterCounter struct {
	store.Store
	n atomic.Int32
}

func (c *iterCounter) Iterate(ctx context.Context, p event.ID, fn func(*event.Event) error) error {
	c.n.Add(1)
	return c.Store.Iterate(ctx, p, fn)
}

// TestPushWalksTheKeptState: a round's push plans from the log of the
// state the node keeps, not by reading and decrypting every stored event
// again (issue 15: ~1 s per relay per round at 100k events, on the CPU
// the web UI's requests need), and sends the same: what a new relay
// lacks, every event once, and then only what was written since; nor
// does it read what the other relays hold when nothing it sends is old.
func TestPushWalksTheKeptState(t *testing.T) {
	ctx := context.Background()
	r1, _ := testRelay(t)
	alice := newMember(t, "Alice")
	c, _ := charter.Template("desk")
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		do(t, alice, p, &state.TaskCreate{Title: string(rune('a' + i))})
	}
	if _, err := alice.SetRelays(ctx, p, []string{r1}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.State(ctx, p); err != nil { // kept, as up's node keeps it
		t.Fatal(err)
	}
	count, err := alice.Store().Count(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	ic := &iterCounter{Store: alice.st}
	alice.st = ic
	defer func() { alice.st = ic.Store }()
	res, err := alice.Sync(ctx, p, SyncOptions{})
	if err != nil || relayErrors(res) != "" {
		t.Fatalf("sync: %+v %v", res, err)
	}
	// Every event, and the group key updates once more under the
	// current generation (push.go).
	if res.Sent < count || res.Sent > count+1 {
		t.Errorf("sent %d envelopes to a new relay, want the %d events and the key update", res.Sent, count)
	}
	if n := ic.n.Load(); n != 0 {
		t.Errorf("the round walked the stored log %d times, want 0 (the kept state's log)", n)
	}
	// With a second relay: a round sending only what was just written
	// does not read what the other relay holds (that is only for telling
	// a relay behind, by events older than behindGrace).
	r2, _ := testRelay(t)
	if _, err := alice.SetRelays(ctx, p, []string{r2}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx, p, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	ic.n.Store(0) // the relays event made the node fold once
	do(t, alice, p, &state.TaskCreate{Title: "later"})
	scans := heldScans.Load()
	res, err = alice.Sync(ctx, p, SyncOptions{})
	if err != nil || res.Sent != 2 {
		t.Fatalf("the next round sent %d (want 2, the new task to each relay): %v", res.Sent, err)
	}
	if n := heldScans.Load() - scans; n != 0 {
		t.Errorf("a round sending only a new event read what the other relays hold %d times, want 0", n)
	}
	if n := ic.n.Load(); n != 0 {
		t.Errorf("the rounds walked the stored log %d times, want 0", n)
	}
}
