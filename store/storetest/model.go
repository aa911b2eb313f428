package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/store"
)

// delivery is a random history of one pursuance as a store receives it: a
// DAG of events by several authors, equivocations included, cut into
// batches in a random causal order, with duplicates and body-less copies
// (whose bodies come later) mixed in.
type delivery struct {
	pid     event.ID
	events  []*event.Event // every distinct event, full copies
	batches []batch
}

type batch struct {
	events   []*event.Event
	evidence []event.Equivocation
}

// drawDelivery draws a delivery.
func drawDelivery(t *rapid.T) delivery {
	authors := rapid.IntRange(1, 4).Draw(t, "authors")
	w, g := newWorld(t, "model", authors)
	all := []*event.Event{g}
	var evidence []event.Equivocation
	n := rapid.IntRange(0, 30).Draw(t, "events")
	for range n {
		a := rapid.IntRange(0, authors-1).Draw(t, "author")
		np := rapid.IntRange(1, min(3, len(all))).Draw(t, "parents")
		var parents []*event.Event
		for range np {
			p := all[rapid.IntRange(0, len(all)-1).Draw(t, "parent")]
			if !slices.Contains(parents, p) {
				parents = append(parents, p)
			}
		}
		if w.chains[a].Last != nil && rapid.IntRange(0, 9).Draw(t, "fork") == 0 {
			f := w.fork(a, parents...)
			for _, e := range all {
				if e.Author == f.Author && e.Seq == f.Seq {
					evidence = append(evidence, equivocation(t, e, f))
				}
			}
			all = append(all, f)
			continue
		}
		var body []byte
		if rapid.Bool().Draw(t, "body") {
			body = rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "bytes")
		}
		all = append(all, w.nextBody(a, body, parents...))
	}

	// Deliver in a random causal order: an event becomes deliverable once
	// its backlink and parents are delivered (possibly body-less).
	d := delivery{pid: w.pid, events: all}
	delivered := map[event.ID]bool{}
	var late []*event.Event // full copies owed for body-less deliveries
	var cur batch
	var sent []*event.Event
	for len(delivered) < len(all) || len(late) > 0 {
		var ready []*event.Event
		for _, e := range all {
			if delivered[e.ID()] || (e.Seq > 1 && !delivered[e.Backlink]) {
				continue
			}
			ok := true
			for _, p := range e.Parents {
				ok = ok && delivered[p]
			}
			if ok {
				ready = append(ready, e)
			}
		}
		switch choice := rapid.IntRange(0, 9).Draw(t, "step"); {
		case choice == 0 && len(late) > 0:
			i := rapid.IntRange(0, len(late)-1).Draw(t, "late")
			cur.events = append(cur.events, late[i])
			late = slices.Delete(late, i, i+1)
		case choice == 1 && len(sent) > 0:
			e := sent[rapid.IntRange(0, len(sent)-1).Draw(t, "again")]
			if rapid.Bool().Draw(t, "again body-less") {
				e = e.WithoutBody()
			}
			cur.events = append(cur.events, e)
		case len(ready) > 0:
			e := ready[rapid.IntRange(0, len(ready)-1).Draw(t, "next")]
			delivered[e.ID()] = true
			sent = append(sent, e)
			if rapid.IntRange(0, 4).Draw(t, "body-less") == 0 {
				late = append(late, e)
				e = e.WithoutBody()
			}
			cur.events = append(cur.events, e)
			for _, q := range evidence {
				if q.A == e.ID() && delivered[q.B] || q.B == e.ID() && delivered[q.A] {
					cur.evidence = append(cur.evidence, q)
				}
			}
		case len(late) > 0:
			cur.events = append(cur.events, late[0])
			late = late[1:]
		}
		if rapid.IntRange(0, 3).Draw(t, "cut") == 0 {
			d.batches = append(d.batches, cur)
			cur = batch{}
		}
	}
	d.batches = append(d.batches, cur)
	return d
}

// model is what a store should hold after some of a delivery's batches.
type model struct {
	events   map[event.ID]*event.Event
	evidence map[event.Equivocation]bool
}

func (m *model) put(b batch) {
	for _, e := range b.events {
		if old, ok := m.events[e.ID()]; !ok || !old.HasBody() && e.HasBody() {
			m.events[e.ID()] = e
		}
	}
	for _, q := range b.evidence {
		m.evidence[q] = true
	}
}

