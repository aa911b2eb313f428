package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/pursuance/pursuance/event"
)

// lookupRefs fetches from the store, in one call, the refs of events the
// candidates link to that are neither candidates nor cached.
func (in *Ingester) lookupRefs(ctx context.Context, cands map[event.ID]*cand, order []*cand) (map[event.ID]event.Ref, error) {
	want := make(map[event.ID]struct{})
	need := func(id event.ID) {
		if _, ok := cands[id]; ok {
			return
		}
		if _, ok := in.refs.get(id); ok {
			return
		}
		if _, ok := in.flight.ref(id); ok {
			return
		}
		want[id] = struct{}{}
	}
	for _, c := range order {
		if !c.authentic {
			continue
		}
		if c.ev.Seq > 1 {
			need(c.ev.Backlink)
		}
		for _, p := range c.ev.Parents {
			need(p)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	ids := make([]event.ID, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	refs, err := in.st.Refs(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	return refs, nil
}

// resolve finds the refs of c's backlink and parents. It returns the IDs no
// one has (c must wait for them), or an error if c cannot be valid.
func resolve(c *cand, cands map[event.ID]*cand, cache *refCache, fl *flight, known map[event.ID]event.Ref) (back *event.Ref, parents []event.Ref, missing []event.ID, err error) {
	find := func(id event.ID) (event.Ref, bool, error) {
		if d, ok := cands[id]; ok {
			switch {
			case d.accepted:
				return d.ref, true, nil
			case d.rejected != nil && !errors.Is(d.rejected, event.ErrBadSignature):
				return event.Ref{}, false, fmt.Errorf("event %s: %w: %s", c.ev.ID().Short(), ErrDependsOnRejected, id.Short())
			case d.authentic && d.rejected == nil && !d.waiting:
				// Not yet reached in (lamport, ID) order, so its lamport is
				// not below c's: c's clock cannot be right.
				return event.Ref{}, false, fmt.Errorf("event %s: %w: names %s, whose lamport %d is not below its own %d",
					c.ev.ID().Short(), event.ErrLamport, id.Short(), d.ev.Lamport, c.ev.Lamport)
			}
			return event.Ref{}, false, nil // unauthentic or waiting: c waits for it
		}
		if r, ok := cache.get(id); ok {
			return r, true, nil
		}
		if r, ok := known[id]; ok {
			return r, true, nil
		}
		if r, ok := fl.ref(id); ok {
			return r, true, nil
		}
		return event.Ref{}, false, nil
	}
	// While the backlink is missing, c only waits, whatever its parents:
	// c may be what vouches for its backlink (docs/events.md §9), and a
	// rejected c would be forgotten and vouch for nothing, so the verdict
	// on the backlink would depend on delivery order.
	backMissing := false
	if c.ev.Seq > 1 {
		r, ok, ferr := find(c.ev.Backlink)
		switch {
		case ferr != nil:
			err = ferr
		case ok:
			back = &r
		default:
			backMissing = true
			missing = append(missing, c.ev.Backlink)
		}
	}
	parents = make([]event.Ref, len(c.ev.Parents))
	for i, p := range c.ev.Parents {
		r, ok, ferr := find(p)
		switch {
		case ferr != nil:
			if err == nil {
				err = ferr
			}
		case ok:
			parents[i] = r
		default:
			missing = append(missing, p)
		}
	}
	if backMissing {
		return nil, nil, missing, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return back, parents, missing, nil
}

// refCache remembers the refs of recently accepted events, so that checking
// a new event's links rarely needs the store. It holds between size and
// 2×size entries in two generations.
type refCache struct {
	size      int
	cur, prev map[event.ID]event.Ref
}

func newRefCache(size int) refCache {
	return refCache{size: size, cur: make(map[event.ID]event.Ref)}
}

func (rc *refCache) get(id event.ID) (event.Ref, bool) {
	if r, ok := rc.cur[id]; ok {
		return r, true
	}
	r, ok := rc.prev[id]
	return r, ok
}

func (rc *refCache) put(r event.Ref) {
	if len(rc.cur) >= rc.size {
		rc.prev, rc.cur = rc.cur, make(map[event.ID]event.Ref, rc.size)
	}
	rc.cur[r.ID] = r
}

func (rc *refCache) remove(id event.ID) {
	delete(rc.cur, id)
	delete(rc.prev, id)
}
