package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/store"
)

// ErrDependsOnRejected is wrapped by the rejection of an event whose
// backlink or parent was itself rejected in the same batch for breaking a
// rule (not merely for lacking a verifiable signature).
var ErrDependsOnRejected = errors.New("depends on a rejected event")

// Default limits of the pending set.
const (
	DefaultMaxPending      = 100_000
	DefaultMaxPendingBytes = 256 << 20
	defaultRefCache        = 1 << 17
)

// Options tune an Ingester. The zero value is ready to use.
type Options struct {
	// Workers is how many goroutines decode and verify in parallel; 0
	// means GOMAXPROCS.
	Workers int
	// Naive verifies every event's signature, one at a time on one
	// goroutine, and decodes on one goroutine too. It accepts exactly
	// what the default path accepts; it exists as the benchmark baseline.
	Naive bool
	// MaxPending and MaxPendingBytes bound the events held while their
	// predecessors are missing; the oldest are dropped first. 0 means the
	// default.
	MaxPending      int
	MaxPendingBytes int
}

// Rejection says why one event was not accepted.
type Rejection struct {
	// Index is the event's position in the batch, or -1 for an event that
	// had been pending since an earlier batch.
	Index int
	// ID is the event's ID, zero if the bytes did not decode.
	ID  event.ID
	Err error
}

// Result reports what one call to Ingest did.
type Result struct {
	// Accepted lists the events stored by this call, in the causal order
	// they were written. It includes events pending from earlier calls
	// that this batch completed.
	Accepted []event.ID
	// Duplicates counts events that were already stored or pending, or
	// repeated within the batch.
	Duplicates int
	// Rejected lists the events refused, with reasons.
	Rejected []Rejection
	// Pending counts events of this batch now waiting for predecessors.
	Pending int
	// Equivocations lists the forks this batch revealed.
	Equivocations []event.Equivocation
}

// Ingester checks and stores batches of events for one store. It must be
// the only writer of that store, since it caches each chain's tip. It is
// safe for concurrent use; calls are serialized.
type Ingester struct {
	st   store.Store
	opts Options

	mu           sync.Mutex
	pending      map[event.ID]*waiter
	waiters      map[event.ID]map[event.ID]struct{} // missing ID → pending events naming it
	queue        []event.ID                         // pending IDs, oldest first (may hold stale entries)
	pendingBytes int
	tips         map[chainKey]uint64 // highest stored seq of each chain
	loaded       map[event.ID]bool   // pursuances whose tips are in tips
	refs         refCache
	// authorChecked caches identity.PublicKey.Check for each author seen.
	authorChecked map[identity.PublicKey]error
	// flight holds the events of the batch IngestBatches is writing while
	// it checks the next one; nil otherwise.
	flight *flight
	// undo, while apply runs for IngestBatches, records how to undo it.
	undo *undo
}

type chainKey struct {
	pid    event.ID
	author identity.PublicKey
}

type seqKey struct {
	chainKey
	seq uint64
}

// New returns an Ingester writing to st.
func New(st store.Store, opts Options) *Ingester {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Naive {
		opts.Workers = 1
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.MaxPendingBytes <= 0 {
		opts.MaxPendingBytes = DefaultMaxPendingBytes
	}
	return &Ingester{
		st:      st,
		opts:    opts,
		pending: make(map[event.ID]*waiter),
		waiters: make(map[event.ID]map[event.ID]struct{}),
		tips:    make(map[chainKey]uint64),
		loaded:  make(map[event.ID]bool),
		refs:    newRefCache(defaultRefCache),

		authorChecked: make(map[identity.PublicKey]error),
	}
}

// Ingest decodes, checks and stores a batch of events in wire form. The
// batch may arrive in any order and may mix pursuances. Events are accepted
// or not independently: a bad event does not spoil the rest. Those whose
// backlink or parents are neither stored nor in the batch wait in the
// pending set and are accepted by the call that completes them.
//
// The returned error is non-nil only if the store failed; then nothing of
// this batch was stored and the pending set is as before.
func (in *Ingester) Ingest(ctx context.Context, batch [][]byte) (Result, error) {
	items, rejected := in.decode(batch)
	res, err := in.ingest(ctx, items)
	if err != nil {
		return Result{}, err
	}
	res.Rejected = append(rejected, res.Rejected...)
	slices.SortStableFunc(res.Rejected, func(a, b Rejection) int { return cmp.Compare(a.Index, b.Index) })
	return res, nil
}

// IngestEvents is Ingest for events already decoded, such as those the
// member has just signed.
func (in *Ingester) IngestEvents(ctx context.Context, evs []*event.Event) (Result, error) {
	items := make([]item, 0, len(evs))
	var rejected []Rejection
	for i, e := range evs {
		if err := e.StaticValidate(); err != nil {
			rejected = append(rejected, Rejection{Index: i, ID: e.ID(), Err: err})
			continue
		}
		items = append(items, item{ev: e, idx: i, size: e.EncodedSize()})
	}
	res, err := in.ingest(ctx, items)
	if err != nil {
		return Result{}, err
	}
	res.Rejected = append(rejected, res.Rejected...)
	return res, nil
}

// Missing returns the IDs that pending events name and that are neither
// stored nor pending: the exact gaps to ask relays and peers for.
func (in *Ingester) Missing() []event.ID {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]event.ID, 0, len(in.waiters))
	for id := range in.waiters {
		if _, ok := in.pending[id]; !ok {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, event.ID.Compare)
	return out
}

