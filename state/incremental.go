package state

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"sync"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// ErrRefold is what Extend returns when the events given may change what
// the member's secrets open: a member's KEM key (a join or a member-key
// event), a link's key (an offer, an acceptance, a proposal carrying
// one), an invite's seals or a device's, or a key update that opens more
// than its own generation (takeKeys). The caller folds the whole log
// again (docs/fold.md).
var ErrRefold = errors.New("state: these events need the whole log folded again")

// extendable reports whether Extend takes events of kind k into a state
// folded with secrets or not (sec): without, every kind; with, those that
// change nothing the secrets open (Builder.Finish opens keys and sealed
// events once, over the whole log). Key updates are not, but Extend takes
// those that open only their own generations (takeKeys).
func extendable(k event.Kind, sec bool) bool {
	if !sec {
		return true
	}
	switch k {
	case event.KindGenesis, event.KindJoin, event.KindMemberKey, event.KindKeyUpdate, event.KindInvite,
		event.KindLink, event.KindLinkAccept, event.KindProposal, event.KindDevice:
		return false
	}
	return true
}

// logCompare orders an event and a node's in log order: ascending
// (lamport, ID).
func logCompare(x *event.Event, y *head) int {
	return cmp.Or(cmp.Compare(x.Lamport, y.Lamport), x.ID().Compare(y.ID()))
}

// Extend returns the state of s's log with evs added, as Build would fold
// it from scratch (same Hash, same verdicts), without decoding, opening
// or judging again the events that sort before the first one added: their
// verdicts stand, and the pass replays only their effects (apply) up to
// the first event whose verdict may change, then judges every event from
// there on (docs/fold.md). s is left as it was: readers of it go on
// meanwhile. evs may come in any order and may repeat events of s (they
// are skipped); each must link only to events of s or of evs. In a state
// folded with secrets, events of kinds that may change what they open
// make it return ErrRefold (a key update only when it opens more than the
// generation it publishes: takeKeys).
func (s *State) Extend(evs []*event.Event) (*State, error) {
	old := s.b()
	add := make([]*event.Event, 0, len(evs))
	seen := make(map[event.ID]bool, len(evs))
	rekeyed := false // a key update among them, in a state folded with secrets (takeKeys)
	for _, e := range evs {
		if e.PursuanceID() != old.pursuance {
			return nil, errors.New("state: event of another pursuance")
		}
		if _, dup := old.posOf(e.ID()); dup || seen[e.ID()] {
			continue
		}
		seen[e.ID()] = true
		if !extendable(e.Kind, old.secrets != nil) {
			if e.Kind != event.KindKeyUpdate {
				return nil, ErrRefold
			}
			rekeyed = true
		}
		add = append(add, e)
	}
	if len(add) == 0 {
		return s, nil
	}
	slices.SortFunc(add, func(x, y *event.Event) int { return cmp.Or(cmp.Compare(x.Lamport, y.Lamport), x.ID().Compare(y.ID())) })
	if s, ok := s.insertTasks(add); ok {
		return s, nil
	}
	nb := old.derive()
	first := int32(-1) // position of the first event added
	var added []*node
	var watch []int32 // joins and completions before first: their verdicts look at later events
	remapped := false // author indices differ from old's from here on: version vectors are computed again
	oi, ai := 0, 0
	for oi < len(old.nodes) || ai < len(add) {
		if ai < len(add) && (oi == len(old.nodes) || logCompare(add[ai], &old.nodes[oi].e) < 0) {
			if first < 0 {
				first = int32(len(nb.nodes))
			}
			authors := len(nb.authors)
			n, err := nb.add(add[ai])
			if err != nil {
				return nil, err
			}
			ai++
			if len(nb.authors) != authors && oi < len(old.nodes) {
				remapped = true
			}
			nb.openNode(n)
			added = append(added, n)
			continue
		}
		o := old.nodes[oi]
		oi++
		var from []identity.PublicKey
		if remapped {
			from = old.authors
		}
		n := nb.place(o.e, o.links, o.op, o.opErr, o.sealed, o, from)
		n.body = o.body
		n.accepted, n.reason = o.accepted, o.reason
		n.copyRare(o)
		if first < 0 {
			switch n.op.(type) {
			case *Join, *Succeed:
				watch = append(watch, int32(len(nb.nodes)-1))
			}
		}
	}
	if rekeyed && !nb.takeKeys(old, added) {
		return nil, ErrRefold
	}
	if !maps.Equal(nb.forks, old.forks) {
		// A fork voiding what its author signed earlier: the passes
		// start over.
		nb.run()
		return &State{folded: nb}, nil
	}
	// A join's expiry witnesses and a completed claim's reappearing holder
	// are events that do not have it in their past, wherever they sort:
	// an added event that does not may change its verdict.
	from := first
	for _, p := range watch {
		x := nb.nodes[p]
		for _, w := range added {
			if !nb.inPast(x, w) {
				from = min(from, p)
				break
			}
		}
	}
	// Restrictions (removals, demotions, revocations, link ends) are what
	// reaches back before itself (run's pins). With none from there on,
	// the passes of a full fold pin and unpin exactly what they pinned
	// and unpinned for s, and its last pass is s's up to from: s's pins
	// stand, and one pass settles the rest (docs/fold.md).
	suffixRestricts := false
	for _, n := range nb.nodes[from:] {
		suffixRestricts = suffixRestricts || mayRestrict(n.op)
	}
	if suffixRestricts && (len(old.pinned) > 0 || len(old.excluded) > 0) {
		nb.run()
		return &State{folded: nb}, nil
	}
	nb.pinned, nb.excluded = maps.Clone(old.pinned), maps.Clone(old.excluded)
	nb.startPass()
	for p, n := range nb.nodes {
		if p := int32(p); p >= from {
			nb.step(p, n)
		} else if n.accepted {
			nb.apply(p, n)
		}
	}
	if suffixRestricts {
		// None was pinned in s: as run does after its first pass, a
		// restriction with an earlier concurrent event of its target
		// reaches back, and the passes start over.
		for p, n := range nb.nodes {
			if n.accepted && n.restrict != nil && nb.hasEarlierConcurrent(int32(p)) {
				nb.run()
				break
			}
		}
	}
	return &State{folded: nb}, nil
}

