package app

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// testRelay runs a relay in the test process.
func testRelay(t *testing.T) (url string, st *relay.SQLite) {
	t.Helper()
	st, err := relay.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	t.Cleanup(func() {
		ts.Close()
		st.Close()
	})
	return ts.URL, st
}

// Members on different homes, through two relays: an invite names the
// relays; join fetches the log from them and publishes the join; each
// sync brings the others' events; a removed member reads nothing new.
func TestSyncThroughRelays(t *testing.T) {
	ctx := context.Background()
	r1, _ := testRelay(t)
	r2, _ := testRelay(t)
	alice, bob, carol := newMember(t, "Alice"), newMember(t, "Bob"), newMember(t, "Carol")
	p := deskOn(t, alice, r1, r2)
	task := do(t, alice, p, &state.TaskCreate{Title: "Shared", VisibleTo: []string{"researcher"}})
	if res, err := alice.Sync(ctx, p, SyncOptions{}); err != nil || relayErrors(res) != "" || res.Sent == 0 {
		t.Fatalf("alice's first sync: %+v %v", res, err)
	}
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(code.Relays) != 2 {
		t.Fatalf("the code names %v", code.Relays)
	}
	if _, err := alice.Sync(ctx, p, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	// Bob joins from the code alone.
	code2, err := ParseInviteCode(code.String())
	if err != nil {
		t.Fatal(err)
	}
	res, err := bob.Join(ctx, code2, DoOptions{})
	if err != nil || res.SyncErr != nil {
		t.Fatalf("join: %v %v", err, res.SyncErr)
	}
	do(t, bob, p, &state.TaskComment{Task: task.ID(), Text: "on it"})
	if _, err := bob.Sync(ctx, p, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	// Alice gets Bob's join and comment (and the keys Bob rotated once he
	// had used the code: the generations it sealed are stale).
	if res, err := alice.Sync(ctx, p, SyncOptions{}); err != nil || res.Received < 2 {
		t.Fatalf("alice's sync: %+v %v", res, err)
	}
	as, _ := alice.State(ctx, p)
	if tk, _ := as.Task(task.ID()); len(tk.Comments) != 1 || len(as.Members()) != 2 {
		t.Fatalf("alice's view: %d members, task %+v", len(as.Members()), tk)
	}
	// One relay is lost entirely: the other carries on, and a newcomer
	// gets the whole history from it.
	if _, err := alice.SetRelays(ctx, p, nil, []string{r1}, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	code3, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx, p, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Join(ctx, code3, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	cs, _ := carol.State(ctx, p)
	if tk, _ := cs.Task(task.ID()); tk == nil || len(tk.Comments) != 1 || len(cs.Members()) != 3 {
		t.Fatalf("carol's view: %d members, task %+v", len(cs.Members()), tk)
	}
	if cs.Hash() == [32]byte{} || len(cs.Log()) != len(as.Log())+3 {
		t.Logf("carol %d events, alice had %d before", len(cs.Log()), len(as.Log()))
	}
	// Alice removes Bob: what she writes afterwards, Bob syncs but cannot
	// open.
	if _, _, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil {
		t.Fatal(err)
	}
	secret := do(t, alice, p, &state.TaskCreate{Title: "After Bob", VisibleTo: nil})
	if _, err := alice.Sync(ctx, p, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	bres, err := bob.Sync(ctx, p, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Store().Get(ctx, secret.ID()); err == nil {
		t.Error("bob got the task written after his removal")
	}
	bs, _ := bob.State(ctx, p)
	if _, ok := bs.Member(bob.id.ID()); ok {
		t.Errorf("bob did not learn of his removal (sync %+v)", bres)
	}
}

// TestNodeRelayInvite: with no relay of its own, an invite names the
// inviter's node relay (pursuance up's), and a newcomer on this machine
// joins through it with the code alone; once the pursuance has a relay,
// the code names that one instead. WatchTargets follows the newest group
// key generation's topic on each relay.
func TestNodeRelayInvite(t *testing.T) {
	ctx := context.Background()
	node, _ := testRelay(t)
	alice, bob := newMember(t, "Alice"), newMember(t, "Bob")
	alice.opts.NodeRelay = node
	c, _ := charter.Template("desk")
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := (InviteCode{}).Reach(); got != ReachNowhere {
		t.Errorf("a code without relays reaches %q", got)
	}
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(code.Relays) != 1 || code.Relays[0] != node || code.Reach() != ReachThisMachine {
		t.Fatalf("the code names %v (%s), want the node relay %s", code.Relays, code.Reach(), node)
	}
	// The node syncs with its own relay each round.
	if _, err := alice.Sync(ctx, p, SyncOptions{Relays: []string{node}}); err != nil {
		t.Fatal(err)
	}
	code2, err := ParseInviteCode(code.String())
	if err != nil {
		t.Fatal(err)
	}
	if res, err := bob.Join(ctx, code2, DoOptions{}); err != nil || res.SyncErr != nil {
		t.Fatalf("join through the node relay: %v %v", err, res.SyncErr)
	}
	if res, err := alice.Sync(ctx, p, SyncOptions{Relays: []string{node}}); err != nil || res.Received < 1 {
		t.Fatalf("alice gets bob's join from her node relay: %+v %v", res, err)
	}
	if as, _ := alice.State(ctx, p); len(as.Members()) != 2 {
		t.Fatalf("alice did not get bob's join: %d members", len(as.Members()))
	}

	// Bob follows the node relay, on the newest generation's topic: the
	// one in the code (a newcomer's sync rotates nothing: the members do),
	// then the one of Alice's rotation.
	watched := func(want uint64) {
		t.Helper()
		ks, err := bob.groupKeys(ctx, &p, nil)
		if err != nil {
			t.Fatal(err)
		}
		targets, err := bob.WatchTargets(ctx, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(targets) != 1 || targets[0].Relay != node || ks[targets[0].Topic].Gen != want {
			t.Fatalf("bob's watch targets: %+v, want generation %d's topic on %s", targets, want, node)
		}
	}
	watched(1)
	if _, err := alice.Rotate(ctx, p, "", DoOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx, p, SyncOptions{Relays: []string{node}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx, p, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	watched(3)

	// With a relay of its own, the code names that, not the node's.
	if _, err := alice.SetRelays(ctx, p, []string{"https://relay.example.org"}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	code, _, err = alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(code.Relays) != 1 || code.Relays[0] != "https://relay.example.org" || code.Reach() != ReachRelays {
		t.Fatalf("the code names %v (%s)", code.Relays, code.Reach())
	}
}

// TestRenamedPursuanceListed: as soon as an amendment renames a
// pursuance, the home lists it, and resolves it, by the name in force.
func TestRenamedPursuanceListed(t *testing.T) {
	ctx := context.Background()
	alice := newMember(t, "Alice")
	c, _ := charter.Template("desk")
	c.Name = "Night Desk"
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := charter.Template("desk")
	c2.Name = "Day Desk"
	do(t, alice, p, charterAmend(t, c2))
	ps, err := alice.Pursuances(ctx)
	if err != nil || len(ps) != 1 || ps[0].Name != "Day Desk" {
		t.Fatalf("listed %+v %v, want Day Desk", ps, err)
	}
	if got, err := alice.Resolve(ctx, "Day Desk"); err != nil || got != p {
		t.Fatalf("resolve the new name: %v %v", got, err)
	}
	if _, err := alice.Resolve(ctx, "Night Desk"); err == nil {
		t.Fatal("the old name still resolves")
	}
}