// Reload makes the Ingester read each chain's tip from the store again
// at its next use, keeping the pending set: call it when another writer
// (another process, while this one did not hold the home) may have
// written to the store since the last call. A stale tip would let an
// event at a seq the other writer stored pass as new, unchecked for
// equivocation. It must not be called during an Ingest.
func (in *Ingester) Reload() {
	in.mu.Lock()
	defer in.mu.Unlock()
	clear(in.tips)
	clear(in.loaded)
}

// PendingCount returns the number of events waiting for predecessors.
func (in *Ingester) PendingCount() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.pending)
}

type item struct {
	ev   *event.Event
	idx  int
	size int
}

// decode decodes and statically validates the batch, in parallel unless
// naive.
func (in *Ingester) decode(batch [][]byte) ([]item, []Rejection) {
	type out struct {
		ev  *event.Event
		err error
	}
	res := make([]out, len(batch))
	parallel(in.opts.Workers, len(batch), 64, func(i int) {
		e, err := event.Decode(batch[i])
		if err == nil {
			err = e.StaticValidate()
		}
		res[i] = out{e, err}
	})
	items := make([]item, 0, len(batch))
	var rejected []Rejection
	for i, r := range res {
		if r.err != nil {
			rej := Rejection{Index: i, Err: r.err}
			if r.ev != nil {
				rej.ID = r.ev.ID()
			}
			rejected = append(rejected, rej)
			continue
		}
		items = append(items, item{ev: r.ev, idx: i, size: len(batch[i])})
	}
	return items, rejected
}

// cand is an event of the batch (or pulled from pending) being checked.
type cand struct {
	item
	pred      *cand // the author's previous event, when it is a candidate too
	succs     int   // candidates whose pred this is, not yet found unauthentic
	authentic bool
	vouched   bool // reached walking back from an authentic successor
	rejected  error
	accepted  bool
	waiting   bool       // checked, and waits for missing predecessors
	missing   []event.ID // what it waits for
	ref       event.Ref
}

func (in *Ingester) ingest(ctx context.Context, items []item) (Result, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	p, err := in.check(ctx, items)
	if err != nil {
		return Result{}, err
	}
	if err := in.put(ctx, p); err != nil {
		return Result{}, err
	}
	in.apply(p, nil)
	return p.res, nil
}

// plan is a checked batch: what its Put writes, and what to change in the
// Ingester's caches and pending set once it is written.
type plan struct {
	res      Result // all but Accepted and Pending, which apply fills in
	accepted []*event.Event
	fills    []*event.Event // stored events whose missing body this batch brings
	pulled   []event.ID     // pending events taken into this batch
	all      []*cand
	cands    map[event.ID]*cand
}

// put writes what p accepted, in one transaction.
func (in *Ingester) put(ctx context.Context, p *plan) error {
	if len(p.accepted) == 0 && len(p.res.Equivocations) == 0 && len(p.fills) == 0 {
		return nil
	}
	if err := in.st.Put(ctx, append(p.fills, p.accepted...), p.res.Equivocations); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return nil
}

