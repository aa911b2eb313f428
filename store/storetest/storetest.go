// Package storetest is the conformance suite for store.Store: every
// implementation runs it, so the SQLite store and its in-memory twin behave
// alike down to orderings and edge cases. It is for tests only.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/store"
)

// Run runs the conformance suite against the stores open returns. Each call
// of open must return a new, empty store; Run closes every store it opens
// (and tolerates a store already closed), so open need only arrange for
// any files to be removed, for instance with t.TempDir.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	newStore := func(t *testing.T) store.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Empty", testEmpty},
		{"PutGet", testPutGet},
		{"GetNotFound", testGetNotFound},
		{"Idempotent", testIdempotent},
		{"BodyAdded", testBodyAdded},
		{"EmptyBody", testEmptyBody},
		{"Refs", testRefs},
		{"RefsMany", testRefsMany},
		{"BySeqEquivocation", testBySeqEquivocation},
		{"HeadsLinear", testHeadsLinear},
		{"HeadsForked", testHeadsForked},
		{"VersionVector", testVersionVector},
		{"IterateOrder", testIterateOrder},
		{"IterateStop", testIterateStop},
		{"IterateCancel", testIterateCancel},
		{"Evidence", testEvidence},
		{"Pursuances", testPursuances},
		{"Isolation", testIsolation},
		{"Closed", testClosed},
		{"CancelledPut", testCancelledPut},
		{"CancelledReads", testCancelledReads},
		{"AtomicUnderCancel", testAtomicUnderCancel},
		{"Concurrent", testConcurrent},
		{"DropBodies", testDropBodies},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
	t.Run("Model", func(t *testing.T) { checkModel(t, open) })
}

// put stores a batch or fails the test.
func put(t testing.TB, s store.Store, events []*event.Event, evidence ...event.Equivocation) {
	t.Helper()
	if err := s.Put(context.Background(), events, evidence); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

// evs is shorthand for a batch.
func evs(e ...*event.Event) []*event.Event { return e }

// sameEvent reports whether a and b are the same event, body presence
// included.
func sameEvent(a, b *event.Event) bool {
	return a.ID() == b.ID() && a.HasBody() == b.HasBody() && bytes.Equal(a.Encode(), b.Encode())
}

func get(t testing.TB, s store.Store, id event.ID) *event.Event {
	t.Helper()
	e, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id.Short(), err)
	}
	if e.ID() != id {
		t.Fatalf("Get(%s) returned event %s", id.Short(), e.ID().Short())
	}
	return e
}

func heads(t testing.TB, s store.Store, pid event.ID) []event.ID {
	t.Helper()
	h, err := s.Heads(context.Background(), pid)
	if err != nil {
		t.Fatalf("Heads: %v", err)
	}
	return h
}

func wantHeads(t testing.TB, s store.Store, pid event.ID, want ...*event.Event) {
	t.Helper()
	w := ids(want)
	slices.SortFunc(w, event.ID.Compare)
	if got := heads(t, s, pid); !slices.Equal(got, w) {
		t.Fatalf("Heads = %s, want %s", shorts(got), shorts(w))
	}
}

func count(t testing.TB, s store.Store, pid event.ID) int {
	t.Helper()
	n, err := s.Count(context.Background(), pid)
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return n
}

func iterate(t testing.TB, s store.Store, pid event.ID) []*event.Event {
	t.Helper()
	var out []*event.Event
	if err := s.Iterate(context.Background(), pid, func(e *event.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("Iterate: %v", err)
	}
	return out
}

func vv(t testing.TB, s store.Store, pid event.ID) map[identity.PublicKey]uint64 {
	t.Helper()
	v, err := s.VersionVector(context.Background(), pid)
	if err != nil {
		t.Fatalf("VersionVector: %v", err)
	}
	return v
}

func ids(es []*event.Event) []event.ID {
	out := make([]event.ID, len(es))
	for i, e := range es {
		out[i] = e.ID()
	}
	return out
}

func shorts(ids []event.ID) string {
	var b []byte
	for i, id := range ids {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, id.Short()...)
	}
	return "[" + string(b) + "]"
}

