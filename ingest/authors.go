package ingest

import (
	"context"
	"fmt"

	"github.com/pursuance/pursuance/event"
)

// dropWeakAuthors rejects the candidates whose author key is one no one
// can own alone (identity.PublicKey.Check): anyone could sign as it. Each
// author is checked once per Ingester.
func (in *Ingester) dropWeakAuthors(cands map[event.ID]*cand, round []*cand, res *Result) []*cand {
	live := round[:0]
	for _, c := range round {
		err, ok := in.authorChecked[c.ev.Author]
		if !ok {
			err = c.ev.Author.Check()
			if len(in.authorChecked) >= maxAuthorCache {
				clear(in.authorChecked) // junk with random keys costs no memory
			}
			in.authorChecked[c.ev.Author] = err
		}
		if err != nil {
			c.rejected = fmt.Errorf("event %s: %w: %w", c.ev.ID().Short(), event.ErrInvalid, err)
			res.Rejected = append(res.Rejected, Rejection{Index: c.idx, ID: c.ev.ID(), Err: c.rejected})
			continue
		}
		live = append(live, c)
	}
	return live
}

// maxAuthorCache bounds Ingester.authorChecked.
const maxAuthorCache = 1 << 16

// dropStored removes from round the candidates the store already holds
// (counting them as duplicates), and records in stored the other events
// stored at each remaining candidate's seq (see storedAtSeq).
func (in *Ingester) dropStored(ctx context.Context, cands map[event.ID]*cand, round []*cand, stored map[event.ID][]event.ID, fills *[]*event.Event, res *Result) ([]*cand, error) {
	found, f, err := in.storedAtSeq(ctx, round)
	if err != nil {
		return nil, err
	}
	*fills = append(*fills, f...)
	live := round[:0]
	for _, c := range round {
		others, ok := found[c.ev.ID()]
		if ok && others == nil {
			res.Duplicates++
			delete(cands, c.ev.ID())
			continue
		}
		if ok {
			stored[c.ev.ID()] = others
		}
		live = append(live, c)
	}
	return live, nil
}

func pair(k seqKey, a, b event.ID) event.Equivocation {
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	return event.Equivocation{Pursuance: k.pid, Author: k.author, Seq: k.seq, A: a, B: b}
}

// storedAtSeq finds, for each candidate at or below its chain's stored tip,
// the stored events at the same seq. The result maps a candidate's ID to
// nil when the candidate itself is stored (a duplicate), or to the IDs of
// the other stored events at its seq (an equivocation). fills lists the
// duplicates that carry a body the stored copy lacks.
func (in *Ingester) storedAtSeq(ctx context.Context, order []*cand) (out map[event.ID][]event.ID, fills []*event.Event, err error) {
	out = make(map[event.ID][]event.ID)
	asked := make(map[event.ID]bool) // pursuances looked up by this call
	for _, c := range order {
		pid := c.ev.PursuanceID()
		if !in.loaded[pid] && !asked[pid] {
			asked[pid] = true
			vv, err := in.st.VersionVector(ctx, pid)
			if err != nil {
				return nil, nil, fmt.Errorf("ingest: %w", err)
			}
			for a, s := range vv {
				// Never lower: while IngestBatches writes a batch, its
				// events are in tips but not yet in the store.
				if k := (chainKey{pid, a}); s > in.tips[k] {
					in.tips[k] = s
				}
			}
			// A pursuance with nothing stored is not remembered, so that
			// junk naming random pursuances costs no memory; its genesis
			// marks it loaded once stored.
			if len(vv) > 0 {
				in.loaded[pid] = true
			}
		}
		if c.ev.Seq > in.tips[chainKey{pid, c.ev.Author}] {
			continue // beyond the chain's tip: new
		}
		evs, err := in.st.BySeq(ctx, pid, c.ev.Author, c.ev.Seq)
		if err != nil {
			return nil, nil, fmt.Errorf("ingest: %w", err)
		}
		if in.flight != nil {
			evs = append(evs, in.flight.bySeq[seqKey{chainKey{pid, c.ev.Author}, c.ev.Seq}]...)
		}
		var others []event.ID
		dup := false
		for _, s := range evs {
			if s.ID() == c.ev.ID() {
				dup = true
				if !s.HasBody() && c.ev.HasBody() {
					fills = append(fills, c.ev)
				}
				break
			}
			others = append(others, s.ID())
		}
		switch {
		case dup:
			out[c.ev.ID()] = nil
		case len(others) > 0:
			out[c.ev.ID()] = others
		}
	}
	return out, fills, nil
}

// authenticate decides which candidates are authentic. An event is
// authentic if its signature verifies, or if an authentic later event of
// the same author reaches it through backlinks (its signature covers the
// ID of its predecessor, and that ID covers the predecessor's signature).
// The default path verifies only events with no candidate successor, and
// walks back from each that verifies; the naive path verifies everything.
// Both reach the same verdicts.
func (in *Ingester) authenticate(cands map[event.ID]*cand, order []*cand) {
	for _, c := range order {
		if c.ev.Seq == 1 {
			continue
		}
		p, ok := cands[c.ev.Backlink]
		if !ok || !p.ev.Author.Equal(c.ev.Author) || p.ev.Seq+1 != c.ev.Seq || p.ev.PursuanceID() != c.ev.PursuanceID() {
			continue
		}
		c.pred = p
		p.succs++
	}
	// vouch marks c and its candidate predecessors authentic. It walks each
	// chain once: it stops at an event an earlier walk reached.
	vouch := func(c *cand) {
		for ; c != nil && !c.vouched; c = c.pred {
			c.vouched, c.authentic = true, true
		}
	}
	// An event that a pending event of the same author backlinks to was
	// vouched for when that pending event was authenticated.
	for _, c := range order {
		if !c.vouched && in.hasPendingSuccessor(c.ev) {
			vouch(c)
		}
	}
	if in.opts.Naive {
		ok := make([]bool, len(order))
		for i, c := range order {
			ok[i] = c.authentic || c.ev.VerifySignature() == nil
		}
		for i, c := range order {
			if ok[i] {
				vouch(c)
			}
		}
		return
	}
	var leaves []*cand
	for _, c := range order {
		if c.succs == 0 {
			leaves = append(leaves, c)
		}
	}
	for len(leaves) > 0 {
		ok := make([]bool, len(leaves))
		parallel(in.opts.Workers, len(leaves), 2, func(i int) {
			ok[i] = leaves[i].authentic || leaves[i].ev.VerifySignature() == nil
		})
		var next []*cand
		for i, c := range leaves {
			if ok[i] {
				vouch(c)
				continue
			}
			if p := c.pred; p != nil {
				p.succs--
				if p.succs == 0 && !p.authentic {
					next = append(next, p)
				}
			}
		}
		leaves = next
	}
}

// hasPendingSuccessor reports whether a pending event is e's author's next
// event after e.
func (in *Ingester) hasPendingSuccessor(e *event.Event) bool {
	for wid := range in.waiters[e.ID()] {
		w, ok := in.pending[wid]
		if ok && w.ev.Backlink == e.ID() && w.ev.Author.Equal(e.Author) && w.ev.Seq == e.Seq+1 && w.ev.PursuanceID() == e.PursuanceID() {
			return true
		}
	}
	return false
}
