package ingest

import (
	"cmp"
	"context"
	"slices"

	"github.com/pursuance/pursuance/event"
)

// IngestBatches ingests batches in order, each exactly as a call to Ingest
// would, and passes each batch's result to fn (if not nil) in order, once
// that batch is stored. What differs is the timing: it checks batch i+1
// (decoding, hashing, signatures, links) while batch i is being written, so
// that the checking, which runs on all cores, overlaps the store's Put, which
// mostly runs on one. Each batch is still one Put, in causal order, after
// the Put of the batch before it has returned.
//
// While batch i is being written, batch i+1 is checked as if batch i were
// stored: against the caches and pending set batch i leaves, and against its
// events. If that Put fails, IngestBatches undoes what batch i changed in
// the caches and the pending set, drops batch i+1 unwritten, and returns the
// error: the batches whose results fn received are stored, no later one is,
// and the pending set is as those batches left it. If fn returns an error,
// IngestBatches returns it at once, and no later batch is stored.
//
// IngestBatches holds the Ingester for its whole run: other calls wait
// until it returns. With Options.Naive it does not overlap anything: it
// calls Ingest for each batch in turn, the baseline.
func (in *Ingester) IngestBatches(ctx context.Context, batches [][][]byte, fn func(i int, res Result) error) error {
	if fn == nil {
		fn = func(int, Result) error { return nil }
	}
	if in.opts.Naive {
		for i, b := range batches {
			res, err := in.Ingest(ctx, b)
			if err != nil {
				return err
			}
			if err := fn(i, res); err != nil {
				return err
			}
		}
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	defer func() { in.flight = nil }()

	// writing is the batch whose Put is under way, if any.
	type writing struct {
		i    int
		p    *plan
		u    *undo
		done chan error
	}
	var w *writing
	// finish waits for w's Put. It undoes w if the Put failed, and reports
	// w to fn if it did not.
	finish := func() error {
		if w == nil {
			return nil
		}
		cur := w
		w = nil
		if err := <-cur.done; err != nil {
			in.rollback(cur.u)
			return err
		}
		in.flight = nil
		return fn(cur.i, cur.p.res)
	}
	for i, b := range batches {
		p, err := in.checkWire(ctx, b)
		if err != nil {
			if ferr := finish(); ferr != nil {
				return ferr
			}
			return err
		}
		if err := finish(); err != nil {
			return err // p was only checked: nothing to undo
		}
		w = &writing{i: i, p: p, u: &undo{accepted: p.accepted}, done: make(chan error, 1)}
		go func(done chan<- error) { done <- in.put(ctx, p) }(w.done)
		in.apply(p, w.u)
		in.flight = newFlight(p.accepted)
	}
	return finish()
}

// checkWire decodes and checks a batch in wire form, for IngestBatches: the
// check half of Ingest. The caller holds in.mu.
func (in *Ingester) checkWire(ctx context.Context, batch [][]byte) (*plan, error) {
	items, rejected := in.decode(batch)
	p, err := in.check(ctx, items)
	if err != nil {
		return nil, err
	}
	p.res.Rejected = append(rejected, p.res.Rejected...)
	slices.SortStableFunc(p.res.Rejected, func(a, b Rejection) int { return cmp.Compare(a.Index, b.Index) })
	return p, nil
}

// flight is the batch being written while the next one is checked: its
// events count as stored for the check (as links, duplicates and other
// branches at a seq), though the store may not hold them yet.
type flight struct {
	refs  map[event.ID]event.Ref
	bySeq map[seqKey][]*event.Event
}

func newFlight(accepted []*event.Event) *flight {
	f := &flight{refs: make(map[event.ID]event.Ref, len(accepted)), bySeq: make(map[seqKey][]*event.Event, len(accepted))}
	for _, e := range accepted {
		r := e.Ref()
		f.refs[r.ID] = r
		k := seqKey{chainKey{r.Pursuance, r.Author}, r.Seq}
		f.bySeq[k] = append(f.bySeq[k], e)
	}
	return f
}

// ref returns the ref of an event in flight. f may be nil.
func (f *flight) ref(id event.ID) (event.Ref, bool) {
	if f == nil {
		return event.Ref{}, false
	}
	r, ok := f.refs[id]
	return r, ok
}

// undo records what apply changed, so that rollback can restore the
// Ingester as it was before.
type undo struct {
	accepted []*event.Event // their refs went into the cache
	queue    []event.ID     // in.queue before: apply only appends to it or replaces it
	ops      []pendOp       // pend and unpend calls, in order
	tips     map[chainKey]oldTip
	loaded   []event.ID // pursuances apply marked loaded
}

type pendOp struct {
	id    event.ID
	w     *waiter
	added bool // pended; otherwise unpended
}

type oldTip struct {
	seq uint64
	ok  bool
}

// tip records k's tip before its first change.
func (u *undo) tip(k chainKey, tips map[chainKey]uint64) {
	if u.tips == nil {
		u.tips = make(map[chainKey]oldTip)
	}
	if _, ok := u.tips[k]; !ok {
		s, had := tips[k]
		u.tips[k] = oldTip{s, had}
	}
}

// rollback undoes one apply, the last one made.
func (in *Ingester) rollback(u *undo) {
	for i := len(u.ops) - 1; i >= 0; i-- {
		op := u.ops[i]
		if op.added {
			delete(in.pending, op.id)
			in.pendingBytes -= op.w.size
			for _, m := range op.w.missing {
				delete(in.waiters[m], op.id)
				if len(in.waiters[m]) == 0 {
					delete(in.waiters, m)
				}
			}
			continue
		}
		in.pending[op.id] = op.w
		in.pendingBytes += op.w.size
		for _, m := range op.w.missing {
			ws := in.waiters[m]
			if ws == nil {
				ws = make(map[event.ID]struct{})
				in.waiters[m] = ws
			}
			ws[op.id] = struct{}{}
		}
	}
	in.queue = u.queue
	for k, t := range u.tips {
		if t.ok {
			in.tips[k] = t.seq
		} else {
			delete(in.tips, k)
		}
	}
	for _, pid := range u.loaded {
		delete(in.loaded, pid)
	}
	for _, e := range u.accepted {
		in.refs.remove(e.ID())
	}
	in.flight = nil
}
