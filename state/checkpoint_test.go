package state

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"pgregory.net/rapid"

	"github.com/pursuance/pursuance/event"
)

// loadedFromCheckpoint counts the states checkIncremental rebuilt from a
// checkpoint (and then extended): the property tests fail if none was.
var loadedFromCheckpoint, pinnedCheckpoints, openedCheckpoints atomic.Int64

// fromCheckpoint returns s rebuilt from its checkpoint and the same events
// (have), as a process loading the checkpoint from disk does, and checks
// it is s (sameState). Half the time (rng), the state returned is the one
// opened from the checkpoint without its events (OpenCheckpoint), checked
// to answer every reader its view holds as s does before anything loads
// its events; what reads it next (an Extend) loads them.
func fromCheckpoint(t tb, s *State, have map[event.ID]*event.Event, rng *rand.Rand) *State {
	t.Helper()
	ck, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	r, err := rebuild(s, have, ck)
	if err != nil {
		t.Fatalf("rebuilding a state from its checkpoint: %v", err)
	}
	sameState(t, r, s, "a state rebuilt from its checkpoint")
	// What the hash does not cover but extending it reads: the pins.
	if !maps.Equal(r.b().pinned, s.b().pinned) || !maps.Equal(r.b().excluded, s.b().excluded) {
		t.Fatalf("a state rebuilt from its checkpoint has pins %v (excluded %v), the state checkpointed %v (%v)",
			r.b().pinned, r.b().excluded, s.b().pinned, s.b().excluded)
	}
	if len(s.b().pinned) > 0 {
		pinnedCheckpoints.Add(1)
	}
	loadedFromCheckpoint.Add(1)
	if rng.IntN(2) == 0 {
		return r
	}
	// The loader keeps the verdicts only (CheckpointVerdicts), as the
	// app's does: they rebuild the state, and open no view.
	vs, err := CheckpointVerdicts(ck)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) >= len(ck) {
		t.Fatalf("the verdicts of a checkpoint are %d bytes, the checkpoint %d", len(vs), len(ck))
	}
	if _, err := OpenCheckpoint(vs, s.Pursuance(), s.b().secrets != nil, nil); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("a checkpoint's verdicts opened as a checkpoint: %v", err)
	}
	loads := 0
	var o *State
	o, err = OpenCheckpoint(ck, s.Pursuance(), s.b().secrets != nil, func() (*State, error) {
		loads++
		return rebuildReusing(s, have, vs, o)
	})
	if err != nil {
		t.Fatalf("opening a checkpoint: %v", err)
	}
	sameReaders(t, o, s)
	if o.Loaded() || loads != 0 {
		t.Fatal("reading a state opened from a checkpoint loaded its events")
	}
	if o.Len() != s.Len() || o.Hash() != s.Hash() || !o.Loaded() || loads != 1 {
		t.Fatalf("a state opened from a checkpoint, loaded: %d events, loaded %v (%d times)", o.Len(), o.Loaded(), loads)
	}
	sameReaders(t, o, s)
	openedCheckpoints.Add(1)
	// The state returned: opened again, its events loaded by what reads
	// it next (an Extend).
	o, err = OpenCheckpoint(ck, s.Pursuance(), s.b().secrets != nil, func() (*State, error) { return rebuildReusing(s, have, vs, o) })
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// sameReaders checks that o answers every reader a checkpoint's view
// holds as s does.
func sameReaders(t tb, o, s *State) {
	t.Helper()
	fail := func(what string, got, want any) {
		t.Helper()
		t.Fatalf("a state opened from a checkpoint (loaded %v): %s is %+v, the state checkpointed has %+v", o.Loaded(), what, got, want)
	}
	if o.Pursuance() != s.Pursuance() || o.Name() != s.Name() || o.Len() != s.Len() {
		fail("pursuance, name, length", []any{o.Pursuance(), o.Name(), o.Len()}, []any{s.Pursuance(), s.Name(), s.Len()})
	}
	if (o.Charter() == nil) != (s.Charter() == nil) || o.Charter() != nil && !reflect.DeepEqual(o.Charter(), s.Charter()) {
		fail("the charter", o.Charter(), s.Charter())
	}
	if !reflect.DeepEqual(o.Members(), s.Members()) {
		fail("the members", o.Members(), s.Members())
	}
	if !slices.Equal(o.Relays(), s.Relays()) || !slices.Equal(o.RemovedRelays(), s.RemovedRelays()) {
		fail("the relays (removed)", []any{o.Relays(), o.RemovedRelays()}, []any{s.Relays(), s.RemovedRelays()})
	}
	if !reflect.DeepEqual(o.NodeAddresses(), s.NodeAddresses()) {
		fail("the node addresses", o.NodeAddresses(), s.NodeAddresses())
	}
	if o.SealedTasks() != s.SealedTasks() {
		fail("the sealed tasks", o.SealedTasks(), s.SealedTasks())
	}
	ot, st := o.Tasks(), s.Tasks()
	if len(ot) != len(st) {
		fail("the tasks", len(ot), len(st))
	}
	for i := range st {
		if !reflect.DeepEqual(exported(ot[i]), exported(st[i])) {
			fail("a task", exported(ot[i]), exported(st[i]))
		}
		if t2, ok := o.Task(st[i].ID); !ok || t2 != ot[i] {
			fail("Task of a task", ok, true)
		}
	}
	for id, m := range s.b().auth.former {
		if o.NameOf(id) != m.Name {
			fail("a former member's name", o.NameOf(id), m.Name)
		}
	}
	roles := []string{""}
	if c := s.Charter(); c != nil {
		roles = append(roles, c.RoleNames()...)
	}
	for _, r := range roles {
		if !reflect.DeepEqual(o.KeyGenerations(r), s.KeyGenerations(r)) {
			fail("the key generations of "+r, o.KeyGenerations(r), s.KeyGenerations(r))
		}
		og, ook := o.CurrentKey(r)
		sg, sok := s.CurrentKey(r)
		if ook != sok || !reflect.DeepEqual(og, sg) {
			fail("the current key of "+r, og, sg)
		}
	}
	for _, m := range s.Members() {
		if om, _ := o.Member(m.ID); !reflect.DeepEqual(om, m) || o.NameOf(m.ID) != m.Name {
			fail("a member", om, m)
		}
		if !slices.Equal(o.EntitledScopes(m.ID), s.EntitledScopes(m.ID)) {
			fail("a member's scopes", o.EntitledScopes(m.ID), s.EntitledScopes(m.ID))
		}
		for _, r := range roles {
			if o.MayRotate(m.ID, r) != s.MayRotate(m.ID, r) {
				fail("may rotate "+r, o.MayRotate(m.ID, r), s.MayRotate(m.ID, r))
			}
		}
		for _, tk := range st {
			if o.CanSee(m.ID, tk) != s.CanSee(m.ID, tk) {
				fail("can see", o.CanSee(m.ID, tk), s.CanSee(m.ID, tk))
			}
		}
	}
}

