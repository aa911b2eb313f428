package state

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"pgregory.net/rapid"

	"github.com/pursuance/pursuance/event"
)

// extended counts the Extends the tests made that did not ask for a
// refold, and of those the ones that added an event before the end of
// the log: a test that never got there would prove nothing.
var extended, extendedLate atomic.Int64

// extendedRekey counts the Extends of states folded with secrets that
// took a key update (takeKeys) instead of asking for a refold.
var extendedRekey atomic.Int64

// insertedLate counts the late events the tests put through Extend's
// path for task events (insertTasks) and checked against a full fold.
var insertedLate atomic.Int64

// sameState fails t unless inc, a state extended incrementally, is the
// state full, folded from scratch from the same events, is: the same hash
// (charter, members, tasks, keys, proposals, every verdict) and the same
// audit log, entry by entry, with the same key generations held.
func sameState(t tb, inc, full *State, what string) {
	t.Helper()
	if !noRare.empty() {
		t.Fatalf("%s: a fold wrote to noRare, the nodeRare every node without one shares", what)
	}
	if inc.Hash() != full.Hash() {
		li, lf := inc.Log(), full.Log()
		for i := range min(len(li), len(lf)) {
			if li[i].ID != lf[i].ID || li[i].Accepted != lf[i].Accepted || li[i].Reason != lf[i].Reason || li[i].Note != lf[i].Note {
				t.Fatalf("%s: the extended state differs from a full fold at entry %d (%s %s): accepted %v %q, full fold: %v %q",
					what, i, li[i].Kind, li[i].ID.Short(), li[i].Accepted, li[i].Reason, lf[i].Accepted, lf[i].Reason)
			}
		}
		t.Fatalf("%s: the extended state's hash differs from a full fold's (%d and %d events)", what, len(li), len(lf))
	}
	if !slices.EqualFunc(inc.Log(), full.Log(), func(a, b Entry) bool {
		return a.ID == b.ID && a.Accepted == b.Accepted && a.Reason == b.Reason && a.Note == b.Note
	}) {
		t.Fatalf("%s: the extended state's log differs from a full fold's", what)
	}
	same := func(a, b Entry) bool {
		return a.ID == b.ID && a.Accepted == b.Accepted && a.Reason == b.Reason && a.Note == b.Note
	}
	back := slices.Collect(inc.EntriesBackward())
	slices.Reverse(back)
	if !slices.EqualFunc(slices.Collect(inc.Entries()), inc.Log(), same) || !slices.EqualFunc(back, inc.Log(), same) {
		t.Fatalf("%s: Entries or EntriesBackward differ from Log", what)
	}
	// Tasks is kept per state (memo.go): the extended state's is its own.
	if !slices.EqualFunc(inc.Tasks(), full.Tasks(), func(a, b *Task) bool { return a.ID == b.ID && a.Title == b.Title && a.Status == b.Status }) {
		t.Fatalf("%s: the extended state's tasks differ from a full fold's", what)
	}
	hi, hf := inc.Held(), full.Held()
	if len(hi) != len(hf) {
		t.Fatalf("%s: the extended state holds %d key generations, a full fold %d", what, len(hi), len(hf))
	}
	for id := range hf {
		if _, ok := hi[id]; !ok {
			t.Fatalf("%s: the extended state lacks generation %s", what, id.Short())
		}
	}
}

// incremental follows one delivery order: it keeps a state extended with
// the events delivered since it was last extended, at random points, and
// checks each against a full fold of the same events (build).
type incremental struct {
	t     tb
	rng   *rand.Rand
	build func(map[event.ID]*event.Event) *State
	inc   *State
	pend  []*event.Event
}

func (x *incremental) deliver(e *event.Event) { x.pend = append(x.pend, e) }

