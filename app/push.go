package app

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// behindGrace is how old an event must be (by its claimed time) for a
// relay that lacks it, while another source had it, to count as behind:
// a few sync rounds, the time honest relays take to receive it.
const behindGrace = 2 * time.Minute

// push sends the relay what it is not known to hold: each event sealed
// under the group generation current before it in log order, on that
// generation's topic, as Export seals it (a member removed along the way
// reads up to its removal, nothing after), and every group key-update
// again under the current generation's topic. Each acknowledged envelope
// is recorded, with the cursor the relay answered, to be checked at the
// next read. The plan (what to send) is made from the store without the
// home's lock; sending holds nothing.
func (rr *relayRun) push(ctx context.Context) error {
	n, sdb, url := rr.n, rr.sdb, rr.c.URL()
	if _, err := n.st.Get(ctx, rr.p); err != nil {
		return nil // nothing of p on this home yet
	}
	s, err := n.syncState(ctx, rr.p)
	if err != nil {
		return err
	}
	gens, err := n.groupEnvelopes(ctx, s)
	if err != nil {
		return err
	}
	// What the relay holds: read whole (heldBy), or, from the mark of the
	// last complete push to it, only for the events that came since and
	// those it lacked then (pushmark.go).
	all, err := n.fold(ctx, rr.p, false)
	if err != nil {
		return err
	}
	mark, epoch := n.folds.takePushMark(rr.p, url)
	now := n.opts.Now()
	if mark != nil && (mark.last != gens.last.Topic() || now.Sub(mark.full) > fullPlanEvery) {
		mark = nil
	}
	var others []string
	for _, u := range rr.urls {
		if u != url {
			others = append(others, u)
		}
	}
	// What the other relays hold, read only when an event this one lacks
	// is old enough to count (below): reading it is a scan of sync.db,
	// and a round usually has only new events to send.
	var elsewhere *heldSet
	heldElsewhere := func(id event.ID) (bool, error) {
		if elsewhere == nil {
			set, err := sdb.heldByAny(ctx, others)
			if err != nil {
				return false, err
			}
			elsewhere = &set
		}
		return elsewhere.has(id), nil
	}
	var (
		updates []event.ID
		next    *pushMark
		onLast  heldSet
		plan    []planned
	)
	for {
		next = &pushMark{count: all.Len(), pending: map[event.ID]bool{}, last: gens.last.Topic(), full: now}
		if mark == nil {
			var held heldSet
			if held, onLast, err = sdb.heldBy(ctx, url, gens.last.Topic()); err != nil {
				return err
			}
			next.heldAny = held.len() > 0
			if plan, updates, next.vv, err = n.walkPlan(ctx, all, gens, held.has); err != nil {
				return err
			}
			break
		}
		// The log is the mark's with events added above its authors'
		// seqs, or something else happened (a fork's second event, at or
		// below a seq): then planned in full.
		above := all.EntriesAbove(mark.vv)
		if all.Len()-len(above) != mark.count {
			mark = nil
			continue
		}
		next.heldAny, next.full = mark.heldAny, mark.full
		has := func(id event.ID) (bool, error) { return sdb.holds(ctx, url, keys.Topic{}, id) }
		if plan, updates, next.vv, err = n.markPlan(ctx, all, gens, mark, above, has); err != nil {
			return err
		}
		if checkPushPlans {
			held, _, err := sdb.readHeld(ctx, url, gens.last.Topic())
			if err != nil {
				return err
			}
			full, fullUpdates, fullVV, err := n.walkPlan(ctx, all, gens, held.has)
			if err != nil {
				return err
			}
			if !slices.Equal(plan, full) ||
				!slices.Equal(updates, fullUpdates) || !maps.Equal(next.vv, fullVV) {
				panic(fmt.Sprintf("app: the push's plan from its mark (%d events) is not the full plan (%d)", len(plan), len(full)))
			}
		}
		break
	}
	heldAny := next.heldAny
	if len(plan) > pendingMax {
		next = nil // planned in full next time (pendingMax)
	}
	for _, en := range plan {
		if next != nil {
			next.pending[en.id] = true
		}
		// Behind: another source had it and this relay has not had it
		// for a while. A relay this home knows nothing of yet (just
		// added, or wiped: reported as such) is new, not behind; an
		// event written moments ago is still on its way (its author may
		// publish to one relay, which members pass on), so only one
		// claimed to be older than behindGrace counts. (A claimed time
		// is the author's word: this only decides a warning.)
		if heldAny && en.time+uint64(behindGrace.Milliseconds()) < uint64(now.UnixMilli()) {
			if there, err := heldElsewhere(en.id); err != nil {
				return err
			} else if there {
				rr.res.Behind++
			}
		}
	}
	// The group key updates, sent again under the current generation's
	// topic (and the generations a relay lacks them under) after the
	// plan: not events the relay lacked, so not in the mark's pending.
	for _, id := range updates {
		var on bool
		if mark == nil {
			on = onLast.has(id)
		} else if on, err = sdb.holds(ctx, url, gens.last.Topic(), id); err != nil {
			return err
		}
		if !on {
			plan = append(plan, planned{id: id, gen: gens.last})
		}
		behind, err := n.behindFor(ctx, sdb, url, gens, id)
		if err != nil {
			return err
		}
		for _, g := range behind {
			plan = append(plan, planned{id: id, gen: g})
		}
	}
	// Send, in appends of up to pushBatch envelopes per generation.
	type batch struct {
		envs [][]byte
		sent []pushedEnv
		size int
	}
	batches := map[*genEnv]*batch{}
	flush := func(g *genEnv) error {
		b := batches[g]
		if b == nil || len(b.envs) == 0 {
			return nil
		}
		topic := g.Topic()
		var ack appendAck
		err := retry(ctx, func() error {
			res, err := rr.c.Append(ctx, topic, g.topicKey, b.envs)
			ack = appendAck{res.Cursors, res.Instance, res.Refused}
			return err
		})
		if err != nil {
			return err
		}
		if wiped, err := rr.wipedSinceRead(ctx, ack.instance); wiped || err != nil {
			return err
		}
		for i := range b.sent {
			if ack.cursors != nil {
				b.sent[i].cursor = ack.cursors[i]
			}
		}
		if b.sent, err = n.notePushRefused(ctx, sdb, url, topic, b.sent, ack.refused); err != nil {
			return err
		}
		if err := sdb.addPushed(ctx, url, topic, b.sent); err != nil {
			return err
		}
		rr.res.Sent += len(b.envs)
		rr.progress("%s: sent %d", url, rr.res.Sent)
		b.envs, b.sent, b.size = b.envs[:0], b.sent[:0], 0
		return nil
	}
	var buf []byte
	for _, sd := range plan {
		e, err := n.st.Get(ctx, sd.id)
		if err != nil {
			return err
		}
		buf = e.AppendEncode(buf[:0])
		sealed, err := sd.gen.Seal(buf, n.rand())
		if err != nil {
			return err
		}
		b := batches[sd.gen]
		if b == nil {
			b = &batch{}
			batches[sd.gen] = b
		}
		b.envs = append(b.envs, sealed)
		b.sent = append(b.sent, pushedEnv{hash: sha256.Sum256(sealed), id: sd.id})
		b.size += len(sealed)
		if len(b.envs) == pushBatch || b.size >= pushBatchSize {
			if err := flush(sd.gen); err != nil {
				return err
			}
		}
	}
	for g := range batches {
		if err := flush(g); err != nil {
			return err
		}
	}
	if next != nil {
		next.heldAny = heldAny || len(plan) > 0
		n.folds.putPushMark(rr.p, url, epoch, next)
	}
	return nil
}

