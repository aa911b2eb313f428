package ingest

import (
	"github.com/pursuance/pursuance/event"
)

type waiter struct {
	ev      *event.Event
	missing []event.ID
	raw     int // the event's encoded size
	size    int // raw plus bookkeeping, as counted in pendingBytes
}

// pend adds c to the pending set, waiting for missing.
func (in *Ingester) pend(c *cand, missing []event.ID) {
	id := c.ev.ID()
	size := c.size + waiterOverhead*(1+len(missing))
	w := &waiter{ev: c.ev, missing: missing, raw: c.size, size: size}
	in.pending[id] = w
	in.pendingBytes += size
	if in.undo != nil {
		in.undo.ops = append(in.undo.ops, pendOp{id: id, w: w, added: true})
	}
	in.queue = append(in.queue, id)
	for _, m := range missing {
		ws := in.waiters[m]
		if ws == nil {
			ws = make(map[event.ID]struct{})
			in.waiters[m] = ws
		}
		ws[id] = struct{}{}
	}
}

// waiterOverhead approximates the bytes of bookkeeping per pending event and
// per ID it waits for, so that MaxPendingBytes bounds them too.
const waiterOverhead = 128

// unpend removes id from the pending set.
func (in *Ingester) unpend(id event.ID) {
	w, ok := in.pending[id]
	if !ok {
		return
	}
	delete(in.pending, id)
	in.pendingBytes -= w.size
	if in.undo != nil {
		in.undo.ops = append(in.undo.ops, pendOp{id: id, w: w})
	}
	for _, m := range w.missing {
		delete(in.waiters[m], id)
		if len(in.waiters[m]) == 0 {
			delete(in.waiters, m)
		}
	}
}

// evict drops the oldest pending events while the set is over its bounds,
// and compacts the queue.
func (in *Ingester) evict() {
	for len(in.queue) > 0 && (len(in.pending) > in.opts.MaxPending || in.pendingBytes > in.opts.MaxPendingBytes) {
		in.unpend(in.queue[0])
		in.queue = in.queue[1:]
	}
	if len(in.queue) > 2*len(in.pending)+1024 {
		q := make([]event.ID, 0, len(in.pending))
		for _, id := range in.queue {
			if _, ok := in.pending[id]; ok {
				q = append(q, id)
			}
		}
		in.queue = q
	}
}