// step extends the state with what was delivered since, if the dice say
// so (always with force), and checks it.
func (x *incremental) step(have map[event.ID]*event.Event, force bool) {
	x.t.Helper()
	if len(x.pend) == 0 || !force && x.rng.IntN(4) == 0 {
		return
	}
	if x.inc == nil {
		x.inc, x.pend = x.build(have), nil
		return
	}
	late := false
	last := x.inc.b().nodes[len(x.inc.b().nodes)-1].e
	for _, e := range x.pend {
		late = late || logCompare(e, &last) < 0
	}
	// Half the time, as a process without the state in memory would:
	// rebuilt from its checkpoint first (checkpoint_test.go), then
	// extended.
	before := x.inc.Hash()
	if x.rng.IntN(2) == 0 {
		prev := maps.Clone(have)
		for _, e := range x.pend {
			delete(prev, e.ID())
		}
		x.inc = fromCheckpoint(x.t, x.inc, prev, x.rng)
	}
	if late {
		x.checkInsert(have)
	}
	// Deliver in a shuffled order: Extend sorts them.
	x.rng.Shuffle(len(x.pend), func(i, j int) { x.pend[i], x.pend[j] = x.pend[j], x.pend[i] })
	pend := x.pend
	s, err := x.inc.Extend(x.pend)
	x.pend = nil
	if x.inc.Hash() != before {
		x.t.Fatal("Extend changed the state it extended, which its readers still read")
	}
	switch {
	case errors.Is(err, ErrRefold):
		x.inc = x.build(have)
		return
	case err != nil:
		x.t.Fatal(err)
	}
	extended.Add(1)
	if late {
		extendedLate.Add(1)
	}
	if x.inc.b().secrets != nil && slices.ContainsFunc(pend, func(e *event.Event) bool { return e.Kind == event.KindKeyUpdate }) {
		extendedRekey.Add(1)
	}
	sameState(x.t, s, x.build(have), "after an Extend")
	x.inc = s
}

// checkInsert puts the events delivered, some sorting before the end of
// the log, through Extend's path for task events when they qualify, and
// checks what it gives against a full fold.
func (x *incremental) checkInsert(have map[event.ID]*event.Event) {
	x.t.Helper()
	var add []*event.Event
	for _, e := range x.pend {
		if _, dup := x.inc.b().posOf(e.ID()); !dup && !slices.Contains(add, e) {
			add = append(add, e)
		}
	}
	if len(add) == 0 {
		return
	}
	slices.SortFunc(add, func(a, b *event.Event) int { return logCompare(a, &head{id: b.ID(), Lamport: b.Lamport}) })
	before := x.inc.Hash()
	s, ok := x.inc.insertTasks(add)
	if x.inc.Hash() != before {
		x.t.Fatal("insertTasks changed the state it extended")
	}
	if !ok {
		return
	}
	insertedLate.Add(1)
	sameState(x.t, s, x.build(have), "after late task events inserted")
}

// checkIncremental plays the events of w in a random causal delivery
// order (seed), extending a state as they come, and checks it against a
// full fold at every step (sameState). build folds a set of events as the
// replica would (with its secrets, or none).
func checkIncremental(t tb, w *world, seed uint64, build func(map[event.ID]*event.Event) *State) {
	t.Helper()
	ids := make([]event.ID, 0, len(w.all))
	for id := range w.all {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, event.ID.Compare)
	rng := rand.New(rand.NewPCG(seed, 11))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	x := &incremental{t: t, rng: rng, build: build}
	have := map[event.ID]*event.Event{}
	pending := ids
	for len(pending) > 0 {
		for i, id := range pending {
			e := w.all[id]
			ok := e.Backlink.IsZero() || have[e.Backlink] != nil
			for _, p := range e.Parents {
				ok = ok && have[p] != nil
			}
			if ok {
				have[id] = e
				x.deliver(e)
				pending = slices.Delete(pending, i, i+1)
				break
			}
		}
		if have[w.pursue] != nil {
			x.step(have, false)
		}
	}
	x.step(have, true)
}