func (m *model) heads() []event.ID {
	named := map[event.ID]bool{}
	for _, e := range m.events {
		for _, p := range e.Parents {
			named[p] = true
		}
	}
	var out []event.ID
	for id := range m.events {
		if !named[id] {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, event.ID.Compare)
	return out
}

func (m *model) vv() map[identity.PublicKey]uint64 {
	out := map[identity.PublicKey]uint64{}
	for _, e := range m.events {
		out[e.Author] = max(out[e.Author], e.Seq)
	}
	return out
}

func (m *model) order() []*event.Event {
	out := slices.Collect(maps.Values(m.events))
	slices.SortFunc(out, func(a, b *event.Event) int {
		return cmp.Or(cmp.Compare(a.Lamport, b.Lamport), a.ID().Compare(b.ID()))
	})
	return out
}

func (m *model) evidenceList() []event.Equivocation {
	out := slices.Collect(maps.Keys(m.evidence))
	slices.SortFunc(out, func(a, b event.Equivocation) int {
		return cmp.Or(slices.Compare(a.Author[:], b.Author[:]), cmp.Compare(a.Seq, b.Seq),
			a.A.Compare(b.A), a.B.Compare(b.B))
	})
	return out
}

// checkModel is the property at the heart of the suite: for any delivery,
// after every batch the store's answers equal the model's.
func checkModel(t *testing.T, open func(t *testing.T) store.Store) {
	rapid.Check(t, func(rt *rapid.T) {
		d := drawDelivery(rt)
		s := open(t)
		defer s.Close()
		replay(rt, d, s)
	})
}

// Equivalent checks that the stores two functions open give the same
// answers to every read, and the answers of a simple model, after each
// batch of random deliveries. It is how the SQLite store is held to its
// in-memory twin beyond the cases Run spells out; open functions are as
// for Run.
func Equivalent(t *testing.T, openA, openB func(t *testing.T) store.Store) {
	rapid.Check(t, func(rt *rapid.T) {
		d := drawDelivery(rt)
		a, b := openA(t), openB(t)
		defer a.Close()
		defer b.Close()
		replay(rt, d, a, b)
	})
}

// replay puts d's batches into every store and compares each store with
// the model, and so with the others, after each batch.
func replay(t *rapid.T, d delivery, stores ...store.Store) {
	ctx := context.Background()
	m := &model{events: map[event.ID]*event.Event{}, evidence: map[event.Equivocation]bool{}}
	for i, b := range d.batches {
		m.put(b)
		for si, s := range stores {
			if err := s.Put(ctx, b.events, b.evidence); err != nil {
				t.Fatalf("store %d: Put of batch %d: %v", si, i, err)
			}
			if err := compare(ctx, s, d, m); err != nil {
				t.Fatalf("store %d after batch %d of %d: %v", si, i, len(d.batches), err)
			}
		}
	}
}

// compare checks every read of s against m.
func compare(ctx context.Context, s store.Store, d delivery, m *model) error {
	h, err := s.Heads(ctx, d.pid)
	if err != nil {
		return err
	}
	if want := m.heads(); !slices.Equal(h, want) {
		return fmt.Errorf("store: Heads = %s, want %s", shorts(h), shorts(want))
	}
	v, err := s.VersionVector(ctx, d.pid)
	if err != nil {
		return err
	}
	if want := m.vv(); !equalVV(v, want) {
		return fmt.Errorf("store: VersionVector = %v, want %v", v, want)
	}
	n, err := s.Count(ctx, d.pid)
	if err != nil {
		return err
	}
	if n != len(m.events) {
		return fmt.Errorf("store: Count = %d, want %d", n, len(m.events))
	}
	want := m.order()
	i := 0
	err = s.Iterate(ctx, d.pid, func(e *event.Event) error {
		if i >= len(want) {
			return fmt.Errorf("store: Iterate visited more than the %d events stored", len(want))
		}
		if !sameEvent(e, want[i]) {
			return fmt.Errorf("store: Iterate visited %s (body %v) at %d, want %s (body %v)",
				e.ID().Short(), e.HasBody(), i, want[i].ID().Short(), want[i].HasBody())
		}
		i++
		return nil
	})
	if err != nil {
		return err
	}
	if i != len(want) {
		return fmt.Errorf("store: Iterate visited %d events, want %d", i, len(want))
	}
	q, err := s.Evidence(ctx, d.pid)
	if err != nil {
		return err
	}
	if want := m.evidenceList(); !slices.Equal(q, want) {
		return fmt.Errorf("store: Evidence = %v, want %v", q, want)
	}
	ps, err := s.Pursuances(ctx)
	if err != nil {
		return err
	}
	var wantPs []event.ID
	if _, ok := m.events[d.pid]; ok {
		wantPs = []event.ID{d.pid}
	}
	if !slices.Equal(ps, wantPs) {
		return fmt.Errorf("store: Pursuances = %s, want %s", shorts(ps), shorts(wantPs))
	}
	refs, err := s.Refs(ctx, ids(d.events))
	if err != nil {
		return err
	}
	if len(refs) != len(m.events) {
		return fmt.Errorf("store: Refs found %d events, want %d", len(refs), len(m.events))
	}
	for _, e := range d.events {
		want, stored := m.events[e.ID()]
		got, err := s.Get(ctx, e.ID())
		switch {
		case !stored && !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("store: Get(%s) of an event not put: %v", e.ID().Short(), err)
		case !stored:
			continue
		case err != nil:
			return err
		case !sameEvent(got, want):
			return fmt.Errorf("store: Get(%s) differs (body %v, want %v)", e.ID().Short(), got.HasBody(), want.HasBody())
		case refs[e.ID()] != e.Ref():
			return fmt.Errorf("store: Refs[%s] = %+v, want %+v", e.ID().Short(), refs[e.ID()], e.Ref())
		}
		at, err := s.BySeq(ctx, d.pid, e.Author, e.Seq)
		if err != nil {
			return err
		}
		var wantAt []event.ID
		for _, o := range m.events {
			if o.Author == e.Author && o.Seq == e.Seq {
				wantAt = append(wantAt, o.ID())
			}
		}
		slices.SortFunc(wantAt, event.ID.Compare)
		if !slices.Equal(ids(at), wantAt) {
			return fmt.Errorf("BySeq(%s, %d) = %s, want %s", e.Author.Short(), e.Seq, shorts(ids(at)), shorts(wantAt))
		}
	}
	return nil
}