// exported is t without what only the fold reads (unexported fields).
func exported(t *Task) Task {
	c := *t
	c.assigned, c.touched = nil, nil
	return c
}

// rebuild adds the events of have (in log order) to a Builder with s's
// evidence and secrets and finishes it from ck.
func rebuild(s *State, have map[event.ID]*event.Event, ck []byte) (*State, error) {
	return rebuildReusing(s, have, ck, nil)
}

// rebuildReusing is rebuild with the text of opened's view reused
// (Builder.Reuse), as the app's loader does; opened may be nil.
func rebuildReusing(s *State, have map[event.ID]*event.Event, ck []byte, opened *State) (*State, error) {
	x := &Builder{b: newBuilder(s.b().pursuance, maps.Clone(s.b().evForks))}
	x.b.secrets = s.b().secrets
	if err := x.HintHeld(ck); err != nil {
		return nil, err
	}
	if opened != nil {
		x.Reuse(opened)
	}
	for _, e := range logOrder(mapValues(have)) {
		if err := x.Add(e); err != nil {
			return nil, err
		}
	}
	return x.FinishFrom(ck)
}

// A checkpoint that does not fit is refused with ErrCheckpoint, never
// taken: a verdict changed (it decodes and fits the events, but the state
// rebuilt has another hash), another version, a byte flipped, a cut, or
// fewer events than it covers.
func TestCheckpointRefusesMisfits(t *testing.T) {
	most := 30
	if raceEnabled {
		most = 12 // the race detector is slow; the misfits do not need long plays
	}
	rapid.Check(t, func(rt *rapid.T) {
		w, _ := playRandomW(rt, rapid.IntRange(5, most).Draw(rt, "steps"))
		have := maps.Clone(w.all)
		s := buildFrom(rt, w.pursue, have)
		ck, err := s.Checkpoint()
		if err != nil {
			rt.Fatal(err)
		}
		if _, err := rebuild(s, have, ck); err != nil {
			rt.Fatalf("the checkpoint as made: %v", err)
		}
		c, vs, err := decodeVerdicts(ck)
		if err != nil {
			rt.Fatal(err)
		}
		cutInView := ck[:len(ck)-len(c.Verdicts)-3]
		i := rapid.IntRange(0, len(vs.Nodes)-1).Draw(rt, "verdict")
		vs.Nodes[i].Accepted = !vs.Nodes[i].Accepted
		vs.Nodes[i].Reason = map[bool]string{false: "flipped"}[vs.Nodes[i].Accepted]
		c.Verdicts, _ = encMode.Marshal(vs)
		flipped, _ := c.encode()
		vs.Nodes[i].Accepted = !vs.Nodes[i].Accepted
		c.Verdicts, _ = encMode.Marshal(vs)
		c.Version = CheckpointVersion + 1
		newer, _ := c.encode()
		c.Version = CheckpointVersion
		c.Len--
		short, _ := c.encode()
		c.Len++
		c.View = c.View[:len(c.View)-3]
		badView, _ := c.encode()
		corrupt := bytes.Clone(ck)
		corrupt[rapid.IntRange(0, len(ck)-1).Draw(rt, "byte")] ^= 0x10
		fewer := maps.Clone(have)
		evs := logOrder(mapValues(have))
		delete(fewer, evs[len(evs)-1].ID())
		for name, tc := range map[string]struct {
			ck   []byte
			have map[event.ID]*event.Event
		}{
			"a verdict changed": {flipped, have},
			"another version":   {newer, have},
			"a byte flipped":    {corrupt, have},
			"fewer events":      {ck, fewer},
			"cut":               {ck[:len(ck)-7], have},
			"another length":    {short, have},
		} {
			if name == "a byte flipped" {
				// A flip may land where it changes nothing decoded
				// (never in practice: the file is sealed, and a flip
				// fails its tag); taken only if the state is s.
				if r, err := rebuild(s, tc.have, tc.ck); err == nil && r.Hash() != s.Hash() {
					rt.Fatalf("%s: a state of another hash was taken", name)
				}
				continue
			}
			if _, err := rebuild(s, tc.have, tc.ck); !errors.Is(err, ErrCheckpoint) {
				rt.Fatalf("%s: FinishFrom answered %v, want ErrCheckpoint", name, err)
			}
		}
		// Opening one without its events: what it can check alone.
		sec := s.b().secrets != nil
		never := func() (*State, error) { panic("loaded") }
		other := s.Pursuance()
		other[0] ^= 1
		for name, tc := range map[string]struct {
			ck        []byte
			pursuance event.ID
			secrets   bool
		}{
			"another version":      {newer, s.Pursuance(), sec},
			"another pursuance":    {ck, other, sec},
			"other secrets":        {ck, s.Pursuance(), !sec},
			"cut in its view":      {cutInView, s.Pursuance(), sec},
			"a view cut":           {badView, s.Pursuance(), sec},
			"verdicts of a length": {short, s.Pursuance(), sec},
		} {
			o, err := OpenCheckpoint(tc.ck, tc.pursuance, tc.secrets, never)
			if name == "verdicts of a length" {
				// Opened (the view does not count the verdicts, nor does
				// opening read them: a cut in them too), but loading its
				// events refuses it.
				if err != nil {
					rt.Fatalf("%s: %v", name, err)
				}
				if _, err := rebuild(s, have, tc.ck); !errors.Is(err, ErrCheckpoint) {
					rt.Fatalf("%s: FinishFrom answered %v, want ErrCheckpoint", name, err)
				}
				continue
			}
			if !errors.Is(err, ErrCheckpoint) || o != nil {
				rt.Fatalf("%s: OpenCheckpoint answered %v, want ErrCheckpoint", name, err)
			}
		}
	})
}