// TestPropertyIncremental plays random pursuances (as TestPropertyRules:
// concurrent removals and demotions, forks, key rotations, sealed tasks,
// expiring invites, succession) and delivers their events in random
// causal orders to a replica that keeps its state and extends it as
// events come, with the secrets of one member or none; at every step the
// extended state must be the full fold's.
func TestPropertyIncremental(t *testing.T) {
	before, beforeLate, beforeInsert, beforeRekey := extended.Load(), extendedLate.Load(), insertedLate.Load(), extendedRekey.Load()
	// Under the race detector, shorter plays keep the package's tests
	// within a couple of minutes on a loaded two-core machine.
	most := 60
	if raceEnabled {
		most = 20
	}
	rapid.Check(t, func(rt *rapid.T) {
		w, _ := playRandomW(rt, rapid.IntRange(5, most).Draw(rt, "steps"))
		var reader *actor
		if i := rapid.IntRange(-1, len(w.order)-1).Draw(rt, "reader"); i >= 0 {
			reader = w.actors[w.order[i]]
		}
		checkIncremental(rt, w, rapid.Uint64().Draw(rt, "order"), replica(rt, w, reader))
	})
	if loadedFromCheckpoint.Load() == 0 {
		t.Fatal("no state was rebuilt from a checkpoint and extended")
	}
	if openedCheckpoints.Load() == 0 {
		t.Fatal("no state was opened from a checkpoint without its events and extended")
	}
	t.Logf("%d states rebuilt from their checkpoints, %d of them with pins", loadedFromCheckpoint.Load(), pinnedCheckpoints.Load())
	if extended.Load() == before || extendedLate.Load() == beforeLate {
		t.Fatalf("no Extend took events (%d), or none sorting before the end (%d): the property was not exercised",
			extended.Load()-before, extendedLate.Load()-beforeLate)
	}
	t.Logf("%d Extends checked, %d of them with events sorting before the end", extended.Load()-before, extendedLate.Load()-beforeLate)
	// Short plays (the race detector's) may have none: TestExtendTakesKeyUpdate
	// is the one that must go through takeKeys.
	t.Logf("%d extensions of states folded with secrets took a key update", extendedRekey.Load()-beforeRekey)
	// TestPropertyLateTaskEvents is the one that must go through it.
	t.Logf("%d of them through the path for late task events", insertedLate.Load()-beforeInsert)
}

// TestPropertyLateTaskEvents is TestPropertyIncremental on pursuances at
// work: after everyone joined, mostly task events among members who sync
// now and then, so that many arrive late, sorting before events the
// replica has, and go through Extend's path for them (insertTasks). At
// every step the extended state must be the full fold's.
func TestPropertyLateTaskEvents(t *testing.T) {
	before := insertedLate.Load()
	most, least := 80, 50
	if raceEnabled {
		most, least = 30, 8
	}
	rapid.Check(t, func(rt *rapid.T) {
		w, _ := playWork(rt, rapid.IntRange(10, most).Draw(rt, "steps"), true)
		var reader *actor
		if i := rapid.IntRange(-1, len(w.order)-1).Draw(rt, "reader"); i >= 0 {
			reader = w.actors[w.order[i]]
		}
		checkIncremental(rt, w, rapid.Uint64().Draw(rt, "order"), replica(rt, w, reader))
	})
	n := insertedLate.Load() - before
	if n < int64(least) {
		t.Fatalf("only %d extensions went through the path for late task events: the property was not exercised", n)
	}
	t.Logf("%d extensions with late task events went through insertTasks", n)
}

// replica returns how a replica folds a set of w's events: as reader,
// with its keys, or with none (reader nil).
func replica(t tb, w *world, reader *actor) func(map[event.ID]*event.Event) *State {
	return func(have map[event.ID]*event.Event) *State {
		if reader == nil {
			return buildFrom(t, w.pursue, have)
		}
		seen := reader.seen
		reader.seen = have
		defer func() { reader.seen = seen }()
		return w.buildFor(reader)
	}
}

