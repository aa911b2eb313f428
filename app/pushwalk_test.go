package app

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/relay/relaytest"
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

// TestPushPlansFromMark: a push to a relay plans from the mark of the
// last complete one (pushmark.go) instead of reading all the relay holds
// from sync.db, and sends the same: only what was written since. When
// sync.db forgets what the relay holds (a relay found wiped), the marks
// go and the next push reads all that is known to be held again; so it
// does once fullPlanEvery has passed. (A relay that loses envelopes is
// TestRelayDropsOrReorders' and TestPrunedPushIsNotLost's.)
func TestPushPlansFromMark(t *testing.T) {
	ctx := context.Background()
	r, _ := testRelay(t)
	alice := newMember(t, "Alice")
	clock := time.Now()
	alice.opts.Now = func() time.Time { return clock }
	p := deskOn(t, alice, r)
	round := func(what string, wantSent int, wantReads int64) {
		t.Helper()
		reads := heldReads.Load()
		res, err := alice.Sync(ctx, p, SyncOptions{})
		if err != nil || relayErrors(res) != "" {
			t.Fatalf("%s: sync: %+v %v", what, res, err)
		}
		if wantSent >= 0 && res.Sent != wantSent {
			t.Errorf("%s: sent %d envelopes, want %d", what, res.Sent, wantSent)
		}
		if n := heldReads.Load() - reads; n != wantReads {
			t.Errorf("%s: read all the relay holds %d times, want %d", what, n, wantReads)
		}
	}
	round("the first round", -1, 1)
	round("a round with nothing new", 0, 0)
	for i := range 3 {
		do(t, alice, p, &state.TaskCreate{Title: string(rune('a' + i))})
	}
	round("after 3 tasks", 3, 0)
	round("nothing new again", 0, 0)

	// The relay found wiped: sync.db forgets all it held.
	sdb, err := alice.syncDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sdb.resetRelay(ctx, r, "another instance"); err != nil {
		t.Fatal(err)
	}
	// The relay still holds it all: the round's read finds it again, and
	// the push, reading all that is known to be held, sends nothing.
	round("after sync.db forgot what the relay holds", 0, 1)
	do(t, alice, p, &state.TaskCreate{Title: "d"})
	round("one more task", 1, 0)
	clock = clock.Add(fullPlanEvery + time.Second)
	round("past fullPlanEvery", 0, 1)

	// A push of more than pendingMax events leaves no mark: the next
	// plans in full, and leaves one.
	defer func(m int) { pendingMax = m }(pendingMax)
	pendingMax = 2
	for _, title := range []string{"e", "f", "g"} {
		do(t, alice, p, &state.TaskCreate{Title: title})
	}
	round("3 tasks, past pendingMax", 3, 0)
	round("after a push past pendingMax", 0, 1)
	round("and then", 0, 0)
}

// TestLostPushSentAgain: a relay that acknowledged an append and kept
// nothing is found out at the next read (the envelope never shows); the
// push after that sends the event again, though pushes to it plan from
// marks (the lost envelopes drop them), and a member who reads only that
// relay gets it.
func TestLostPushSentAgain(t *testing.T) {
	bad, adv := badRelay(t)
	alice, bob, p, _ := twoOnRelays(t, bad)
	mustSync(t, alice, p) // a complete push: its mark is kept
	adv.Set(relaytest.DropAppends, nil)
	lost := do(t, alice, p, &state.TaskCreate{Title: "Dropped once", VisibleTo: []string{"researcher"}})
	mustSync(t, alice, p)
	adv.Set(relaytest.Honest, nil)
	mustSync(t, alice, p) // the read finds the envelope lost; the push sends it again
	mustSync(t, bob, p)
	if _, err := bob.Store().Get(context.Background(), lost.ID()); err != nil {
		t.Fatalf("the event the relay dropped once never reached Bob: %v", err)
	}
}

// TestForgettingDropsPushMarks: whatever makes sync.db forget some of
// what a relay holds (envelopes found lost, a topic reset, the relay
// found wiped) drops the marks of pushes to it, and a push that began
// before that leaves no mark.
func TestForgettingDropsPushMarks(t *testing.T) {
	ctx := context.Background()
	alice := newMember(t, "Alice")
	sdb, err := alice.syncDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, url := event.ID{1}, "http://127.0.0.1:1"
	var topic keys.Topic
	for what, forget := range map[string]func() error{
		"lost envelopes": func() error {
			return sdb.settlePushed(ctx, url, topic, nil, []pushedEnv{{id: event.ID{2}}})
		},
		"a topic reset": func() error { return sdb.resetTopic(ctx, url, topic) },
		"a relay wiped": func() error { return sdb.resetRelay(ctx, url, "new") },
	} {
		_, epoch := alice.folds.takePushMark(p, url)
		alice.folds.putPushMark(p, url, epoch, &pushMark{})
		_, begun := alice.folds.takePushMark(p, url) // a push begins
		alice.folds.putPushMark(p, url, begun, &pushMark{})
		if err := forget(); err != nil {
			t.Fatal(err)
		}
		if m, _ := alice.folds.takePushMark(p, url); m != nil {
			t.Errorf("%s: the push mark stayed", what)
		}
		alice.folds.putPushMark(p, url, begun, &pushMark{}) // the push begun before ends
		if m, _ := alice.folds.takePushMark(p, url); m != nil {
			t.Errorf("%s: a push begun before it left a mark", what)
		}
	}
}

// TestForkedEventPushedFromMark: an event at or below an author's seq
// that a push's mark has seen (the second of a fork, come from another
// relay later) is not taken for one the relay held: the plan notices the
// log is not the mark's plus newer events and plans again in full, and the
// relay is sent it.
func TestForkedEventPushedFromMark(t *testing.T) {
	ctx := context.Background()
	r1, _ := testRelay(t)
	r2, adv := badRelay(t)
	alice, bob, p, _ := twoOnRelays(t, r1, r2)
	fork := forkTo(t, bob, p, r1, r2)
	// Alice reads the first from r1 while r2 shows nothing new: her
	// pushes leave marks that have Bob's seq.
	adv.Set(relaytest.Withhold, func(relay.Entry) bool { return true })
	mustSync(t, alice, p)
	adv.Set(relaytest.Honest, nil)
	mustSync(t, alice, p) // the second comes from r2; the push to r1 must send it
	mustSync(t, alice, p) // r1's read shows it
	sdb, err := alice.syncDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if held, err := sdb.holds(ctx, r1, keys.Topic{}, fork[1].ID()); err != nil || !held {
		t.Fatalf("r1 was not sent the fork's second event (held %v, %v)", held, err)
	}
}