// TestOpenedCheckpointConcurrentReads: readers of a state opened from a
// checkpoint, in several goroutines at once, some answering from the
// view and some needing the events (Log, Hash, Check, Extend), load the
// events once and all get the answers of the state checkpointed (run
// under -race, it also checks the load does not race with the view's
// readers).
func TestOpenedCheckpointConcurrentReads(t *testing.T) {
	w := newWorld(t, 5)
	w.do("", "alice", false, []string{"found", "desk"})
	w.do("inv", "alice", false, []string{"invite", "researcher"})
	for i := range 8 {
		w.do("", fmt.Sprintf("m%d", i), false, []string{"join", "inv"})
	}
	for i := range 20 {
		w.do(fmt.Sprintf("t%d", i), "alice", false, []string{"task", fmt.Sprintf("task %d", i)})
	}
	base := maps.Clone(w.all)
	w.do("late", "alice", false, []string{"task", "after the checkpoint"})
	var late []*event.Event
	for id, e := range w.all {
		if base[id] == nil {
			late = append(late, e)
		}
	}
	s := buildFrom(t, w.pursue, base)
	ck, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	var loads atomic.Int32
	o, err := OpenCheckpoint(ck, w.pursue, false, func() (*State, error) {
		loads.Add(1)
		return rebuild(s, base, ck)
	})
	if err != nil {
		t.Fatal(err)
	}
	want, wantLog, wantTasks := s.Hash(), s.Log(), len(s.Tasks())
	if wantTasks != 20 {
		t.Fatalf("%d tasks folded, want 20", wantTasks)
	}
	full := buildFrom(t, w.pursue, w.all).Hash()
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for range 20 {
				switch g % 3 {
				case 0:
					if n := len(o.Tasks()); n != wantTasks || len(o.Members()) != len(s.Members()) || o.Len() != s.Len() {
						t.Errorf("%d tasks, want %d", n, wantTasks)
					}
				case 1:
					if o.Hash() != want || len(o.Log()) != len(wantLog) {
						t.Error("another hash or log")
					}
					if err := o.Check(late[0]); err != nil {
						t.Errorf("check: %v", err)
					}
				case 2:
					x, err := o.Extend(late)
					if err != nil || x.Hash() != full {
						t.Errorf("extended: %v, or another hash than a full fold's", err)
					}
				}
			}
		})
	}
	wg.Wait()
	if loads.Load() != 1 || !o.Loaded() {
		t.Fatalf("the events were loaded %d times (loaded %v), want once", loads.Load(), o.Loaded())
	}
}

