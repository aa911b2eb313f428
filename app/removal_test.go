package app

import (
	"bytes"
	"context"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// deskOnRelay founds a desk on a test relay with alice (editor) and the
// given researchers, all joined and synced.
func deskOnRelay(t *testing.T, researchers ...string) (relayURL string, alice member, others []member, p event.ID) {
	t.Helper()
	ctx := context.Background()
	relayURL, _ = testRelay(t)
	alice = newMember(t, "Alice")
	p = deskOn(t, alice, relayURL)
	for _, name := range researchers {
		m := newMember(t, name)
		code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mustSync(t, alice, p)
		if _, err := m.Join(ctx, code, DoOptions{}); err != nil {
			t.Fatal(err)
		}
		mustSync(t, alice, p)
		others = append(others, m)
	}
	for _, m := range others {
		mustSync(t, m, p)
	}
	mustSync(t, alice, p)
	return relayURL, alice, others, p
}

// TestOfflineWriteDuringRemoval: carol writes a task while offline; alice,
// meanwhile, removes bob. Carol publishes after she has learned of the
// removal (sync reads first): her task goes out under the newest group
// generation, so bob, reading the relay, never gets it. (Its content was
// sealed, at carol's parents, under the researchers' generation bob held:
// handed the raw event by a member, bob would read it; docs/keys.md.)
func TestOfflineWriteDuringRemoval(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, rs, p := deskOnRelay(t, "Bob", "Carol")
	bob, carol := rs[0], rs[1]
	offline := do(t, carol, p, &state.TaskCreate{Title: "Written offline", VisibleTo: []string{"researcher"}})
	// Alice is busy meanwhile, so that carol's task sorts before the
	// removal and its re-key in log order.
	do(t, alice, p, &state.TaskCreate{Title: "Alice's", VisibleTo: []string{"editor"}})
	do(t, alice, p, &state.TaskCreate{Title: "Alice's too", VisibleTo: []string{"editor"}})
	if _, left, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil || len(left) > 0 {
		t.Fatalf("remove: %v %v", left, err)
	}
	mustSync(t, alice, p)
	mustSync(t, carol, p) // reads the removal, heals, then publishes
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	as, _ := alice.State(ctx, p)
	if tk, _ := as.Task(offline.ID()); tk == nil || tk.Title != "Written offline" {
		t.Fatalf("alice does not read carol's task: %+v", tk)
	}
	if en, _ := as.Entry(offline.ID()); en.Lamport >= mustEntry(t, as, mustRemoval(t, as)).Lamport {
		t.Fatalf("the test meant carol's task to sort before the removal (lamport %d)", en.Lamport)
	}
	if _, err := bob.Store().Get(ctx, offline.ID()); err == nil {
		t.Error("bob, removed, got the task carol published after learning of his removal")
	}
	if readable(t, relayURL, alice, bob.id, p)[offline.ID()] {
		t.Error("carol's task is on the relay under a generation bob holds")
	}
	// (Bob does not learn of his removal here: alice's two tasks before it
	// went out only after it, under the new generation, and the removal
	// needs them. Published as they were written, they would have gone out
	// under the old one.)
	// What holds for the content: the raw event opens to bob (the limit
	// docs/keys.md states).
	copyAll(t, carol, bob, p)
	bs, _ := bob.State(ctx, p)
	raw, _ := bob.Store().Get(ctx, offline.ID())
	if !tryEverything(t, bob, bs, raw) {
		t.Error("docs/keys.md says the raw event's content opens to bob; it does not (update the doc)")
	}
}

func mustRemoval(t *testing.T, s *state.State) event.ID {
	t.Helper()
	for _, en := range s.Log() {
		if en.Kind == event.KindRemove {
			return en.ID
		}
	}
	t.Fatal("no removal")
	return event.ID{}
}

// TestConcurrentRotationDuringRemoval: carol, who has not seen bob's
// removal, rotates the group key (sealing it to bob) and sorts after
// alice's re-key; alice's next task must not go out under carol's
// generation, which bob holds.
func TestConcurrentRotationDuringRemoval(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, rs, p := deskOnRelay(t, "Bob", "Carol")
	bob, carol := rs[0], rs[1]
	if _, left, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil || len(left) > 0 {
		t.Fatalf("remove: %v %v", left, err)
	}
	// Carol, offline, writes two things and rotates: her rotation sorts
	// after alice's re-key and before alice's next task in log order
	// (alice: removal, group re-key, researchers' re-key, task; carol: two
	// tasks, group rotation).
	for range 2 {
		do(t, carol, p, &state.TaskCreate{Title: "Carol's", VisibleTo: []string{"researcher"}})
	}
	if _, err := carol.Rotate(ctx, p, "", DoOptions{}); err != nil {
		t.Fatal(err)
	}
	// What carol wrote reaches alice without carol having read anything
	// (a file she handed over), after alice wrote her next task.
	var file bytes.Buffer
	if _, err := carol.Export(ctx, p, &file); err != nil {
		t.Fatal(err)
	}
	secret := do(t, alice, p, &state.TaskCreate{Title: "After bob", VisibleTo: []string{"researcher"}})
	if _, err := alice.Import(ctx, &file); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p) // carol's rotation is stale (bob holds it): heals, publishes
	mustSync(t, carol, p)
	if readable(t, relayURL, alice, bob.id, p)[secret.ID()] {
		t.Error("alice's task written after bob's removal is on the relay under a generation bob holds")
	}
	as, _ := alice.State(ctx, p)
	var carols int
	for _, kg := range as.KeyGenerations("") {
		if len(kg.Members) == 3 && mustEntry(t, as, kg.Update).Lamport >= mustEntry(t, as, secret.ID()).Lamport {
			t.Fatal("the test meant carol's rotation to sort before alice's task")
		}
	}
	for _, kg := range as.KeyGenerations("") {
		if len(kg.Members) == 3 {
			carols++
		}
	}
	if carols == 0 {
		t.Fatal("the test meant carol's rotation to include bob")
	}
	cs, _ := carol.State(ctx, p)
	if tk, _ := cs.Task(secret.ID()); tk == nil || tk.Title != "After bob" {
		t.Errorf("carol does not read alice's task: %+v", tk)
	}
}