// takeKeys works out again, for nb (old's nodes with the events added
// placed), what the secrets open, with key updates among the added events:
// nb keeps it, and the added events are opened with it, when the key
// updates only added what they publish themselves — every generation old
// held, with the same key, and no other but theirs — and nothing already
// in old's log is sealed under those, and the link keys come out the
// same. Then what the secrets opened in old stands: only the added events
// are opened. Otherwise (a key update that also unlocks older generations,
// through its chain, or a generation an old event was sealed under) it
// reports false, and the whole log is folded again (ErrRefold).
func (nb *builder) takeKeys(old *builder, added []*node) bool {
	isAdded := make(map[*node]bool, len(added))
	for _, n := range added {
		isAdded[n] = true
	}
	held := nb.openKeys(nb.secrets)
	fresh := map[event.ID]bool{}
	for id, h := range held {
		if o, ok := old.held[id]; ok {
			if o.Key != h.Key {
				return false
			}
			continue
		}
		if p, ok := nb.posOf(id); !ok || !isAdded[nb.nodes[p]] {
			return false
		}
		fresh[id] = true
	}
	for id := range old.held {
		if _, ok := held[id]; !ok {
			return false
		}
	}
	if len(fresh) > 0 {
		for _, n := range nb.nodes {
			if ts, ok := n.op.(*TaskSealed); ok && !isAdded[n] {
				for _, w := range ts.Wraps {
					if fresh[w.Update] {
						return false
					}
				}
			}
		}
	}
	nb.held = held
	links := nb.openLinkKeys(nb.secrets)
	if !maps.Equal(links, old.linkKeys) {
		return false
	}
	nb.linkKeys = links
	for _, n := range added {
		nb.openNode(n)
	}
	return true
}

