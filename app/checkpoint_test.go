package app

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// checkpointNow writes m's checkpoint of p's current state, as a fold
// long enough to be worth it would (the test's folds are too quick to).
func checkpointNow(t *testing.T, m member, p event.ID) string {
	t.Helper()
	ctx := context.Background()
	s, err := m.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := m.foldKey(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.writeCheckpoint(p, s, key); err != nil {
		t.Fatal(err)
	}
	path := m.checkpointPath(m.checkpointCipher(), p)
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// fullFold folds p from m's store, with no state kept and no checkpoint.
func fullFold(t *testing.T, m member, p event.ID) *state.State {
	t.Helper()
	ForgetStates()
	m.ckpt = false
	defer func() { m.ckpt = true }()
	s, err := m.State(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ForgetStates()
	return s
}

// stateAfterRestart is what a new process (no state in memory) gets from
// m's State, and whether it folded the log (judging it), loaded a
// checkpoint with its events (Folds counts both) or opened one without
// them (the state then loads them when first needed).
func stateAfterRestart(t *testing.T, m member, p event.ID) (s *state.State, folded, loaded, opened bool) {
	t.Helper()
	ForgetStates()
	f0 := Folds()
	l0, _ := CheckpointLoads()
	o0 := CheckpointOpens()
	s, err := m.State(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	l1, _ := CheckpointLoads()
	return s, Folds()-f0 > l1-l0, l1 > l0, CheckpointOpens() > o0
}

func checkpointPursuance(t *testing.T) (alice, bob member, p event.ID) {
	t.Helper()
	ctx := context.Background()
	r, _ := testRelay(t)
	alice, bob = newMember(t, "Alice"), newMember(t, "Bob")
	p = deskOn(t, alice, r)
	c, _ := charter.Template("desk")
	for range 5 {
		do(t, alice, p, &state.TaskCreate{Title: "before the checkpoint"})
	}
	code, _, err := alice.Invite(ctx, p, c.Roles[len(c.Roles)-1].Name, 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	if res, err := bob.Join(ctx, code, DoOptions{}); err != nil || res.SyncErr != nil {
		t.Fatalf("join: %v %v", err, res.SyncErr)
	}
	mustSync(t, bob, p)
	mustSync(t, alice, p)
	// Alice's first task since Bob joined carries a key update (which a
	// state folded with secrets is not extended with: ErrRefold).
	do(t, alice, p, &state.TaskCreate{Title: "after the join"})
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	return alice, bob, p
}

// A process without the state in memory loads the checkpoint and extends
// it with the events stored since (here written after the checkpoint,
// which the new process never saw): no fold, and the state is a full
// fold's.
func TestCheckpointLoadedAndExtended(t *testing.T) {
	alice, bob, p := checkpointPursuance(t)
	checkpointNow(t, alice, p)
	s, folded, loaded, opened := stateAfterRestart(t, alice, p)
	if folded || loaded || !opened || s.Loaded() {
		t.Fatalf("from a fresh checkpoint: folded %v, loaded %v, opened %v (events in memory %v); want it opened without its events",
			folded, loaded, opened, s.Loaded())
	}
	full := fullFold(t, alice, p)
	if !slices.Equal(taskTitles(s), taskTitles(full)) || len(s.Members()) != len(full.Members()) || s.Len() != full.Len() {
		t.Fatalf("the state opened from the checkpoint has tasks %q, the full fold %q", taskTitles(s), taskTitles(full))
	}
	l0, _ := CheckpointLoads()
	if s.Hash() != full.Hash() || !s.Loaded() {
		t.Fatal("the state opened from the checkpoint, its events loaded, is not the full fold's")
	}
	if l1, _ := CheckpointLoads(); l1 != l0+1 {
		t.Fatalf("loading the events of a state opened from a checkpoint: %d loads", l1-l0)
	}
	// Stale: events stored since, by this member and another.
	for range 3 {
		do(t, alice, p, &state.TaskCreate{Title: "after the checkpoint"})
	}
	do(t, bob, p, &state.TaskCreate{Title: "bob's, after the checkpoint"})
	mustSync(t, bob, p)
	mustSync(t, alice, p)
	s, folded, loaded, opened = stateAfterRestart(t, alice, p)
	if folded || !loaded || opened {
		t.Fatalf("from a stale checkpoint: folded %v, loaded %v, opened %v; want a load and an extension", folded, loaded, opened)
	}
	full = fullFold(t, alice, p)
	if s.Hash() != full.Hash() || s.Len() != full.Len() {
		t.Fatalf("checkpoint + events since: %d events, full fold %d (or another hash)", s.Len(), full.Len())
	}
}

// A checkpoint that is corrupt, of another home, or of other secrets is
// set aside: the log is folded, and the state is right.
func TestCheckpointRefused(t *testing.T) {
	alice, bob, p := checkpointPursuance(t)
	want := fullFold(t, alice, p).Hash()
	path := checkpointNow(t, alice, p)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		s, folded, loaded, opened := stateAfterRestart(t, alice, p)
		if loaded || opened || !folded {
			t.Fatalf("%s: loaded %v, opened %v, folded %v; want the log folded", what, loaded, opened, folded)
		}
		if s.Hash() != want {
			t.Fatalf("%s: the state is not the full fold's", what)
		}
	}
	// A byte flipped in the sealed file.
	bad := append([]byte{}, good...)
	bad[len(bad)/2] ^= 1
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	check("corrupt")
	// Cut short.
	if err := os.WriteFile(path, good[:len(good)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	check("cut")
	// Bob's checkpoint of the same pursuance (same events, another
	// home's key), put where Alice's is.
	bobs, err := os.ReadFile(checkpointNow(t, bob, p))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bobs, 0o600); err != nil {
		t.Fatal(err)
	}
	check("another home's")
	// Alice's, made when her secrets or member KEM keys were others
	// (the header the file carries says so).
	for i, change := range []func(*foldKey){
		func(k *foldKey) { k.secrets[0] ^= 1 },
		func(k *foldKey) { k.kems[0] ^= 1 },
		func(k *foldKey) { k.evidence++ },
	} {
		ctx := context.Background()
		s, err := alice.State(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		key, _, err := alice.foldKey(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		change(&key)
		if err := alice.writeCheckpoint(p, s, key); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("folded with other secrets, keys or evidence (%d)", i))
	}
	// And the good one again is taken: the refusals above were the
	// checkpoints', not the test's.
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, folded, _, opened := stateAfterRestart(t, alice, p); folded || !opened || s.Hash() != want {
		t.Fatalf("the checkpoint as written: opened %v, folded %v", opened, folded)
	}
}

func taskTitles(s *state.State) []string {
	var out []string
	for _, t := range s.Tasks() {
		out = append(out, t.Title)
	}
	return out
}

// A checkpoint whose header says it covers the store as it is now but
// whose state is of fewer events (only a bug could write one: the file is
// sealed under the home's key) is refused when opened: the log is folded.
func TestCheckpointOfAnotherLogRefused(t *testing.T) {
	ctx := context.Background()
	alice, _, p := checkpointPursuance(t)
	old, err := alice.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	do(t, alice, p, &state.TaskCreate{Title: "not in the checkpoint"})
	key, _, err := alice.foldKey(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.writeCheckpoint(p, old, key); err != nil {
		t.Fatal(err)
	}
	s, folded, _, opened := stateAfterRestart(t, alice, p)
	if opened || !folded {
		t.Fatalf("opened %v, folded %v; want the log folded", opened, folded)
	}
	if full := fullFold(t, alice, p); s.Hash() != full.Hash() {
		t.Fatal("the state is not the full fold's")
	}
}

// A command's node (Options.CheckpointWrites) writes, when it closes, the
// checkpoint of what it wrote: the next command opens it without reading
// the log, and sees the write.
func TestCommandCheckpointsItsWrites(t *testing.T) {
	alice, bob, p := checkpointPursuance(t)
	checkpointNow(t, alice, p)
	alice.opts.CheckpointWrites = true
	do(t, alice, p, &state.TaskCreate{Title: "written by a command"})
	_, w0 := CheckpointLoads()
	alice.checkpointWrites() // as Close does
	if _, w1 := CheckpointLoads(); w1 != w0+1 {
		t.Fatalf("%d checkpoints written on close, want 1", w1-w0)
	}
	s, folded, loaded, opened := stateAfterRestart(t, alice, p)
	if folded || loaded || !opened {
		t.Fatalf("after a command's write: folded %v, loaded %v, opened %v; want it opened", folded, loaded, opened)
	}
	if titles := taskTitles(s); titles[len(titles)-1] != "written by a command" {
		t.Fatalf("tasks %q", titles)
	}
	if full := fullFold(t, alice, p); s.Hash() != full.Hash() {
		t.Fatal("the state is not the full fold's")
	}
	// What a sync brings in too (`pursuance sync`).
	do(t, bob, p, &state.TaskCreate{Title: "bob's, synced in"})
	mustSync(t, bob, p)
	mustSync(t, alice, p)
	alice.checkpointWrites()
	s, folded, loaded, opened = stateAfterRestart(t, alice, p)
	if folded || loaded || !opened {
		t.Fatalf("after a sync: folded %v, loaded %v, opened %v; want it opened", folded, loaded, opened)
	}
	if titles := taskTitles(s); !slices.Contains(titles, "bob's, synced in") {
		t.Fatalf("tasks %q", titles)
	}
	// A node that keeps its states (no CheckpointWrites) leaves the
	// checkpoint to its schedule.
	alice.opts.CheckpointWrites = false
	do(t, alice, p, &state.TaskCreate{Title: "written by a node"})
	_, w0 = CheckpointLoads()
	alice.checkpointWrites()
	if _, w1 := CheckpointLoads(); w1 != w0 {
		t.Fatalf("%d checkpoints written by a node that keeps its states", w1-w0)
	}
}

// Requests and a round that find no state kept (up starting) open the
// checkpoint once between them: the others wait for it and take the
// state it gave.
func TestCheckpointOpenedOnce(t *testing.T) {
	alice, _, p := checkpointPursuance(t)
	checkpointNow(t, alice, p)
	ForgetStates()
	o0 := CheckpointOpens()
	f0 := Folds()
	got := make([]*state.State, 4)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			s, err := alice.fold(context.Background(), p, false)
			if err != nil {
				t.Error(err)
			}
			got[i] = s
		})
	}
	wg.Wait()
	if opens := CheckpointOpens() - o0; opens != 1 || Folds() != f0 {
		t.Fatalf("%d opens of the checkpoint and %d folds by 4 callers at once, want 1 and 0", opens, Folds()-f0)
	}
	for _, s := range got[1:] {
		if s != got[0] {
			t.Fatal("callers at once got different states")
		}
	}
}