func testEmpty(t *testing.T, s store.Store) {
	ctx := context.Background()
	var pid event.ID
	pid[0] = 1
	if ps, err := s.Pursuances(ctx); err != nil || len(ps) != 0 {
		t.Errorf("Pursuances = %v, %v; want none", ps, err)
	}
	if h := heads(t, s, pid); len(h) != 0 {
		t.Errorf("Heads = %v, want none", h)
	}
	if v := vv(t, s, pid); len(v) != 0 {
		t.Errorf("VersionVector = %v, want empty", v)
	}
	if n := count(t, s, pid); n != 0 {
		t.Errorf("Count = %d, want 0", n)
	}
	if es := iterate(t, s, pid); len(es) != 0 {
		t.Errorf("Iterate visited %d events, want 0", len(es))
	}
	if q, err := s.Evidence(ctx, pid); err != nil || len(q) != 0 {
		t.Errorf("Evidence = %v, %v; want none", q, err)
	}
	if r, err := s.Refs(ctx, []event.ID{pid}); err != nil || len(r) != 0 {
		t.Errorf("Refs = %v, %v; want none", r, err)
	}
	if r, err := s.Refs(ctx, nil); err != nil || len(r) != 0 {
		t.Errorf("Refs(nil) = %v, %v; want none", r, err)
	}
	if es, err := s.BySeq(ctx, pid, key(t, 0).Public(), 1); err != nil || len(es) != 0 {
		t.Errorf("BySeq = %v, %v; want none", es, err)
	}
	if err := s.Put(ctx, nil, nil); err != nil {
		t.Errorf("Put(nil, nil) = %v", err)
	}
}

func testPutGet(t *testing.T, s store.Store) {
	w, g := newWorld(t, "put-get", 2)
	a := w.next(1, g)
	b := w.next(0, a)
	put(t, s, evs(g, a, b))
	for _, want := range []*event.Event{g, a, b} {
		if got := get(t, s, want.ID()); !sameEvent(got, want) {
			t.Errorf("Get(%s) = a different event", want.ID().Short())
		}
	}
	if n := count(t, s, w.pid); n != 3 {
		t.Errorf("Count = %d, want 3", n)
	}
	if got := get(t, s, g.ID()); got.PursuanceID() != w.pid || !got.IsGenesis() {
		t.Errorf("genesis read back as pursuance %s, genesis %v", got.PursuanceID().Short(), got.IsGenesis())
	}
}

func testGetNotFound(t *testing.T, s store.Store) {
	w, g := newWorld(t, "not-found", 1)
	a := w.next(0, g)
	put(t, s, evs(g))
	_, err := s.Get(context.Background(), a.ID())
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing event: %v, want an error wrapping fs.ErrNotExist", err)
	}
}

func testIdempotent(t *testing.T, s store.Store) {
	w, g := newWorld(t, "idempotent", 2)
	a := w.next(1, g)
	b := w.next(0, a)
	put(t, s, evs(g, g, a, a))
	wantHeads(t, s, w.pid, a)
	put(t, s, evs(b))
	// Putting old events again, alone or beside their descendants, changes
	// nothing: in particular they do not become heads again.
	put(t, s, evs(g))
	put(t, s, evs(a, g, b, a))
	put(t, s, evs(a.WithoutBody()))
	wantHeads(t, s, w.pid, b)
	if n := count(t, s, w.pid); n != 3 {
		t.Errorf("Count = %d, want 3", n)
	}
	if got := iterate(t, s, w.pid); !slices.Equal(ids(got), ids(evs(g, a, b))) {
		t.Errorf("Iterate = %s, want %s", shorts(ids(got)), shorts(ids(evs(g, a, b))))
	}
	if got := get(t, s, a.ID()); !got.HasBody() {
		t.Error("a body-less copy removed the stored body")
	}
	v := vv(t, s, w.pid)
	if v[w.author(0)] != 2 || v[w.author(1)] != 1 || len(v) != 2 {
		t.Errorf("VersionVector = %v", v)
	}
}