// A state a node keeps is read by many requests at once, while a round
// extends it: State.Check (which fills the caches of what events' bodies
// decode to: each join checked adds its newcomer's identity) from several
// goroutines and Extend at the same time must not race (run under -race;
// without the caches' lock it reports the race).
func TestKeptStateConcurrentReads(t *testing.T) {
	w := newWorld(t, 3)
	w.do("", "alice", false, []string{"found", "desk"})
	w.do("inv", "alice", false, []string{"invite", "researcher"})
	base := map[event.ID]*event.Event{}
	for id, e := range w.all {
		base[id] = e
	}
	var joins []*event.Event
	for i := range 16 {
		w.do("", fmt.Sprintf("m%d", i), false, []string{"join", "inv"})
	}
	for id, e := range w.all {
		if base[id] == nil {
			joins = append(joins, e)
		}
	}
	s := buildFrom(t, w.pursue, base)
	done := make(chan struct{})
	for g := range 3 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range joins {
				if err := s.Check(joins[(i*(g+1))%len(joins)]); err != nil {
					t.Errorf("check: %v", err)
				}
			}
		}()
	}
	for _, j := range joins {
		if _, err := s.Extend([]*event.Event{j}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		<-done
	}
}

// TestExtendTakesKeyUpdate extends a member's state (folded with its
// secrets) with key updates. A rotation that gives it a new generation,
// with a task sealed under it, is taken without folding the log again, and
// the task opens; a rotation chained to a generation it did not hold
// (which opens what was sealed before it joined) makes it fold again. In
// both, the extended state is the full fold's.
func TestExtendTakesKeyUpdate(t *testing.T) {
	// Bob joins a desk whose researchers had a generation before him,
	// which his invite did not carry.
	setup := func() (*world, func(...string) (*State, error)) {
		w := newWorld(t, 7)
		w.do("", "alice", false, []string{"found", "desk"})
		w.do("", "alice", false, []string{"rotate", "group"})
		w.do("", "alice", false, []string{"rotate", "researcher"})
		w.do("early", "alice", false, []string{"task", "Before Bob", "visible=researcher"})
		w.do("inv", "alice", false, []string{"invite", "researcher"})
		w.do("", "bob", false, []string{"join", "inv"})
		w.sync(nil)
		build := replica(t, w, w.actors["bob"])
		before := maps.Clone(w.all)
		return w, func(labels ...string) (*State, error) {
			t.Helper()
			base := build(before)
			if task, ok := base.Task(w.id("early")); !ok || !task.Sealed {
				t.Fatalf("the task sealed before Bob joined: %+v %v, want it sealed to him", task, ok)
			}
			var add []*event.Event
			all := maps.Clone(before)
			for _, l := range labels {
				e := w.all[w.id(l)]
				add = append(add, e)
				all[e.ID()] = e
			}
			s, err := base.Extend(add)
			if err == nil {
				sameState(t, s, build(all), "extended with "+strings.Join(labels, ", "))
			}
			return s, err
		}
	}

	w, extend := setup()
	w.do("rot", "alice", false, []string{"rotate", "researcher"})
	w.do("after", "alice", false, []string{"task", "After Bob", "visible=researcher"})
	s, err := extend("rot", "after")
	if err != nil {
		t.Fatalf("a rotation giving Bob a generation of his own: %v, want it taken", err)
	}
	if task, ok := s.Task(w.id("after")); !ok || task.Sealed || task.Title != "After Bob" {
		t.Fatalf("the task sealed under the new generation: %+v %v, want it opened", task, ok)
	}

	w, extend = setup()
	w.do("chained", "alice", false, []string{"rotate", "researcher", "chain"})
	if _, err := extend("chained"); !errors.Is(err, ErrRefold) {
		t.Fatalf("a rotation unlocking the generation before Bob joined: %v, want ErrRefold", err)
	}
	if task, ok := replica(t, w, w.actors["bob"])(w.all).Task(w.id("early")); !ok || task.Sealed {
		t.Fatalf("the task sealed before Bob joined, after the chained rotation: %+v %v, want it opened", task, ok)
	}
}