// entryGen is envelopeGen for an entry of the state's log: its kind as
// stored (a sealed event's is task-sealed, whatever it opened to), and a
// key update's role read from the stored event.
func (n *Node) entryGen(ctx context.Context, en state.Entry, cur *genEnv, gens groupGens) (*genEnv, error) {
	k := en.Kind
	if en.Sealed {
		k = event.KindTaskSealed
	}
	return envelopeGen(k, func() ([]byte, error) {
		e, err := n.st.Get(ctx, en.ID)
		if err != nil {
			return nil, err
		}
		return e.Body(), nil
	}, cur, gens)
}

type appendAck struct {
	cursors  []uint64
	instance string
	refused  int // envelopes the relay did not admit (cursor 0)
}

// wipedSinceRead reports whether an append's answer names another
// instance than the relay's last read did: wiped since. Everything known
// of it is then forgotten, so that the next sync reads it again and
// refills it; this one sends it no more.
func (rr *relayRun) wipedSinceRead(ctx context.Context, instance string) (bool, error) {
	if instance == "" {
		return false, nil
	}
	known, err := rr.sdb.instance(ctx, rr.c.URL())
	if err != nil || known == "" || known == instance {
		return false, err
	}
	rr.res.Reset = "its data was wiped (a new instance)"
	if err := rr.sdb.resetRelay(ctx, rr.c.URL(), instance); err != nil {
		return true, err
	}
	return true, fmt.Errorf("its data was wiped during this sync: it is refilled at the next")
}