func testBodyAdded(t *testing.T, s store.Store) {
	w, g := newWorld(t, "body", 1)
	a := w.next(0, g)
	b := w.next(0, a)
	c := w.next(0, b)
	put(t, s, evs(g, a.WithoutBody()))
	if got := get(t, s, a.ID()); got.HasBody() || !sameEvent(got, a.WithoutBody()) {
		t.Fatal("body-less event read back with a body, or different")
	}
	put(t, s, evs(a))
	if got := get(t, s, a.ID()); !sameEvent(got, a) {
		t.Fatal("body not added to a body-less stored event")
	}
	put(t, s, evs(a.WithoutBody()))
	if got := get(t, s, a.ID()); !sameEvent(got, a) {
		t.Fatal("body lost to a later body-less copy")
	}
	// Within one batch: the body-less copy first, then the full one.
	put(t, s, evs(b.WithoutBody(), b, c.WithoutBody()))
	if got := get(t, s, b.ID()); !sameEvent(got, b) {
		t.Error("body not added within one batch")
	}
	if got := get(t, s, c.ID()); got.HasBody() {
		t.Error("body-less event read back with a body")
	}
	wantHeads(t, s, w.pid, c)
	if n := count(t, s, w.pid); n != 4 {
		t.Errorf("Count = %d, want 4", n)
	}
	var bodies []bool
	for _, e := range iterate(t, s, w.pid) {
		bodies = append(bodies, e.HasBody())
	}
	if want := []bool{true, true, true, false}; !slices.Equal(bodies, want) {
		t.Errorf("Iterate saw bodies %v, want %v", bodies, want)
	}
}

func testEmptyBody(t *testing.T, s store.Store) {
	w, g := newWorld(t, "empty-body", 1)
	a := w.nextBody(0, nil, g)
	if !a.HasBody() || len(a.Body()) != 0 {
		t.Fatal("test setup: want an event with an empty body")
	}
	put(t, s, evs(g, a))
	if got := get(t, s, a.ID()); !got.HasBody() || len(got.Body()) != 0 || !sameEvent(got, a) {
		t.Errorf("empty body read back as HasBody=%v len=%d", got.HasBody(), len(got.Body()))
	}
	b := w.nextBody(0, nil, a)
	put(t, s, evs(b.WithoutBody()))
	put(t, s, evs(b))
	if got := get(t, s, b.ID()); !got.HasBody() {
		t.Error("empty body not added to a body-less stored event")
	}
}

func testRefs(t *testing.T, s store.Store) {
	w, g := newWorld(t, "refs", 2)
	a := w.next(1, g)
	b := w.next(1, a)
	missing := w.next(0, b)
	w2, g2 := newWorld(t, "refs-other", 1)
	x := w2.next(0, g2)
	put(t, s, evs(g, a, b, g2, x))
	got, err := s.Refs(context.Background(), []event.ID{b.ID(), missing.ID(), g.ID(), x.ID(), b.ID()})
	if err != nil {
		t.Fatal(err)
	}
	want := map[event.ID]event.Ref{b.ID(): b.Ref(), g.ID(): g.Ref(), x.ID(): x.Ref()}
	if len(got) != len(want) {
		t.Fatalf("Refs returned %d refs, want %d", len(got), len(want))
	}
	for id, r := range want {
		if got[id] != r {
			t.Errorf("Refs[%s] = %+v, want %+v", id.Short(), got[id], r)
		}
	}
	if got[g.ID()].Pursuance != w.pid || got[x.ID()].Pursuance != w2.pid {
		t.Error("Refs gave the wrong pursuance")
	}
}

// testRefsMany looks up more IDs than one query of a batching
// implementation is likely to take.
func testRefsMany(t *testing.T, s store.Store) {
	w, g := newWorld(t, "refs-many", 3)
	all := []*event.Event{g}
	for i := range 700 {
		all = append(all, w.next(i%3, all[len(all)-1]))
	}
	stored := all[:600]
	put(t, s, stored)
	var query []event.ID
	for i := len(all) - 1; i >= 0; i-- { // every ID, newest first, some twice
		query = append(query, all[i].ID())
		if i%7 == 0 {
			query = append(query, all[i].ID())
		}
	}
	for _, n := range []int{len(query), 1, 2, 9, 64, 65, 513} {
		got, err := s.Refs(context.Background(), query[len(query)-n:])
		if err != nil {
			t.Fatal(err)
		}
		want := make(map[event.ID]event.Ref)
		for _, id := range query[len(query)-n:] {
			if e := w.byID[id]; slices.Contains(stored, e) {
				want[id] = e.Ref()
			}
		}
		if len(got) != len(want) {
			t.Fatalf("Refs of %d IDs returned %d refs, want %d", n, len(got), len(want))
		}
		for id, r := range want {
			if got[id] != r {
				t.Fatalf("Refs[%s] = %+v, want %+v", id.Short(), got[id], r)
			}
		}
	}
}