// check decides the fate of every event of a batch against the store, the
// caches and the pending set, without changing what the store holds or
// which events are pending. Only the caches change (each chain's tip and
// each author key's check, as read from the store), and a pending event
// gains a body the batch brings for it.
func (in *Ingester) check(ctx context.Context, items []item) (*plan, error) {
	var res Result

	// The batch's events, without repeats or events already pending.
	cands := make(map[event.ID]*cand, len(items))
	round := make([]*cand, 0, len(items))
	for _, it := range items {
		id := it.ev.ID()
		if c, ok := cands[id]; ok {
			res.Duplicates++
			if !c.ev.HasBody() && it.ev.HasBody() {
				c.ev = it.ev
			}
			continue
		}
		if w, ok := in.pending[id]; ok {
			res.Duplicates++
			if !w.ev.HasBody() && it.ev.HasBody() {
				in.pendingBytes += it.size - w.raw
				w.size += it.size - w.raw
				w.ev, w.raw = it.ev, it.size
			}
			continue
		}
		c := &cand{item: it}
		cands[id] = c
		round = append(round, c)
	}
	all := slices.Clone(round) // every candidate, in a deterministic order
	round = in.dropWeakAuthors(cands, round, &res)
	stored := make(map[event.ID][]event.ID)
	var fills []*event.Event // stored events whose missing body this batch brings
	round, err := in.dropStored(ctx, cands, round, stored, &fills, &res)
	if err != nil {
		return nil, err
	}
	in.authenticate(cands, round)

	// Check links in rounds. Each round goes in causal order; an event
	// whose predecessors are missing waits, and joins a later round if one
	// of them is accepted, as do pending events of earlier batches.
	var accepted []*event.Event
	acceptedAt := make(map[seqKey][]event.ID)
	localWaiters := make(map[event.ID][]*cand) // missing ID → candidates waiting on it
	var pulled []event.ID                      // pending events taken into this call
	for len(round) > 0 {
		slices.SortFunc(round, func(a, b *cand) int {
			if c := cmp.Compare(a.ev.Lamport, b.ev.Lamport); c != 0 {
				return c
			}
			return a.ev.ID().Compare(b.ev.ID())
		})
		known, err := in.lookupRefs(ctx, cands, round)
		if err != nil {
			return nil, err
		}
		var newly []event.ID
		for _, c := range round {
			if !c.authentic {
				c.rejected = fmt.Errorf("event %s: %w by %s", c.ev.ID().Short(), event.ErrBadSignature, c.ev.Author.Short())
				res.Rejected = append(res.Rejected, Rejection{Index: c.idx, ID: c.ev.ID(), Err: c.rejected})
				continue
			}
			back, parents, missing, err := resolve(c, cands, &in.refs, in.flight, known)
			if err == nil && len(missing) == 0 {
				err = event.CheckLinks(c.ev, back, parents)
			}
			switch {
			case err != nil:
				c.rejected = err
				res.Rejected = append(res.Rejected, Rejection{Index: c.idx, ID: c.ev.ID(), Err: err})
				continue
			case len(missing) > 0:
				c.waiting, c.missing = true, missing
				for _, m := range missing {
					localWaiters[m] = append(localWaiters[m], c)
				}
				continue
			}
			c.accepted = true
			c.ref = c.ev.Ref()
			accepted = append(accepted, c.ev)
			newly = append(newly, c.ref.ID)
			k := seqKey{chainKey{c.ref.Pursuance, c.ref.Author}, c.ref.Seq}
			// One record per forked event, against the smallest other ID
			// at its seq: enough to prove the fork, and linear in the
			// number of events however many branches an author signs.
			if others := append(slices.Clone(acceptedAt[k]), stored[c.ref.ID]...); len(others) > 0 {
				res.Equivocations = append(res.Equivocations, pair(k, c.ref.ID, slices.MinFunc(others, event.ID.Compare)))
			}
			acceptedAt[k] = append(acceptedAt[k], c.ref.ID)
		}
		// The next round: what waited on an event accepted in this one.
		round = round[:0:0]
		var fresh []*cand
		for _, id := range newly {
			for _, c := range localWaiters[id] {
				if c.waiting {
					c.waiting, c.missing = false, nil
					round = append(round, c)
				}
			}
			delete(localWaiters, id)
			for wid := range in.waiters[id] {
				w, ok := in.pending[wid]
				if _, seen := cands[wid]; !ok || seen {
					continue
				}
				// Only authentic events are ever pended: no need to verify
				// them again.
				c := &cand{item: item{ev: w.ev, idx: -1, size: w.raw}, authentic: true, vouched: true}
				cands[wid] = c
				pulled = append(pulled, wid)
				fresh = append(fresh, c)
				all = append(all, c)
			}
		}
		fresh, err = in.dropStored(ctx, cands, fresh, stored, &fills, &res)
		if err != nil {
			return nil, err
		}
		round = append(round, fresh...)
	}

	return &plan{res: res, accepted: accepted, fills: fills, pulled: pulled, all: all, cands: cands}, nil
}

// apply updates the caches and the pending set for a checked batch, and
// fills in p.res.Accepted and p.res.Pending. Ingest calls it once the batch
// is stored; IngestBatches calls it while the batch is being stored, with
// u recording how to undo it should the store fail.
func (in *Ingester) apply(p *plan, u *undo) {
	if u != nil {
		u.queue, in.undo = in.queue, u
		defer func() { in.undo = nil }()
	}
	for _, id := range p.pulled {
		in.unpend(id)
	}
	for _, e := range p.accepted {
		p.res.Accepted = append(p.res.Accepted, e.ID())
		r := e.Ref()
		in.refs.put(r)
		k := chainKey{r.Pursuance, r.Author}
		if r.Seq > in.tips[k] {
			if u != nil {
				u.tip(k, in.tips)
			}
			in.tips[k] = r.Seq
		}
		if e.Kind == event.KindGenesis && !in.loaded[r.Pursuance] {
			if u != nil {
				u.loaded = append(u.loaded, r.Pursuance)
			}
			in.loaded[r.Pursuance] = true
		}
	}
	for _, c := range p.all {
		if c.waiting && p.cands[c.ev.ID()] == c {
			in.pend(c, c.missing)
			if c.idx >= 0 {
				p.res.Pending++
			}
		}
	}
	in.evict()
}

// parallel runs fn(0..n-1) on up to workers goroutines, or on the calling
// goroutine when n is below minParallel.
func parallel(workers, n, minParallel int, fn func(i int)) {
	if workers <= 1 || n < minParallel {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	if workers > n {
		workers = n
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				fn(i)
			}
		}()
	}
	wg.Wait()
}
