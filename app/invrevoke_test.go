package app

import (
	"context"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// TestRevokeOneInviteOtherJoins: alice makes two invites (both seal the
// same group generation) and revokes one before the other is used; the
// revocation rotates the group key at once, sealed to the members only.
// Bob then joins over the relay with the other, still valid, code. He
// holds only the generation his code carried, so his join is on its
// topic: alice's node must follow that topic live (a node runs a round
// when an envelope arrives on a topic it follows, and else only every
// --interval), not only the newest. Then both see bob as a member, and
// he reads a task alice wrote after the revocation.
func TestRevokeOneInviteOtherJoins(t *testing.T) {
	for _, tc := range []struct{ template, role string }{{"desk", "researcher"}, {"collective", "member"}} {
		t.Run(tc.template, func(t *testing.T) { revokeOneInviteOtherJoins(t, tc.template, tc.role) })
	}
}

func revokeOneInviteOtherJoins(t *testing.T, template, role string) {
	ctx := context.Background()
	relayURL, _ := testRelay(t)
	alice, bob := newMember(t, "Alice"), newMember(t, "Bob")
	c, _ := charter.Template(template)
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetRelays(ctx, p, []string{relayURL}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	codeB, _, err := alice.Invite(ctx, p, role, 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	codeX, _, err := alice.Invite(ctx, p, role, 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	before := newestGen(t, alice, p)
	if _, err := alice.Act(ctx, p, &state.InviteRevoke{Invite: codeX.Invite}, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	if newestGen(t, alice, p) <= before {
		t.Fatal("the revocation did not rotate the group key: the test shows nothing")
	}
	task := do(t, alice, p, &state.TaskCreate{Title: "After the revocation", VisibleTo: []string{role}})
	mustSync(t, alice, p)
	if _, err := bob.Join(ctx, codeB, DoOptions{}); err != nil {
		t.Fatal(err)
	}

	// Bob's join is on the topic he follows (his newest generation);
	// alice's node follows it too.
	bt, err := bob.WatchTargets(ctx, p, nil)
	if err != nil || len(bt) != 1 {
		t.Fatalf("bob's watch targets: %+v %v", bt, err)
	}
	at, err := alice.WatchTargets(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !watches(at, relayURL, bt[0].Topic) {
		t.Fatalf("alice's node does not follow the topic bob's join is on (%d targets): it takes the join only at its next timed round", len(at))
	}

	mustSync(t, alice, p) // takes bob's join, re-keys to him
	mustSync(t, bob, p)
	as, err := alice.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := as.Member(bob.id.ID()); !ok {
		t.Fatal("alice never took bob's join")
	}
	bs, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := bs.Member(bob.id.ID()); !ok {
		t.Fatal("bob does not see himself as a member")
	}
	if tk, _ := bs.Task(task.ID()); tk == nil || tk.Title != "After the revocation" {
		t.Fatalf("bob does not read the task alice wrote after the revocation: %+v", tk)
	}
	// Once every invite is spent, alice follows the newest topic alone.
	if at, err = alice.WatchTargets(ctx, p, nil); err != nil || len(at) != 1 {
		t.Fatalf("with no invite pending, alice follows %d topics (%v), want 1", len(at), err)
	}
	late := do(t, bob, p, &state.TaskCreate{Title: "From bob", VisibleTo: []string{role}})
	mustSync(t, bob, p)
	mustSync(t, alice, p)
	if as, _ = alice.State(ctx, p); as != nil {
		if tk, _ := as.Task(late.ID()); tk == nil {
			t.Fatal("alice does not read bob's task")
		}
	}
}

// TestMultiUseInviteSecondJoin: an invite for two uses seals a generation;
// carol joins with it, the keys are rotated (the code is stale once used)
// and every member moves past that generation. Bob, joining later with the
// same code, holds only that generation: its topic must still be read
// (not retired while the invite may admit someone) and followed live.
func TestMultiUseInviteSecondJoin(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, _, p := deskOnRelay(t)
	bob, carol := newMember(t, "Bob"), newMember(t, "Carol")
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 2, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	if _, err := carol.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p) // re-keys what carol's code carried
	mustSync(t, carol, p)
	do(t, carol, p, &state.TaskCreate{Title: "Carol moves on", VisibleTo: []string{"researcher"}})
	mustSync(t, carol, p)
	mustSync(t, alice, p)
	do(t, alice, p, &state.TaskCreate{Title: "Alice moves on", VisibleTo: []string{"researcher"}})
	mustSync(t, alice, p)

	if _, err := bob.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	bt, err := bob.WatchTargets(ctx, p, nil)
	if err != nil || len(bt) != 1 {
		t.Fatalf("bob's watch targets: %+v %v", bt, err)
	}
	at, err := alice.WatchTargets(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !watches(at, relayURL, bt[0].Topic) {
		t.Error("alice's node does not follow the topic bob's join is on")
	}
	mustSync(t, alice, p)
	if as, _ := alice.State(ctx, p); as != nil {
		if _, ok := as.Member(bob.id.ID()); !ok {
			t.Fatal("alice never read bob's join: the topic of the generation his code carried was retired while the invite could still admit him")
		}
	}
	mustSync(t, bob, p)
	task := do(t, alice, p, &state.TaskCreate{Title: "For both", VisibleTo: []string{"researcher"}})
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	if bs, _ := bob.State(ctx, p); bs != nil {
		if tk, _ := bs.Task(task.ID()); tk == nil {
			t.Fatal("bob does not read what alice wrote after his join")
		}
	}
}

// newestGen returns the newest group generation m holds in p.
func newestGen(t *testing.T, m member, p event.ID) uint64 {
	t.Helper()
	ks, err := m.groupKeys(context.Background(), &p, nil)
	if err != nil {
		t.Fatal(err)
	}
	var g uint64
	for _, k := range ks {
		g = max(g, k.Gen)
	}
	return g
}

// watches reports whether targets follow topic on relay u.
func watches(targets []WatchTarget, u string, topic keys.Topic) bool {
	for _, w := range targets {
		if w.Relay == u && w.Topic == topic {
			return true
		}
	}
	return false
}