// planned is an event a push sends, under a group generation: what of
// the log's entry it needs (its claimed time decides only the warning that
// the relay is behind), small because a first push to an empty relay plans
// the whole log.
type planned struct {
	id   event.ID
	time uint64
	gen  *genEnv
}

// pendingMax is how many events a push may send and still leave a mark
// that lists them: a push of more (the whole log to a new relay) leaves
// none, and the next push plans in full, once, instead of the node
// keeping a set the size of the log between rounds. A variable for the
// tests.
var pendingMax = 10000

// checkPushPlans, set by the package's tests (TestMain), makes every push
// planned from a mark plan in full too and panic if the two differ.
var checkPushPlans bool

// walkPlan plans a push from the whole log, in order: each event the relay
// does not hold (has), under the generation current before it; and the
// log's group key updates in order, and each author's highest seq.
func (n *Node) walkPlan(ctx context.Context, all *state.State, gens groupGens, has func(event.ID) bool) ([]planned, []event.ID, map[identity.PublicKey]uint64, error) {
	var plan []planned
	var updates []event.ID
	vv := map[identity.PublicKey]uint64{}
	cur := gens.first
	// The log from the state the node keeps (extended with what was
	// stored since): reading and decrypting every stored event again cost
	// a round ~1 s per relay at 100k events (issue 15).
	for en := range all.Entries() {
		vv[en.Author] = max(vv[en.Author], en.Seq)
		g, err := n.entryGen(ctx, en, cur, gens)
		if err != nil {
			return nil, nil, nil, err
		}
		if gen, ok := gens.by[en.ID]; ok {
			cur = gen
			updates = append(updates, en.ID)
		}
		if !has(en.ID) {
			plan = append(plan, planned{en.ID, en.Time, g})
		}
	}
	return plan, updates, vv, nil
}

// markPlan is walkPlan for a log that is mark's with the events above
// added (State.EntriesAbove): only those and the ones the relay lacked at
// the mark are looked up (has), each under the generation of the last
// group key update before it in the log.
func (n *Node) markPlan(ctx context.Context, all *state.State, gens groupGens, mark *pushMark, above []state.Entry, has func(event.ID) (bool, error)) ([]planned, []event.ID, map[identity.PublicKey]uint64, error) {
	type at struct {
		pos int
		en  state.Entry
	}
	todo := make([]at, 0, len(above)+len(mark.pending))
	for _, en := range above {
		p, _ := all.Index(en.ID)
		todo = append(todo, at{p, en})
	}
	for id := range mark.pending {
		if en, ok := all.Entry(id); ok && en.Seq <= mark.vv[en.Author] {
			p, _ := all.Index(id)
			todo = append(todo, at{p, en})
		}
	}
	var ups []at
	for id := range gens.by {
		if p, ok := all.Index(id); ok {
			ups = append(ups, at{pos: p, en: state.Entry{ID: id}})
		}
	}
	byPos := func(x, y at) int { return cmp.Compare(x.pos, y.pos) }
	slices.SortFunc(todo, byPos)
	slices.SortFunc(ups, byPos)
	updates := make([]event.ID, len(ups))
	for i, u := range ups {
		updates[i] = u.en.ID
	}
	vv := maps.Clone(mark.vv)
	var plan []planned
	for _, t := range todo {
		vv[t.en.Author] = max(vv[t.en.Author], t.en.Seq)
		cur := gens.first
		if i, _ := slices.BinarySearchFunc(ups, t.pos, func(u at, p int) int { return cmp.Compare(u.pos, p) }); i > 0 {
			cur = gens.by[ups[i-1].en.ID]
		}
		g, err := n.entryGen(ctx, t.en, cur, gens)
		if err != nil {
			return nil, nil, nil, err
		}
		held, err := has(t.en.ID)
		if err != nil {
			return nil, nil, nil, err
		}
		if !held {
			plan = append(plan, planned{t.en.ID, t.en.Time, g})
		}
	}
	return plan, updates, vv, nil
}