// A state whose events do not load (its store unreadable) still answers
// from its view, and every reader that needs the events panics with the
// loader's error, not only the first (sync.Once runs the load once).
func TestOpenedCheckpointLoadFails(t *testing.T) {
	w := newWorld(t, 7)
	w.do("", "alice", false, []string{"found", "desk"})
	w.do("t", "alice", false, []string{"task", "a task"})
	s := buildFrom(t, w.pursue, w.all)
	ck, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	o, err := OpenCheckpoint(ck, w.pursue, false, func() (*State, error) { return nil, errors.New("the store is gone") })
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "the store is gone") {
					t.Fatalf("reader %d needing the events: recovered %v, want the loader's error", i, r)
				}
			}()
			o.Log()
		}()
	}
	for i := range 2 {
		if err := o.Load(); err == nil || !strings.Contains(err.Error(), "the store is gone") {
			t.Fatalf("Load %d: %v, want the loader's error", i, err)
		}
	}
	if len(o.Tasks()) != 1 || o.Name() != s.Name() {
		t.Fatal("the view does not answer after a failed load")
	}
}

// TestCheckpointCover goes through every event of a random pursuance in
// log order, as a store does, with a checkpoint of the state of those up
// to a lamport (a causally closed part): exactly the checkpoint's events
// are covered, and a store that lacks one of them is found incomplete.
func TestCheckpointCover(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		w, _ := playRandomW(rt, rapid.IntRange(5, 20).Draw(rt, "steps"))
		all := slices.Collect(maps.Values(w.all))
		slices.SortFunc(all, func(x, y *event.Event) int { return cmp.Or(cmp.Compare(x.Lamport, y.Lamport), x.ID().Compare(y.ID())) })
		upTo := all[rapid.IntRange(0, len(all)-1).Draw(rt, "cut")].Lamport
		base := map[event.ID]*event.Event{}
		for _, e := range all {
			if e.Lamport <= upTo {
				base[e.ID()] = e
			}
		}
		ck, err := buildFrom(rt, w.pursue, base).Checkpoint()
		if err != nil {
			rt.Fatal(err)
		}
		c, err := NewCheckpointCover(ck)
		if err != nil {
			rt.Fatal(err)
		}
		if c.Len() != len(base) {
			rt.Fatalf("covers %d events, the checkpoint has %d", c.Len(), len(base))
		}
		for _, e := range all {
			if got := c.Covers(e.ID()); got != (base[e.ID()] != nil) {
				rt.Fatalf("event %s (lamport %d, cut at %d): covered %v", e.ID().Short(), e.Lamport, upTo, got)
			}
		}
		if !c.Complete() {
			rt.Fatal("every event met, the cover is not complete")
		}
		c, _ = NewCheckpointCover(ck)
		drop := rapid.IntRange(0, len(base)-1).Draw(rt, "dropped")
		for _, e := range all {
			if base[e.ID()] != nil {
				if drop--; drop == -1 {
					continue // the store lost it
				}
			}
			c.Covers(e.ID())
		}
		if c.Complete() {
			rt.Fatal("a store without one of the checkpoint's events is complete")
		}
	})
}