func testBySeqEquivocation(t *testing.T, s store.Store) {
	ctx := context.Background()
	w, g := newWorld(t, "by-seq", 2)
	a1 := w.next(1, g)
	a2 := w.next(1, a1)
	f1 := w.fork(1, g)  // also seq 2
	f2 := w.fork(1, a1) // seq 2 again
	put(t, s, evs(g, a1, a2, f1))
	put(t, s, evs(f2))
	got, err := s.BySeq(ctx, w.pid, w.author(1), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := evs(a2, f1, f2)
	slices.SortFunc(want, func(a, b *event.Event) int { return a.ID().Compare(b.ID()) })
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("BySeq = %s, want %s (by ID)", shorts(ids(got)), shorts(ids(want)))
	}
	for i := range got {
		if !sameEvent(got[i], want[i]) {
			t.Errorf("BySeq event %d differs from the one put", i)
		}
	}
	if got, err := s.BySeq(ctx, w.pid, w.author(1), 1); err != nil || len(got) != 1 || got[0].ID() != a1.ID() {
		t.Errorf("BySeq(seq 1) = %v, %v; want [%s]", got, err, a1.ID().Short())
	}
	if got, err := s.BySeq(ctx, w.pid, w.author(1), 3); err != nil || len(got) != 0 {
		t.Errorf("BySeq(seq 3) = %v, %v; want none", got, err)
	}
	if got, err := s.BySeq(ctx, w.pid, w.author(0), 2); err != nil || len(got) != 0 {
		t.Errorf("BySeq(other author) = %v, %v; want none", got, err)
	}
	if got, err := s.BySeq(ctx, w.pid, w.author(1), 1<<63+5); err != nil || len(got) != 0 {
		t.Errorf("BySeq(huge seq) = %v, %v; want none", got, err)
	}
	if v := vv(t, s, w.pid); v[w.author(1)] != 2 {
		t.Errorf("VersionVector[author 1] = %d, want 2", v[w.author(1)])
	}
	wantHeads(t, s, w.pid, a2, f1, f2)
}

func testHeadsLinear(t *testing.T, s store.Store) {
	w, g := newWorld(t, "linear", 2)
	put(t, s, evs(g))
	wantHeads(t, s, w.pid, g)
	last := g
	for i := range 10 {
		e := w.next(i%2, last)
		put(t, s, evs(e))
		wantHeads(t, s, w.pid, e)
		last = e
	}
	// A batch of a longer chain moves the head to its end.
	var batch []*event.Event
	for i := range 20 {
		last = w.next(i%2, last)
		batch = append(batch, last)
	}
	put(t, s, batch)
	wantHeads(t, s, w.pid, last)
}

func testHeadsForked(t *testing.T, s store.Store) {
	w, g := newWorld(t, "forked", 3)
	a := w.next(1, g)
	b := w.next(2, g)
	put(t, s, evs(g, a, b))
	wantHeads(t, s, w.pid, a, b)
	c := w.next(0, a)
	put(t, s, evs(c))
	wantHeads(t, s, w.pid, b, c)
	m := w.next(1, b, c) // merges both branches
	put(t, s, evs(m))
	wantHeads(t, s, w.pid, m)
	// Two new branches in one batch, and an event naming a non-head.
	x := w.next(2, m)
	y := w.next(0, m)
	z := w.next(1, a) // a stale parent: a is no head, and stays none
	put(t, s, evs(x, y, z))
	wantHeads(t, s, w.pid, x, y, z)
	final := w.next(0, x, y, z)
	put(t, s, evs(final))
	wantHeads(t, s, w.pid, final)
}