// mayRestrict reports whether an event with op may restrict (restrictionOf)
// when accepted: a removal, demotion, invite revocation, link end, device
// revocation or replacement, or an approval carrying one of those.
func mayRestrict(op Op) bool {
	switch o := op.(type) {
	case *Remove, *RoleRevoke, *InviteRevoke, *LinkEnd, *Approval:
		return true
	case *Device:
		return o.Action == DeviceRevoke || o.Action == DeviceReplace
	}
	return false
}

// derive returns an empty builder for the same pursuance, evidence and
// secrets as b, with b's caches of what depends only on events' bodies
// and on the secrets (copied: b's state may still be read, and reading
// fills them).
func (b *builder) derive() *builder {
	nb := newBuilder(b.pursuance, maps.Clone(b.evForks))
	nb.secrets, nb.held, nb.linkKeys, nb.myKEMs = b.secrets, b.held, b.linkKeys, b.myKEMs
	b.cmu.Lock()
	defer b.cmu.Unlock()
	nb.unwrappers = maps.Clone(b.unwrappers)
	nb.charters = maps.Clone(b.charters)
	nb.publics = maps.Clone(b.publics)
	nb.inners = maps.Clone(b.inners)
	nb.embeds = maps.Clone(b.embeds)
	nb.contents = maps.Clone(b.contents)
	nb.wraps = maps.Clone(b.wraps)
	return nb
}

