package app

import (
	"context"
	"fmt"
	"sync"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
	"github.com/pursuance/pursuance/store"
)

// A relay topic's key is held by every member, and also by whoever held it
// once: a removed member, the holder of an old invite code. Those can
// append signed events that open and verify, which every member would then
// store for ever. So what this node stores from a relay, and what its
// embedded relay accepts, is limited to events it may need (docs/sync.md,
// "What is stored"):
//
//   - an event of a current member of the pursuance (as this node's state
//     has it, kept up to date along the way: a join with a known invite
//     admits its author, a removal or leave takes its target out);
//   - an event at or below the highest seq this node holds of its author
//     (its history, or the second branch of a fork: evidence);
//   - a join whose invite this node knows and whose proof verifies;
//   - an event this node is missing (a predecessor of one it holds);
//   - anything, while this node holds no log of the pursuance (a
//     newcomer's first sync cannot judge).
//
// What is not admitted is held back for the rest of the sync (up to
// maxDeferredBytes) and judged again at the start of each round and at the
// end, with the state as it then is: a newcomer's events read before its
// join, say, are admitted once the join is in. What is still not admitted
// at the end is refused: not stored, and its place (relay, topic, cursor)
// is remembered: if an event this node later receives names it, it is
// fetched from there (refetchRefused). Nothing else about it is kept, and
// the cursor moves past it, so it is never read again.

// maxDeferredBytes bounds what one sync holds back in memory to judge again.
const maxDeferredBytes = 64 << 20

// deferred is an event read but not admitted yet, and where it was read.
type deferred struct {
	b      []byte
	e      *event.Event
	relay  string
	topic  keys.Topic
	cursor uint64
}

// admission is what one pursuance's events are judged by.
type admission struct {
	mu      sync.Mutex
	p       event.ID
	open    bool // no log here yet: admit everything
	members map[identity.PublicKey]bool
	former  map[identity.PublicKey]bool // removed or left
	vv      map[identity.PublicKey]uint64
	invites map[event.ID]identity.PublicKey // accepted, unrevoked invites: their keys
	missing map[event.ID]bool
}

// newAdmission builds the admission of p from this node's store and state.
func (n *Node) newAdmission(ctx context.Context, p event.ID) *admission {
	a := &admission{p: p, members: map[identity.PublicKey]bool{}, invites: map[event.ID]identity.PublicKey{}, missing: map[event.ID]bool{}}
	for _, id := range n.in.Missing() {
		a.missing[id] = true
	}
	if _, err := n.st.Get(ctx, p); err != nil {
		a.open = true
		return a
	}
	s, err := n.syncState(ctx, p) // members, invites: no task event changes them
	if err != nil {
		a.open = true
		return a
	}
	if a.vv, err = n.st.VersionVector(ctx, p); err != nil {
		a.open = true
		return a
	}
	a.former = map[identity.PublicKey]bool{}
	for _, m := range s.Members() {
		a.members[m.ID] = true
		// Its devices sign for it (docs/devices.md).
		for _, d := range s.Devices(m.ID) {
			if d.Revoked {
				a.former[d.Device] = true
			} else {
				a.members[d.Device] = true
			}
		}
	}
	for _, m := range s.Former() {
		a.former[m] = true
	}
	// Authors never admitted (their events here are garbage, bodies
	// dropped): what this node holds of them is no reason to take more, nor
	// to take a copy of one with its body back.
	for author := range a.vv {
		if !a.members[author] && !a.former[author] {
			delete(a.vv, author)
		}
	}
	for id, key := range s.LiveInviteKeys() {
		a.invites[id] = key
	}
	return a
}