func testVersionVector(t *testing.T, s store.Store) {
	w, g := newWorld(t, "vv", 3)
	put(t, s, evs(g))
	if v := vv(t, s, w.pid); len(v) != 1 || v[w.author(0)] != 1 {
		t.Fatalf("VersionVector = %v, want founder at 1", v)
	}
	last := g
	var batch []*event.Event
	for _, a := range []int{1, 1, 2, 1, 0, 1} {
		last = w.next(a, last)
		batch = append(batch, last)
	}
	put(t, s, batch)
	want := map[identity.PublicKey]uint64{w.author(0): 2, w.author(1): 4, w.author(2): 1}
	if v := vv(t, s, w.pid); !equalVV(v, want) {
		t.Errorf("VersionVector = %v, want %v", v, want)
	}
	// A bigger author set, to cross any per-author step of the query.
	w2, g2 := newWorld(t, "vv-many", 40)
	last = g2
	batch = evs(g2)
	want = map[identity.PublicKey]uint64{}
	for i := range 200 {
		a := (i * 7) % 40
		last = w2.next(a, last)
		batch = append(batch, last)
		want[w2.author(a)] = last.Seq
	}
	want[w2.author(0)] = max(want[w2.author(0)], 1)
	put(t, s, batch)
	if v := vv(t, s, w2.pid); !equalVV(v, want) {
		t.Errorf("VersionVector of 40 authors = %v, want %v", v, want)
	}
}