// readable returns the events whose envelopes on the relay open with a
// group generation that id holds, given every event of p that alice
// holds (as if the member with id had every ciphertext): what the member
// can read from the relay, whatever reaches it and whatever its client
// does with it.
func readable(t *testing.T, relayURL string, alice member, id *identity.Identity, p event.ID) map[event.ID]bool {
	t.Helper()
	oracle := newMemberWith(t, id)
	copyAll(t, alice, oracle, p)
	return readableBy(t, relayURL, oracle, p)
}

func mustSyncDB(t *testing.T, m member) *syncDB {
	t.Helper()
	sdb, err := m.syncDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sdb
}

// TestSecondJoinerIsRekeyed: two invites seal the same generation; carol
// joins first, and her first sync rotates the keys her code carried. Bob
// joins later holding only the old generation: the re-key to him is also
// published where he reads, so he reads what alice writes next.
func TestSecondJoinerIsRekeyed(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, _, p := deskOnRelay(t)
	_ = relayURL
	bob, carol := newMember(t, "Bob"), newMember(t, "Carol")
	codeB, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	codeC, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	if _, err := carol.Join(ctx, codeC, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	if _, err := bob.Join(ctx, codeB, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p) // sees bob's join, re-keys to him
	task := do(t, alice, p, &state.TaskCreate{Title: "For the researchers", VisibleTo: []string{"researcher"}})
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	bs, _ := bob.State(ctx, p)
	if tk, _ := bs.Task(task.ID()); tk == nil || tk.Title != "For the researchers" {
		t.Fatalf("bob, the second to join, does not read alice's task: %+v", tk)
	}
}

// TestRetiredTopicsNotRead: once every member has moved past the
// generations a removed member holds, members stop reading their topics,
// and what the removed member appends there never reaches them; until
// then they do read it (so the test shows what retiring changes).
func TestRetiredTopicsNotRead(t *testing.T) {
	ctx := context.Background()
	_, alice, rs, p := deskOnRelay(t, "Bob", "Carol")
	bob, carol := rs[0], rs[1]
	if _, _, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	junk := func() event.ID {
		t.Helper()
		res, err := bob.Do(ctx, p, &state.Leave{}, DoOptions{Unchecked: true})
		if err != nil {
			t.Fatal(err)
		}
		mustSync(t, bob, p)
		return res.Event.ID()
	}
	// Carol has not written since the re-key: the old topics stay read
	// (what bob appends is read, and refused: admit.go).
	first := junk()
	mustSync(t, alice, p)
	if pl, err := mustSyncDB(t, alice).refusedPlaces(ctx, []event.ID{first}); err != nil || len(pl) == 0 {
		t.Fatalf("before everyone moved on, alice does not read the old topic (%v)", err)
	}
	as, _ := alice.State(ctx, p)
	retiredBefore := len(RetiredTopics(as, alice.now()))
	// Carol moves on: she writes after the re-key.
	mustSync(t, carol, p)
	do(t, carol, p, &state.TaskCreate{Title: "After the re-key", VisibleTo: []string{"researcher"}})
	mustSync(t, carol, p)
	mustSync(t, alice, p)
	as, _ = alice.State(ctx, p)
	if len(RetiredTopics(as, alice.now())) <= retiredBefore {
		t.Fatal("no more topics retired once everyone moved on")
	}
	second := junk()
	mustSync(t, alice, p)
	if pl, _ := mustSyncDB(t, alice).refusedPlaces(ctx, []event.ID{second}); len(pl) > 0 {
		t.Error("alice read what the removed member appended to a retired topic")
	}
	if _, err := alice.Store().Get(ctx, second); err == nil {
		t.Error("alice stored what the removed member appended to a retired topic")
	}
	// What members write still flows.
	late := do(t, carol, p, &state.TaskCreate{Title: "Still read", VisibleTo: []string{"researcher"}})
	mustSync(t, carol, p)
	mustSync(t, alice, p)
	if _, err := alice.Store().Get(ctx, late.ID()); err != nil {
		t.Errorf("alice does not get carol's new task: %v", err)
	}
}
