package app

import (
	"context"
	"slices"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// TestJoinTakenInAtRoundEndIsRekeyed: alice makes two invites; x joins with
// one while alice, not having seen it, revokes that invite (the revocation
// rotates the group key to the members only, so x's node cannot open it);
// bob joins with the other, valid, code after having read x's join, so his
// join names it as a parent. Alice does not admit x's join (its invite is
// revoked): she takes bob's join in only at the end of the round that read
// it, once x's join, named by it, is judged again (read in the same round)
// or fetched again from where an earlier sync refused it. That one round
// of alice must still re-key to bob: bob, syncing, then holds alice's
// current keys and reads a task alice writes after it, which reaches the
// relay alone (no second round of alice's, which would re-key anyway).
func TestJoinTakenInAtRoundEndIsRekeyed(t *testing.T) {
	for _, tc := range []struct {
		name string
		// refusedBefore: alice syncs between the revocation and bob's
		// join, reading and refusing x's join; then the round that reads
		// bob's join fetches it again (refetchRefused). Otherwise both
		// joins are read in the one round, and x's, held back, is admitted
		// at its end once bob's names it (settleDeferred).
		refusedBefore bool
	}{{"held back", false}, {"refused before", true}} {
		t.Run(tc.name, func(t *testing.T) { joinTakenInAtRoundEnd(t, tc.refusedBefore) })
	}
}

func joinTakenInAtRoundEnd(t *testing.T, refusedBefore bool) {
	ctx := context.Background()
	relayURL, alice, _, p := deskOnRelay(t)
	bob, x := newMember(t, "Bob"), newMember(t, "X")
	codeB, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	codeX, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	xJoin, err := x.Join(ctx, codeX, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	revoke, err := alice.Act(ctx, p, &state.InviteRevoke{Invite: codeX.Invite}, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if refusedBefore {
		mustSync(t, alice, p)
		if pl, err := mustSyncDB(t, alice).refusedPlaces(ctx, []event.ID{xJoin.Event.ID()}); err != nil || len(pl) == 0 {
			t.Fatalf("alice did not refuse x's join (%v): the test shows nothing", err)
		}
	}
	bJoin, err := bob.Join(ctx, codeB, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(bJoin.Event.Parents, xJoin.Event.ID()) {
		t.Fatal("bob's join does not name x's: the test shows nothing")
	}
	if _, err := bob.Store().Get(ctx, revoke.Event.ID()); err == nil {
		t.Fatal("bob read the revocation before joining: the test shows nothing")
	}

	// The one round.
	res := mustSync(t, alice, p)
	if relayErrors(res) != "" {
		t.Fatalf("alice's sync: %s", relayErrors(res))
	}
	as, err := alice.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := as.Member(bob.id.ID()); !ok {
		t.Fatal("alice did not take bob's join in")
	}
	if _, ok := as.Member(x.id.ID()); ok {
		t.Error("x, whose invite was revoked, is a member")
	}
	for _, role := range []string{"", "researcher"} {
		if st, ok := as.KeyStatusAt(role, alice.now()); ok && slices.Contains(st.Owed, bob.id.ID()) {
			t.Errorf("after alice's round, the %q key is still owed to bob (the re-key waits for her next round)", role)
		}
	}
	mustSync(t, bob, p)
	if got, want := newestGen(t, bob, p), newestGen(t, alice, p); got != want {
		t.Errorf("bob holds group generation %d after alice's one round and his sync; alice's is %d", got, want)
	}

	// A task alice writes now is sealed under keys bob holds; it reaches
	// the relay alone, as her node's quick push would send it, without a
	// round of hers that would heal first.
	gen := newestGen(t, alice, p)
	task := do(t, alice, p, &state.TaskCreate{Title: "For bob too", VisibleTo: []string{"researcher"}})
	if newestGen(t, alice, p) != gen {
		t.Error("alice's write re-keyed first: her round had left a key owed")
	}
	as, _ = alice.State(ctx, p)
	gens, err := alice.groupEnvelopes(ctx, as)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := gens.last.Seal(task.Encode(), alice.rand())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := relay.NewClient(relayURL, nil).Append(ctx, gens.last.Topic(), gens.last.topicKey, [][]byte{sealed}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, bob, p)
	bs, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if tk, _ := bs.Task(task.ID()); tk == nil || tk.Title != "For bob too" {
		t.Errorf("bob does not read the task alice wrote after her one round: %+v", tk)
	}
}