func equalVV(a, b map[identity.PublicKey]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func testIterateOrder(t *testing.T, s store.Store) {
	w, g := newWorld(t, "order", 4)
	// Four events at lamport 2, then events at 3 and beyond, put in an
	// order that is causal but neither by lamport nor by ID.
	l2 := evs(w.next(1, g), w.next(2, g), w.next(3, g), w.next(0, g))
	l3a := w.next(1, l2[0])
	l3b := w.next(2, l2[3])
	l4 := w.next(3, l3a, l3b)
	put(t, s, evs(g, l2[0], l3a))
	put(t, s, evs(l2[3], l3b, l2[1], l4, l2[2]))
	all := evs(g, l2[0], l2[1], l2[2], l2[3], l3a, l3b, l4)
	slices.SortFunc(all, func(a, b *event.Event) int {
		if a.Lamport != b.Lamport {
			return int(a.Lamport) - int(b.Lamport)
		}
		return a.ID().Compare(b.ID())
	})
	got := iterate(t, s, w.pid)
	if !slices.Equal(ids(got), ids(all)) {
		t.Fatalf("Iterate = %s, want %s", shorts(ids(got)), shorts(ids(all)))
	}
	for i := range got {
		if !sameEvent(got[i], all[i]) {
			t.Errorf("Iterate event %d differs from the one put", i)
		}
	}
}

// putChain puts a new pursuance whose founder's chain has n events after
// the genesis event, and returns its world.
func putChain(t *testing.T, s store.Store, name string, n int) *world {
	w, g := newWorld(t, name, 1)
	batch := evs(g)
	for range n {
		batch = append(batch, w.next(0, batch[len(batch)-1]))
	}
	put(t, s, batch)
	return w
}

func testIterateStop(t *testing.T, s store.Store) {
	w := putChain(t, s, "stop", 50)
	errStop := errors.New("enough")
	calls := 0
	err := s.Iterate(context.Background(), w.pid, func(e *event.Event) error {
		calls++
		if calls == 7 {
			return errStop
		}
		return nil
	})
	if err != errStop {
		t.Errorf("Iterate returned %v, want the callback's error itself", err)
	}
	if calls != 7 {
		t.Errorf("callback called %d times, want 7", calls)
	}
	// The store is still usable: nothing was left open.
	if n := len(iterate(t, s, w.pid)); n != 51 {
		t.Errorf("Iterate after a stop visited %d events, want 51", n)
	}
}

func testIterateCancel(t *testing.T, s store.Store) {
	w := putChain(t, s, "cancel-iterate", 50)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	err := s.Iterate(ctx, w.pid, func(e *event.Event) error {
		calls++
		if calls == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Iterate returned %v, want context.Canceled", err)
	}
	if calls != 5 {
		t.Errorf("callback called %d times, want 5: none after the cancel", calls)
	}
}

func testEvidence(t *testing.T, s store.Store) {
	ctx := context.Background()
	w, g := newWorld(t, "evidence", 3)
	a := w.next(1, g)
	fa := w.fork(1, g)
	b := w.next(2, g)
	b2 := w.next(2, b)
	fb := w.fork(2, b)
	fb2 := w.fork(2, g)
	fg := w.fork(0, g) // the founder equivocates at seq 1
	q := []event.Equivocation{
		equivocation(t, a, fa), equivocation(t, b2, fb), equivocation(t, fb, fb2),
		equivocation(t, b2, fb2), equivocation(t, g, fg),
	}
	put(t, s, evs(g, a, fa, b, b2), q[0])
	put(t, s, evs(fb, fb2, fg), q[1:]...)
	put(t, s, nil, q[2], q[0]) // records again: nothing changes
	want := slices.Clone(q)
	slices.SortFunc(want, func(x, y event.Equivocation) int {
		if c := bytes.Compare(x.Author[:], y.Author[:]); c != 0 {
			return c
		}
		if x.Seq != y.Seq {
			return int(x.Seq) - int(y.Seq)
		}
		if c := x.A.Compare(y.A); c != 0 {
			return c
		}
		return x.B.Compare(y.B)
	})
	got, err := s.Evidence(ctx, w.pid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Evidence =\n%v\nwant\n%v", got, want)
	}
	w2, _ := newWorld(t, "evidence-other", 1)
	if got, err := s.Evidence(ctx, w2.pid); err != nil || len(got) != 0 {
		t.Errorf("Evidence of another pursuance = %v, %v; want none", got, err)
	}
}

func testPursuances(t *testing.T, s store.Store) {
	ctx := context.Background()
	var want []event.ID
	for i := range 4 {
		w, g := newWorld(t, fmt.Sprint("pursuance ", i), 1)
		put(t, s, evs(g, w.next(0, g)))
		want = append(want, w.pid)
	}
	slices.SortFunc(want, event.ID.Compare)
	// Evidence alone does not make a pursuance: its genesis is not here.
	w, g := newWorld(t, "evidence only", 1)
	f := w.fork(0, g)
	put(t, s, nil, equivocation(t, g, f))
	got, err := s.Pursuances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Pursuances = %s, want %s", shorts(got), shorts(want))
	}
	if n := count(t, s, w.pid); n != 0 {
		t.Errorf("Count of a pursuance with evidence only = %d, want 0", n)
	}
}

func testIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	// The same authors in two pursuances, written in the same batches.
	w1, g1 := newWorld(t, "one", 2)
	w2, g2 := newWorld(t, "two", 2)
	a1, a2 := w1.next(1, g1), w2.next(1, g2)
	b1 := w1.next(1, a1)
	f2 := w2.fork(1, g2)
	put(t, s, evs(g1, g2, a1, a2, b1, f2), equivocation(t, a2, f2))
	wantHeads(t, s, w1.pid, b1)
	wantHeads(t, s, w2.pid, a2, f2)
	if n1, n2 := count(t, s, w1.pid), count(t, s, w2.pid); n1 != 3 || n2 != 3 {
		t.Errorf("Count = %d, %d; want 3, 3", n1, n2)
	}
	if v := vv(t, s, w1.pid); v[w1.author(1)] != 2 {
		t.Errorf("VersionVector(one)[author 1] = %d, want 2", v[w1.author(1)])
	}
	if v := vv(t, s, w2.pid); v[w2.author(1)] != 1 {
		t.Errorf("VersionVector(two)[author 1] = %d, want 1", v[w2.author(1)])
	}
	if got := iterate(t, s, w1.pid); !slices.Equal(ids(got), ids(evs(g1, a1, b1))) {
		t.Errorf("Iterate(one) = %s", shorts(ids(got)))
	}
	if got, _ := s.BySeq(ctx, w1.pid, w1.author(1), 1); len(got) != 1 || got[0].ID() != a1.ID() {
		t.Errorf("BySeq(one) = %v", got)
	}
	if got, _ := s.Evidence(ctx, w1.pid); len(got) != 0 {
		t.Errorf("Evidence(one) = %v, want none", got)
	}
	if got, _ := s.Evidence(ctx, w2.pid); len(got) != 1 {
		t.Errorf("Evidence(two) = %v, want one record", got)
	}
}