// admit reports whether e may be stored, updating what it knows with it.
func (a *admission) admit(e *event.Event) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open {
		return true
	}
	if e.PursuanceID() != a.p {
		return false
	}
	if a.missing[e.ID()] || e.Seq <= a.vv[e.Author] {
		return true
	}
	switch {
	case e.Kind == event.KindJoin:
		op, err := state.DecodeOp(e.Kind, e.Body())
		j, ok := op.(*state.Join)
		if err != nil || !ok {
			return false
		}
		key, known := a.invites[j.Invite]
		if !known || !key.Verify(state.JoinMessage(a.p, j.Invite, state.Entrant(j, e.Author)), j.Proof) {
			return false
		}
		a.members[e.Author] = true
	case e.Kind == event.KindDevice:
		// A device's own add is its first event: its certificate, by a
		// device of a member, admits it.
		op, err := state.DecodeOp(e.Kind, e.Body())
		d, ok := op.(*state.Device)
		if err != nil || !ok {
			return false
		}
		self := d.Added() == e.Author && d.Action == state.DeviceAdd && d.CertValid() && a.members[d.Identity]
		if !a.members[e.Author] && !self {
			return false
		}
		switch d.Action {
		case state.DeviceAdd, state.DeviceReplace:
			a.members[d.Added()] = true
		case state.DeviceRevoke:
			delete(a.members, d.Device)
		}
	case !a.members[e.Author]:
		return false
	case e.Kind == event.KindRemove:
		if op, err := state.DecodeOp(e.Kind, e.Body()); err == nil {
			if r, ok := op.(*state.Remove); ok {
				delete(a.members, r.Member)
			}
		}
	case e.Kind == event.KindLeave:
		delete(a.members, e.Author)
	}
	return true
}

// admissions are the admissions of a sync in progress, by pursuance, and
// the events held back.
type admissions struct {
	mu       sync.Mutex
	by       map[event.ID]*admission
	deferred []deferred
	bytes    int
}

// admissionOf returns the admission of p, building it if needed.
func (n *Node) admissionOf(ctx context.Context, p event.ID) *admission {
	n.adm.mu.Lock()
	defer n.adm.mu.Unlock()
	a := n.adm.by[p]
	if a == nil {
		a = n.newAdmission(ctx, p)
		if n.adm.by == nil {
			n.adm.by = map[event.ID]*admission{}
		}
		n.adm.by[p] = a
	}
	return a
}

// refuse reports whether the event b, read from relay u at cursor on
// topic, is not to be stored (admission), and if so remembers where it
// was, in case it is needed later.
func (n *Node) refuse(ctx context.Context, sdb *syncDB, u string, topic keys.Topic, cursor uint64, b []byte) bool {
	e, err := event.Decode(b)
	if err != nil {
		return false // ingest refuses it, and says so
	}
	if n.admissionOf(ctx, e.PursuanceID()).admit(e) {
		return false
	}
	n.adm.mu.Lock()
	keep := n.adm.bytes+len(b) <= maxDeferredBytes
	if keep {
		n.adm.deferred = append(n.adm.deferred, deferred{b, e, u, topic, cursor})
		n.adm.bytes += len(b)
	}
	n.adm.mu.Unlock()
	if !keep {
		if err := sdb.noteRefused(ctx, u, topic, cursor, e.ID()); err != nil {
			n.warn("could not remember where a refused event was", "err", err)
		}
	}
	return true
}

// settleDeferred judges again, with the state as it is now, the events of
// p held back, and ingests those now admitted (each relay they were read
// from holding them). With final, the others are refused (their places
// remembered) and let go. It returns how many events it stored: those
// admitted and those waiting for them.
func (n *Node) settleDeferred(ctx context.Context, p event.ID, final bool) (int, error) {
	n.resetAdmission(p)
	n.adm.mu.Lock()
	all := n.adm.deferred
	n.adm.deferred, n.adm.bytes = nil, 0
	n.adm.mu.Unlock()
	var batch [][]byte
	var taken, keep []deferred
	for _, d := range all {
		switch {
		case d.e.PursuanceID() != p:
			keep = append(keep, d)
		case n.admissionOf(ctx, p).admit(d.e):
			batch = append(batch, d.b)
			taken = append(taken, d)
		case final && n.sdb != nil:
			if err := n.sdb.noteRefused(ctx, d.relay, d.topic, d.cursor, d.e.ID()); err != nil {
				return 0, err
			}
		default:
			keep = append(keep, d)
		}
	}
	n.adm.mu.Lock()
	for _, d := range keep {
		n.adm.deferred = append(n.adm.deferred, d)
		n.adm.bytes += len(d.b)
	}
	n.adm.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	out, err := n.in.Ingest(ctx, batch)
	if err != nil {
		return 0, err
	}
	if n.sdb != nil {
		for _, d := range taken {
			if err := n.sdb.markHeld(ctx, d.relay, d.topic, []event.ID{d.e.ID()}); err != nil {
				return 0, err
			}
		}
	}
	return len(out.Accepted), nil
}