// insertTasks is Extend's path for task events, bounded by the events
// from the first one added to the end of the log (the suffix), but for
// copying tables of the log's size (positions, tasks): task events by
// authors the state knows, forking nobody, where every event of the
// suffix already in the state is a task event too, and no join or
// completed claim before them lacks one of them in its past. Task events
// change no authority state, restriction or pin, so the pass state before
// the suffix is s's but for the tasks the suffix acts on: those are
// folded again from their own events before it, and the suffix is judged
// again on them (docs/fold.md, "Late task events"). The copy shares with
// s what it does not change. ok is false when the events do not qualify.
func (s *State) insertTasks(add []*event.Event) (_ *State, ok bool) {
	old := s.b()
	first, _ := slices.BinarySearchFunc(old.nodes, add[0], func(n *node, e *event.Event) int { return -logCompare(e, &n.e) })
	if first == 0 {
		return nil, false
	}
	suffix := old.nodes[first:]
	for _, n := range suffix {
		if !isTaskKind(n.e.Kind) {
			return nil, false
		}
	}
	last := map[uint32]uint64{}
	for _, e := range add {
		if !isTaskKind(e.Kind) {
			return nil, false
		}
		idx, known := old.authorIdx[e.Author]
		if !known || e.Seq <= max(old.maxSeq[idx], last[idx]) {
			return nil, false // a new chain, or a fork
		}
		last[idx] = e.Seq
	}
	for _, n := range suffix {
		if _, forked := old.forks[*n.e.Author]; forked {
			return nil, false
		}
	}
	nb := new(builder)
	*nb = *old
	nb.vvScratch, nb.canon, nb.visRares = nil, nil, nil // old's, which another extension of it may be writing
	nb.forks = maps.Clone(old.forks)
	nb.nodes = slices.Clip(old.nodes[:first])
	nb.pos = old.pos.clone()
	nb.byAuthor, nb.timeUpTo, nb.maxSeq = slices.Clone(old.byAuthor), slices.Clone(old.timeUpTo), slices.Clone(old.maxSeq)
	for i := range nb.byAuthor {
		nb.byAuthor[i], nb.timeUpTo[i] = slices.Clip(nb.byAuthor[i]), slices.Clip(nb.timeUpTo[i])
	}
	// The suffix's events leave the tables, to be placed again after the
	// events added before them.
	for _, n := range suffix {
		nb.unsetPos(n.e.ID(), old)
	}
	for i, ps := range nb.byAuthor {
		k, _ := slices.BinarySearch(ps, int32(first))
		if k == len(ps) {
			continue
		}
		nb.byAuthor[i], nb.timeUpTo[i] = ps[:k:k], nb.timeUpTo[i][:k:k]
		nb.maxSeq[i] = 0
		if k > 0 {
			nb.maxSeq[i] = old.nodes[ps[k-1]].e.Seq
		}
	}
	nb.tasks = old.tasks.fork()
	nb.taskRecs = old.taskRecs.fork()
	nb.cmu = new(sync.Mutex)
	old.cmu.Lock()
	nb.unwrappers = maps.Clone(old.unwrappers)
	nb.charters, nb.publics, nb.inners = maps.Clone(old.charters), maps.Clone(old.publics), maps.Clone(old.inners)
	nb.embeds, nb.contents = maps.Clone(old.embeds), maps.Clone(old.contents)
	nb.wraps = maps.Clone(old.wraps)
	old.cmu.Unlock()

	// The tasks the suffix acts on, as they were before it: folded again
	// from their accepted events before it (apply's order, apply's code).
	var made []event.ID // tasks the suffix made: marked done with an empty list, then deleted
	for _, n := range suffix {
		id := recordedTask(n.op, n.e.ID())
		recs, ok := nb.taskRecs.get(id)
		if id.IsZero() || !ok || len(recs) > 0 && recs[len(recs)-1] < int32(first) {
			continue // none, or folded again already
		}
		k, _ := slices.BinarySearch(recs, int32(first))
		nb.tasks.del(id)
		nb.taskRecs.del(id)
		for _, p := range recs[:k] {
			x := nb.nodes[p]
			op := x.op
			if isAuthority(op) {
				op = x.exec
			}
			nb.applyTask(p, x, op)
		}
		if k == 0 {
			// Made by the suffix: not there before it. (A record that
			// found no task leaves an empty list, which marks it done.)
			nb.taskRecs.set(id, []int32{})
			made = append(made, id)
		}
	}
	for _, id := range made {
		nb.taskRecs.del(id)
	}

	// The suffix and the events added, merged in log order, judged again.
	copied := map[event.ID]bool{}
	var added []*node
	oi := 0
	for ai := 0; oi < len(suffix) || ai < len(add); {
		var n *node
		if ai < len(add) && (oi == len(suffix) || logCompare(add[ai], &suffix[oi].e) < 0) {
			var err error
			if n, err = nb.add(add[ai]); err != nil {
				return nil, false
			}
			ai++
			nb.openNode(n)
			added = append(added, n)
		} else {
			o := suffix[oi]
			oi++
			n = nb.place(o.e, o.links, o.op, o.opErr, o.sealed, o, nil)
			n.body = o.body
		}
		if id := recordedTask(n.op, n.e.ID()); !copied[id] {
			if t := nb.tasks.at(id); t != nil && old.tasks.at(id) == t {
				nb.tasks.set(id, t.clone())
			}
			if rs, ok := nb.taskRecs.get(id); ok {
				nb.taskRecs.set(id, slices.Clip(rs))
			}
			copied[id] = true
		}
	}
	if !maps.Equal(nb.forks, old.forks) {
		return nil, false
	}
	for _, x := range nb.nodes[:first] {
		switch x.op.(type) {
		case *Join, *Succeed:
			for _, w := range added {
				if !nb.inPast(x, w) {
					return nil, false
				}
			}
		}
	}
	for p := first; p < len(nb.nodes); p++ {
		nb.step(int32(p), nb.nodes[p])
	}
	return &State{folded: nb}, true
}

// recordedTask is the task an event of a task's kind whose op is op acts
// on, as apply records it (self: the event's ID, a creation's task), or
// zero.
func recordedTask(op Op, self event.ID) event.ID {
	switch o := op.(type) {
	case *TaskCreate:
		return self
	case *TaskSealed:
		if o.Task.IsZero() {
			return self
		}
		return o.Task
	}
	return taskOf(op)
}

// isTaskKind reports whether k is a kind of a task's events: an op on a
// task (the kind table's task), or one sealed.
func isTaskKind(k event.Kind) bool { return kindOf(k).task || k == event.KindTaskSealed }