func testClosed(t *testing.T, s store.Store) {
	ctx := context.Background()
	w, g := newWorld(t, "closed", 1)
	put(t, s, evs(g))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	check("Put", s.Put(ctx, evs(w.next(0, g)), nil))
	check("Put(nil)", s.Put(ctx, nil, nil))
	_, err := s.Get(ctx, g.ID())
	check("Get", err)
	_, err = s.Refs(ctx, []event.ID{g.ID()})
	check("Refs", err)
	_, err = s.BySeq(ctx, w.pid, w.author(0), 1)
	check("BySeq", err)
	_, err = s.Heads(ctx, w.pid)
	check("Heads", err)
	_, err = s.VersionVector(ctx, w.pid)
	check("VersionVector", err)
	check("Iterate", s.Iterate(ctx, w.pid, func(*event.Event) error { return nil }))
	_, err = s.Evidence(ctx, w.pid)
	check("Evidence", err)
	_, err = s.Pursuances(ctx)
	check("Pursuances", err)
	_, err = s.Count(ctx, w.pid)
	check("Count", err)
	check("Close", s.Close())
}

func testCancelledPut(t *testing.T, s store.Store) {
	w, g := newWorld(t, "cancelled", 1)
	a := w.next(0, g)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Put(ctx, evs(g, a), []event.Equivocation{equivocation(t, a, w.fork(0, g))})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v, want context.Canceled", err)
	}
	assertEmpty(t, s, w.pid, g, a)
}

// assertEmpty checks that nothing of the pursuance is stored.
func assertEmpty(t testing.TB, s store.Store, pid event.ID, events ...*event.Event) {
	t.Helper()
	ctx := context.Background()
	for _, e := range events {
		if _, err := s.Get(ctx, e.ID()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%s) after a failed Put: %v, want ErrNotFound", e.ID().Short(), err)
		}
	}
	if n := count(t, s, pid); n != 0 {
		t.Errorf("Count = %d after a failed Put", n)
	}
	if h := heads(t, s, pid); len(h) != 0 {
		t.Errorf("Heads = %s after a failed Put", shorts(h))
	}
	if v := vv(t, s, pid); len(v) != 0 {
		t.Errorf("VersionVector = %v after a failed Put", v)
	}
	if q, err := s.Evidence(ctx, pid); err != nil || len(q) != 0 {
		t.Errorf("Evidence = %v, %v after a failed Put", q, err)
	}
	if ps, err := s.Pursuances(ctx); err != nil || slices.Contains(ps, pid) {
		t.Errorf("Pursuances = %s, %v after a failed Put", shorts(ps), err)
	}
}

func testCancelledReads(t *testing.T, s store.Store) {
	w, g := newWorld(t, "cancelled-reads", 1)
	put(t, s, evs(g))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	_, err := s.Get(ctx, g.ID())
	check("Get", err)
	_, err = s.Refs(ctx, []event.ID{g.ID()})
	check("Refs", err)
	_, err = s.BySeq(ctx, w.pid, w.author(0), 1)
	check("BySeq", err)
	_, err = s.Heads(ctx, w.pid)
	check("Heads", err)
	_, err = s.VersionVector(ctx, w.pid)
	check("VersionVector", err)
	called := false
	check("Iterate", s.Iterate(ctx, w.pid, func(*event.Event) error { called = true; return nil }))
	if called {
		t.Error("Iterate with a cancelled context called its callback")
	}
	_, err = s.Evidence(ctx, w.pid)
	check("Evidence", err)
	_, err = s.Pursuances(ctx)
	check("Pursuances", err)
	_, err = s.Count(ctx, w.pid)
	check("Count", err)
}

// testAtomicUnderCancel cancels big Puts at moments spread over their run:
// each must store all of its batch or none of it.
func testAtomicUnderCancel(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 3000
	w, g := newWorld(t, "atomic", 4)
	batch := evs(g)
	for i := range n - 1 {
		batch = append(batch, w.next(i%4, batch[len(batch)-1]))
	}
	// Time one Put of the same size in another pursuance to spread the
	// cancellations over.
	w2, g2 := newWorld(t, "atomic-timing", 4)
	timing := evs(g2)
	for i := range n - 1 {
		timing = append(timing, w2.next(i%4, timing[len(timing)-1]))
	}
	start := time.Now()
	put(t, s, timing)
	took := time.Since(start)

	outcomes := map[bool]int{}
	for i := range 8 {
		cctx, cancel := context.WithCancel(ctx)
		delay := took * time.Duration(i) / 6
		timer := time.AfterFunc(delay, cancel)
		err := s.Put(cctx, batch, nil)
		timer.Stop()
		cancel()
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Put cancelled after %v: %v, want context.Canceled", delay, err)
			}
			assertEmpty(t, s, w.pid, batch[0], batch[n/2], batch[n-1])
			outcomes[false]++
			continue
		}
		outcomes[true]++
		if c := count(t, s, w.pid); c != n {
			t.Fatalf("Count = %d after a Put that returned nil, want %d", c, n)
		}
		wantHeads(t, s, w.pid, batch[n-1])
		break // stored: later attempts would only be duplicates
	}
	t.Logf("outcomes (stored: count): %v, one Put of %d events took %v", outcomes, n, took)
}