// resetAdmission forgets the admission of p, so that the next event read
// rebuilds it from the state as it is now.
func (n *Node) resetAdmission(p event.ID) {
	n.adm.mu.Lock()
	delete(n.adm.by, p)
	n.adm.mu.Unlock()
}

// afterPull ends a sync's reading of p: it judges what was held back
// (settleDeferred), fetches refused events that turned out to be needed
// (refetchRefused), and drops the bodies of what the rules can never
// accept (CollectGarbage). It returns how many events the first two
// stored (also counted in res.Received): events taken in after the sync
// healed its keys, which may leave a key owed (a newcomer whose join
// waited for them), so Sync heals once more (syncRun.healAgain).
// Writes to the store run under with (the home's lock); reads from relays
// do not.
func (n *Node) afterPull(ctx context.Context, sdb *syncDB, p event.ID, chains map[event.ID][]*state.KeyUpdate, res *SyncResult, with func(context.Context, func() error) error) (int, error) {
	var settled int
	err := with(ctx, func() error {
		var err error
		settled, err = n.settleDeferred(ctx, p, true)
		return err
	})
	if err != nil {
		return 0, err
	}
	res.Received += settled
	fetched, err := n.refetchRefused(ctx, sdb, p, chains, res, with)
	if err != nil {
		return settled, err
	}
	taken := settled + fetched
	if _, err := n.st.Get(ctx, p); err != nil || res.Received == 0 {
		return taken, nil // no log yet, or nothing new: no new garbage
	}
	if taken > 0 {
		// Taken in after the state was folded for the heal: folded again
		// here, without the home, for CollectGarbage and the second heal.
		n.State(ctx, p)
	}
	return taken, with(ctx, func() error {
		_, err := n.CollectGarbage(ctx, p)
		return err
	})
}

// CollectGarbage drops the bodies of p's events that the rules can never
// accept (state.State.Garbage: signed by an author that had signed no
// genesis or join up to them), keeping the events themselves, so the
// audit log and any evidence stay. Their verdicts do not change, nor does
// anything else in the state. It returns how many bodies it dropped; a
// store that cannot drop bodies drops none.
func (n *Node) CollectGarbage(ctx context.Context, p event.ID) (int, error) {
	d, ok := n.st.(store.BodyDropper)
	if !ok {
		return 0, nil
	}
	s, err := n.State(ctx, p)
	if err != nil {
		return 0, err
	}
	ids := s.Garbage()
	if len(ids) == 0 {
		return 0, nil
	}
	return d.DropBodies(ctx, ids)
}