// decodeVerdicts decodes a checkpoint and its verdicts, all of them.
func decodeVerdicts(data []byte) (*checkpoint, *ckVerdicts, error) {
	ck, err := decodeCheckpoint(data)
	if err != nil {
		return nil, nil, err
	}
	var vs ckVerdicts
	if err := ckDec().Unmarshal(ck.Verdicts, &vs); err != nil {
		return nil, nil, fmt.Errorf("%w: its verdicts: %v", ErrCheckpoint, err)
	}
	if len(vs.IDs)%event.IDSize != 0 || len(vs.IDs)/event.IDSize != ck.Len || len(vs.Nodes) != ck.Len {
		return nil, nil, fmt.Errorf("%w: %d events, %d verdicts", ErrCheckpoint, ck.Len, len(vs.Nodes))
	}
	return ck, &vs, nil
}

// TestLoadReusesViewText: a state opened from a checkpoint and loaded by a
// Builder that Reuses it holds its tasks' text in the view's strings
// (titles, bodies, edited titles, comments): one copy while both are
// alive, not two. The same for text opened from sealed events, whether
// opened as they are added (HintHeld) or at the end. Without Reuse, none
// is shared.
func TestLoadReusesViewText(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		w := newWorld(t, 2)
		w.do("", "alice", false, []string{"found", "desk"})
		if sealed {
			w.do("", "alice", false, []string{"rotate", "group"})
			w.do("", "alice", false, []string{"rotate", "editor"})
		}
		w.do("t0", "alice", false, []string{"task", "First title", "visible=editor"})
		w.do("t1", "alice", false, []string{"task", "Second", "visible=editor"})
		w.do("", "alice", false, []string{"edit", "t0", "title=Edited title", "body=A body"})
		w.do("c0", "alice", false, []string{"comment", "t1", "A comment on the second"})
		s := w.buildFor(w.actor("alice"))
		ck, err := s.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ reuse, hint bool }{{true, true}, {true, false}, {false, true}} {
			what := fmt.Sprintf("sealed %v, reuse %v, hint %v", sealed, tc.reuse, tc.hint)
			var o *State
			o, err = OpenCheckpoint(ck, w.pursue, true, func() (*State, error) {
				x := &Builder{b: newBuilder(s.b().pursuance, maps.Clone(s.b().evForks))}
				x.b.secrets = s.b().secrets
				if tc.hint {
					if err := x.HintHeld(ck); err != nil {
						return nil, err
					}
				}
				if tc.reuse {
					x.Reuse(o)
				}
				for _, e := range logOrder(mapValues(w.all)) {
					if err := x.Add(e); err != nil {
						return nil, err
					}
				}
				return x.FinishFrom(ck)
			})
			if err != nil {
				t.Fatal(err)
			}
			view := textOf(o)
			if err := o.Load(); err != nil {
				t.Fatal(err)
			}
			loaded := textOf(o)
			if !slices.Equal(view, loaded) || len(view) != 5 {
				t.Fatalf("%s: the view's text %q, the loaded state's %q", what, view, loaded)
			}
			shared := 0
			for i := range view {
				if view[i] != "" && unsafe.StringData(view[i]) == unsafe.StringData(loaded[i]) {
					shared++
				}
			}
			if want := map[bool]int{true: 4, false: 0}[tc.reuse]; shared != want {
				t.Errorf("%s: %d of the view's 4 strings shared with the loaded state, want %d", what, shared, want)
			}
			if o.b().reuse != nil || o.b().hint != nil {
				t.Errorf("%s: the loaded state's builder still holds the view or the hint", what)
			}
		}
	}
}