// testConcurrent runs writers and readers at once, for the race detector
// and for deadlocks between reads and writes.
func testConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const writers, events, batch = 3, 120, 10
	logs := make([][]*event.Event, writers)
	pids := make([]event.ID, writers)
	for i := range logs {
		w, g := newWorld(t, fmt.Sprint("concurrent ", i), 2)
		pids[i] = w.pid
		logs[i] = evs(g)
		for j := range events - 1 {
			logs[i] = append(logs[i], w.next(j%2, logs[i][len(logs[i])-1]))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	done := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			for lo := 0; lo < events; lo += batch {
				if err := s.Put(ctx, logs[i][lo:lo+batch], nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var readers sync.WaitGroup
	for i := range writers {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				// Whatever a reader sees must be a causally closed
				// prefix: Iterate's events in order, heads among them.
				seen := map[event.ID]bool{}
				err := s.Iterate(ctx, pids[i], func(e *event.Event) error {
					for _, p := range e.Parents {
						if !seen[p] {
							return fmt.Errorf("event %s visited before its parent %s", e.ID().Short(), p.Short())
						}
					}
					seen[e.ID()] = true
					_, err := s.Get(ctx, e.ID()) // a read inside the callback
					return err
				})
				if err == nil {
					_, err = s.Refs(ctx, ids(logs[i][:batch]))
				}
				if err == nil {
					_, err = s.VersionVector(ctx, pids[i])
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range writers {
		if n := count(t, s, pids[i]); n != events {
			t.Errorf("Count(%d) = %d, want %d", i, n, events)
		}
		wantHeads(t, s, pids[i], logs[i][events-1])
	}
}

// testDropBodies: a store that drops bodies (store.BodyDropper) keeps the
// events, without their bodies, and everything derived from their
// headers; a later copy with the body gives it back.
func testDropBodies(t *testing.T, s store.Store) {
	d, ok := s.(store.BodyDropper)
	if !ok {
		t.Skip("this store does not drop bodies")
	}
	ctx := context.Background()
	w, g := newWorld(t, "drop", 2)
	a := w.next(1, g)
	b := w.next(0, a)
	if err := s.Put(ctx, []*event.Event{g, a, b}, nil); err != nil {
		t.Fatal(err)
	}
	heads, _ := s.Heads(ctx, w.pid)
	vv, _ := s.VersionVector(ctx, w.pid)
	n, err := d.DropBodies(ctx, []event.ID{a.ID(), {9, 9, 9}})
	if err != nil || n != 1 {
		t.Fatalf("DropBodies = %d, %v; want 1", n, err)
	}
	if n, err := d.DropBodies(ctx, []event.ID{a.ID()}); err != nil || n != 0 {
		t.Fatalf("dropping again = %d, %v; want 0", n, err)
	}
	got, err := s.Get(ctx, a.ID())
	if err != nil || got.HasBody() || got.ID() != a.ID() {
		t.Fatalf("Get after drop: %v (body %v)", err, got != nil && got.HasBody())
	}
	if got, _ := s.Get(ctx, b.ID()); !got.HasBody() {
		t.Fatal("another event lost its body")
	}
	if h, _ := s.Heads(ctx, w.pid); fmt.Sprint(h) != fmt.Sprint(heads) {
		t.Errorf("heads changed: %v, were %v", h, heads)
	}
	if v, _ := s.VersionVector(ctx, w.pid); fmt.Sprint(v) != fmt.Sprint(vv) {
		t.Errorf("version vector changed")
	}
	if c, _ := s.Count(ctx, w.pid); c != 3 {
		t.Errorf("count %d, want 3", c)
	}
	if err := s.Put(ctx, []*event.Event{a}, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, a.ID()); !got.HasBody() {
		t.Error("a copy with its body did not give the body back")
	}
}