// refetchRefused reads again, from where they were refused, the events this
// node is missing that an earlier sync refused, and ingests them (each
// relay it read one from holding it). It returns how many events it
// stored: those fetched and those waiting for them (also counted in
// res.Received).
func (n *Node) refetchRefused(ctx context.Context, sdb *syncDB, p event.ID, chains map[event.ID][]*state.KeyUpdate, res *SyncResult, with func(context.Context, func() error) error) (int, error) {
	missing := n.in.Missing()
	if len(missing) == 0 {
		return 0, nil
	}
	places, err := sdb.refusedPlaces(ctx, missing)
	if err != nil || len(places) == 0 {
		return 0, err
	}
	ks, err := n.groupKeys(ctx, &p, chains)
	if err != nil {
		return 0, err
	}
	var batch [][]byte
	type fetched struct {
		pl refusedPlace
		id event.ID
	}
	var from []fetched
	for _, pl := range places {
		k, ok := ks[pl.topic]
		if !ok {
			continue
		}
		env, err := keys.NewEnvelopes(&k)
		if err != nil {
			return 0, err
		}
		page, err := n.relayClient(p, pl.relay).Read(ctx, pl.topic, pl.cursor-1, 1)
		if err != nil || len(page.Entries) == 0 || page.Entries[0].Cursor != pl.cursor {
			continue
		}
		b, err := env.Open(page.Entries[0].Envelope)
		if err != nil {
			continue
		}
		e, err := event.Decode(b)
		if err != nil {
			continue
		}
		batch = append(batch, b)
		from = append(from, fetched{pl, e.ID()})
	}
	if len(batch) == 0 {
		return 0, nil
	}
	var got int
	err = with(ctx, func() error {
		out, err := n.in.Ingest(ctx, batch)
		if err != nil {
			return fmt.Errorf("refetching refused events: %w", err)
		}
		got = len(out.Accepted)
		return nil
	})
	if err != nil {
		return 0, err
	}
	res.Received += got
	for _, f := range from {
		if err := sdb.markHeld(ctx, f.pl.relay, f.pl.topic, []event.ID{f.id}); err != nil {
			return got, err
		}
	}
	return got, nil
}

// Admitter is what a member's node asks about each envelope appended to
// its embedded relay (relay.Config.Admit). A pusher does not send again
// what a relay refused, so the embedded relay refuses only what it can
// tell is junk: on a topic of a group generation the node holds, an
// envelope that does not open under its key, an event whose signature
// does not verify, and an event of a removed member (or one who left)
// beyond what the node holds of it. Events of authors it does not know
// yet are stored: a newcomer's may come before the node has read its
// invite (the node's own sync, which can wait, admits only what it may
// need: admission). An envelope on a topic the node does not know (a
// generation it has not learned yet) is stored too. It is safe for
// concurrent use; Update refreshes it from the node's state.
type Admitter struct {
	mu     sync.RWMutex
	topics map[keys.Topic]admitTopic
}

type admitTopic struct {
	env *keys.Envelopes
	adm *admission
}

// NewAdmitter returns an Admitter that knows no topic yet: it stores
// everything until the first Update.
func NewAdmitter() *Admitter { return &Admitter{} }

// Update makes x judge by n's state now: every group generation n holds,
// in every pursuance of the home.
func (x *Admitter) Update(ctx context.Context, n *Node) error {
	ps, err := n.st.Pursuances(ctx)
	if err != nil {
		return err
	}
	topics := map[keys.Topic]admitTopic{}
	for _, p := range ps {
		adm := n.newAdmission(ctx, p)
		ks, err := n.groupKeys(ctx, &p, nil)
		if err != nil {
			return err
		}
		for t, k := range ks {
			env, err := keys.NewEnvelopes(&k)
			if err != nil {
				return err
			}
			topics[t] = admitTopic{env, adm}
		}
	}
	x.mu.Lock()
	x.topics = topics
	x.mu.Unlock()
	return nil
}

// Admit reports whether the embedded relay may store envelope on topic.
func (x *Admitter) Admit(topic keys.Topic, envelope []byte) bool {
	x.mu.RLock()
	at, known := x.topics[topic]
	x.mu.RUnlock()
	if !known {
		return true
	}
	b, err := at.env.Open(envelope)
	if err != nil {
		return false
	}
	e, err := event.Decode(b)
	if err != nil || e.VerifySignature() != nil {
		return false
	}
	return at.adm.admitJunkFree(e)
}

// admitJunkFree is admit for the embedded relay: it refuses only a removed
// member's events beyond what the node holds of it (and an event of another
// pursuance on this one's topic).
func (a *admission) admitJunkFree(e *event.Event) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.open || a.missing[e.ID()] || e.Seq <= a.vv[e.Author]:
		return true
	case e.PursuanceID() != a.p:
		return false
	}
	return !a.former[e.Author] || a.members[e.Author]
}
