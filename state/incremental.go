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
// the member's secrets open: a key update, a member's KEM key (a join or
// a member-key event), a link's key (an offer, an acceptance, a proposal
// carrying one), an invite's seals or a device's. The caller folds the
// whole log again (docs/fold.md).
var ErrRefold = errors.New("state: these events need the whole log folded again")

// extendable reports whether Extend takes events of kind k into a state
// folded with secrets or not (sec): without, every kind; with, those that
// change nothing the secrets open (Builder.Finish opens keys and sealed
// events once, over the whole log).
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
// make it return ErrRefold.
func (s *State) Extend(evs []*event.Event) (*State, error) {
	old := s.b()
	add := make([]*event.Event, 0, len(evs))
	seen := make(map[event.ID]bool, len(evs))
	for _, e := range evs {
		if e.PursuanceID() != old.pursuance {
			return nil, errors.New("state: event of another pursuance")
		}
		if _, dup := old.posOf(e.ID()); dup || seen[e.ID()] {
			continue
		}
		seen[e.ID()] = true
		if !extendable(e.Kind, old.secrets != nil) {
			return nil, ErrRefold
		}
		add = append(add, e)
	}
	if len(add) == 0 {
		return s, nil
	}
	slices.SortFunc(add, func(x, y *event.Event) int { return cmp.Or(cmp.Compare(x.Lamport, y.Lamport), x.ID().Compare(y.ID())) })
	if s, ok := s.appendTasks(add); ok {
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

// appendTasks is Extend's fast path, O(added events) but for copying
// tables of the log's size (positions, tasks): task events, all sorting
// after the state's last event, by authors it knows, forking nobody,
// without a join or a completed claim before them that they do not have
// in their past. Each is judged and applied on a copy of the builder
// that shares what it does not change with s (task events change no
// authority state, no restriction, no pin); what it changes is copied
// first (the tables, the tasks the events act on). ok is false when the
// events do not qualify.
func (s *State) appendTasks(add []*event.Event) (_ *State, ok bool) {
	old := s.b()
	if logCompare(add[0], &old.nodes[len(old.nodes)-1].e) < 0 {
		return nil, false
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
	nb := new(builder)
	*nb = *old
	nb.vvScratch = nil // old's, which another extension of it may be writing
	nb.nodes = slices.Clip(old.nodes)
	nb.pos = old.pos.clone()
	nb.byAuthor, nb.timeUpTo, nb.maxSeq = slices.Clone(old.byAuthor), slices.Clone(old.timeUpTo), slices.Clone(old.maxSeq)
	for i := range nb.byAuthor {
		nb.byAuthor[i], nb.timeUpTo[i] = slices.Clip(nb.byAuthor[i]), slices.Clip(nb.timeUpTo[i])
	}
	nb.tasks = maps.Clone(old.tasks)
	nb.taskRecs = maps.Clone(old.taskRecs)
	for id, rs := range nb.taskRecs {
		nb.taskRecs[id] = slices.Clip(rs)
	}
	nb.cmu = new(sync.Mutex)
	old.cmu.Lock()
	nb.unwrappers = maps.Clone(old.unwrappers)
	nb.charters, nb.publics, nb.inners = maps.Clone(old.charters), maps.Clone(old.publics), maps.Clone(old.inners)
	nb.embeds, nb.contents = maps.Clone(old.embeds), maps.Clone(old.contents)
	nb.wraps = maps.Clone(old.wraps)
	old.cmu.Unlock()
	var added []*node
	for _, e := range add {
		n, err := nb.add(e)
		if err != nil {
			return nil, false
		}
		nb.openNode(n)
		added = append(added, n)
	}
	for _, x := range nb.nodes[:len(old.nodes)] {
		switch x.op.(type) {
		case *Join, *Succeed:
			for _, w := range added {
				if !nb.inPast(x, w) {
					return nil, false
				}
			}
		}
	}
	copied := map[event.ID]bool{}
	for i, n := range added {
		id := taskOf(n.op)
		if ts, ok := n.op.(*TaskSealed); ok {
			id = ts.Task
		}
		if t := nb.tasks[id]; t != nil && !copied[id] {
			nb.tasks[id], copied[id] = t.clone(), true
		}
		nb.step(int32(len(old.nodes)+i), n)
	}
	return &State{folded: nb}, true
}

// isTaskKind reports whether k is a kind of a task's events.
func isTaskKind(k event.Kind) bool {
	switch k {
	case event.KindTaskCreate, event.KindTaskEdit, event.KindTaskMove, event.KindTaskAssign,
		event.KindTaskUnassign, event.KindTaskStatus, event.KindTaskComment, event.KindTaskArchive,
		event.KindTaskSealed:
		return true
	}
	return false
}
