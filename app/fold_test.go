package app

import (
	"context"
	"testing"

	"github.com/pursuance/pursuance/state"
)

// A sync round, as `pursuance up` runs one (a Node opened for the round),
// folds the log at most once when nothing but its own writes is new, and
// folds it again only once after taking in other members' events (the
// state before the read gives the keys to read with; the one after, what
// to heal and send): never once per page read or per step (issue 15). The
// node's own task events, written on a node that holds their state, are
// sent from it without a fold. And none of these folds holds the home
// (FoldsHoldingHome): a request waits for no round. Folds counts every fold of this process;
// the test is not parallel, so nothing else folds meanwhile.
func TestSyncRoundFolds(t *testing.T) {
	ctx := context.Background()
	r, _ := testRelay(t)
	alice, bob := newMember(t, "Alice"), newMember(t, "Bob")
	p := deskOn(t, alice, r)
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx, p, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	// Until both have all there is (Bob's join, the keys rotated after).
	for range 2 {
		for _, m := range []member{bob, alice} {
			if _, err := m.Sync(ctx, p, SyncOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A round on a Node of its own, as up's.
	round := func(m member) (int64, SyncResult) {
		t.Helper()
		before, holding := Folds(), FoldsHoldingHome()
		res, err := m.Sync(ctx, p, SyncOptions{})
		if err != nil || relayErrors(res) != "" {
			t.Fatalf("sync: %+v %v", res, err)
		}
		// Background sync never blocks requests: no fold holds the home,
		// which every request's node waits for.
		if n := FoldsHoldingHome() - holding; n != 0 {
			t.Errorf("%d folds of the round held the home", n)
		}
		return Folds() - before, res
	}
	fresh := func(m member) member {
		t.Helper()
		home := m.home
		m.Close()
		n, err := Open(ctx, home, m.id, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return member{n, m.id}
	}
	// A new process (a command, a cron job) keeps nothing yet.
	alice = fresh(alice)
	ForgetStates()
	if n, _ := round(alice); n != 1 {
		t.Errorf("a round with nothing new folded %d times, want 1", n)
	}
	// A process that keeps the home's states (up): a Node opened for the
	// next round finds it folded.
	alice = fresh(alice)
	if n, _ := round(alice); n != 0 {
		t.Errorf("a round with nothing new, the state kept, folded %d times, want 0", n)
	}
	// Bob writes task events.
	bobWrites := func(from rune) {
		t.Helper()
		for i := range 3 {
			do(t, bob, p, &state.TaskCreate{Title: "From Bob " + string(from+rune(i))})
		}
		if _, err := bob.Sync(ctx, p, SyncOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bobWrites('A')
	alice = fresh(alice)
	ForgetStates()
	if n, res := round(alice); n > 2 || res.Received != 3 {
		t.Errorf("a round taking in 3 events folded %d times (want at most 2), received %d", n, res.Received)
	}
	// Kept: the state is extended with the 3 events, not folded again.
	bobWrites('D')
	alice = fresh(alice)
	ext := Extends()
	if n, res := round(alice); n != 0 || res.Received != 3 || Extends() == ext {
		t.Errorf("a round taking in 3 events, the state kept, folded %d times (want 0), extended it %d times (want some), received %d",
			n, Extends()-ext, res.Received)
	}
	// Alice writes; the round after it on the same Node sends it on the
	// state the write folded.
	alice = fresh(alice)
	ForgetStates()
	before := Folds()
	do(t, alice, p, &state.TaskCreate{Title: "From Alice"})
	if _, res := round(alice); Folds()-before != 1 || res.Sent == 0 {
		t.Errorf("a write and the round sending it folded %d times, want 1 (sent %d)", Folds()-before, res.Sent)
	}
	alice = fresh(alice)
	before = Folds()
	do(t, alice, p, &state.TaskCreate{Title: "From Alice, kept"})
	if _, res := round(alice); Folds()-before != 0 || res.Sent == 0 {
		t.Errorf("a write and the round sending it, the state kept, folded %d times, want 0 (sent %d)", Folds()-before, res.Sent)
	}
}