// textOf lists the text of s's tasks: titles, bodies, comments.
func textOf(s *State) []string {
	var out []string
	for _, tk := range s.Tasks() {
		out = append(out, tk.Title, tk.Body)
		for _, c := range tk.Comments {
			out = append(out, c.Text)
		}
	}
	return out
}

// TestCheckpointHintsHeldKeys: a checkpoint of a state folded with a
// member's secrets records the keys they opened; a Builder hinted them
// (HintHeld) opens each sealed event as it is added, and FinishFrom gives
// the state checkpointed. Keys other than those the log opens are a
// misfit, refused.
func TestCheckpointHintsHeldKeys(t *testing.T) {
	w := newWorld(t, 2)
	w.do("", "alice", false, []string{"found", "desk"})
	w.do("", "alice", false, []string{"rotate", "group"})
	w.do("", "alice", false, []string{"rotate", "editor"})
	for i := range 4 {
		w.do(fmt.Sprintf("t%d", i), "alice", false, []string{"task", fmt.Sprintf("Sealed %d", i), "visible=editor"})
	}
	s := w.buildFor(w.actor("alice"))
	if len(s.b().held) == 0 || len(s.Tasks()) != 4 {
		t.Fatalf("%d keys held, %d tasks read", len(s.b().held), len(s.Tasks()))
	}
	ck, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	build := func(data []byte) (*Builder, error) {
		x := &Builder{b: newBuilder(s.b().pursuance, maps.Clone(s.b().evForks))}
		x.b.secrets = s.b().secrets
		if err := x.HintHeld(data); err != nil {
			return nil, err
		}
		for _, e := range logOrder(mapValues(w.all)) {
			if err := x.Add(e); err != nil {
				return nil, err
			}
		}
		return x, nil
	}
	x, err := build(ck)
	if err != nil {
		t.Fatal(err)
	}
	sealed := 0
	for _, n := range x.b.nodes {
		if n.e.Kind == event.KindTaskSealed {
			if _, still := n.op.(*TaskSealed); still {
				t.Errorf("a sealed event not opened as it was added")
			}
			sealed++
		}
	}
	if sealed != 4 {
		t.Fatalf("%d sealed events, want 4", sealed)
	}
	r, err := x.FinishFrom(ck)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, r, s, "a state rebuilt with its held keys hinted")

	// Keys other than those the log opens: refused, even one that opens
	// nothing (the state rebuilt would have the same hash).
	c, vs, err := decodeVerdicts(ck)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(){
		"another seed": func() { vs.Held[0].Seed[0] ^= 1 },
		"one more key": func() { extra := vs.Held[0]; extra.Update[0] ^= 1; vs.Held = append(vs.Held, extra) },
	} {
		held := slices.Clone(vs.Held)
		change()
		c.Verdicts, _ = encMode.Marshal(vs)
		other, _ := c.encode()
		vs.Held = held
		if x, err = build(other); err != nil {
			t.Fatal(err)
		}
		if _, err := x.FinishFrom(other); !errors.Is(err, ErrCheckpoint) {
			t.Fatalf("%s hinted: FinishFrom answered %v, want ErrCheckpoint", name, err)
		}
	}
}
