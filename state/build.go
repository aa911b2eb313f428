package state

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// head is what the rules read of an event's header: a node keeps it in
// place of the event (docs/fold.md, "What a state keeps of each event").
type head struct {
	id      event.ID
	Author  *identity.PublicKey // the builder's copy, shared by the author's events (builder.keyOf)
	Seq     uint64
	Lamport uint64
	Time    uint64
	Kind    event.Kind
}

// headOf returns what the rules read of e's header.
func headOf(e *event.Event) head {
	a := e.Author
	return head{id: e.ID(), Author: &a, Seq: e.Seq, Lamport: e.Lamport, Time: e.Time, Kind: e.Kind}
}

// ID returns the event's ID.
func (h *head) ID() event.ID { return h.id }

// linksOf returns e's parents and backlink: the events it links to.
func linksOf(e *event.Event) []event.ID {
	if e.Backlink.IsZero() {
		return e.Parents
	}
	return append(slices.Clip(e.Parents), e.Backlink)
}

// node is one event of the log as the builder sees it. What only some
// events have is in its nodeRare, shared by those without (noRare), so
// that a task event costs the fields every event has (docs/fold.md,
// "What a state keeps of each event").
type node struct {
	e        head
	op       Op          // nil when opErr is set
	vv       []uint64    // version vector: for each author index, the highest seq in the event's causal past, itself included; packed (two a word) unless vvWide
	reason   string      // decided by the latest pass: why it was rejected
	sealed   *TaskSealed // set when op was opened from a task-sealed body: its wraps' generations alone (wrapsOf), shared
	author   uint32
	accepted bool // decided by the latest pass
	outsider bool // its author had signed no genesis or join up to it: it can never be accepted
	body     bool // the event came with its body (e is kept without it)
	vvWide   bool // vv holds one uint64 an author (a seq past 32 bits), not two uint32s a word (packVV)

	// member is the member the event speaks for: its author's, when the
	// author is a device certified in the log (docs/devices.md), else
	// the author. Settled when the event is added, from the log before it.
	// It is the builder's copy, shared (builder.keyOf).
	member *identity.PublicKey

	// Never nil: noRare when the event has none of it. Read through
	// (n.vis); written only through w (n.w().vis = ...).
	*nodeRare
}

// nodeRare is what only some events have.
type nodeRare struct {
	links []event.ID // for a join: its parents and backlink (expiryWitness)
	opErr error      // the body is missing or malformed

	// Decided by the latest pass.
	exec     Op                   // for an approval: the proposal it carried
	execNote string               // for an approval: why the proposal it completed failed
	vis      []string             // for a task-create: its visibility, settled at its parents
	invite   *inviteState         // for a join: the invite as its parents saw it (a copy)
	inert    string               // for an accepted event that has no effect: why (a move that would close a cycle)
	restrict *restriction         // for a restriction: what it restricts
	kems     []event.ID           // for a key-update: each box's member's KEMSince at its parents
	sendRole string               // for a hand-off: the link's role its author held at its parents
	revokes  []identity.PublicKey // for a device revoke or replace: the device keys it cuts off, at its parents

	// shared is set for a builder's interned nodeRare of a visibility
	// alone (settleRare): nodes share it, w copies it before a write.
	shared bool
}

// noRare is the nodeRare of nodes that have none: shared, never written.
var noRare = &nodeRare{}

// w returns n's nodeRare to write to, its own.
func (n *node) w() *nodeRare {
	switch {
	case n.nodeRare == noRare:
		n.nodeRare = new(nodeRare)
	case n.nodeRare.shared:
		r := *n.nodeRare
		r.shared = false
		n.nodeRare = &r
	}
	return n.nodeRare
}

// resetPass forgets what the latest pass decided of n.
func (n *node) resetPass() {
	if n.nodeRare != noRare {
		n.nodeRare = &nodeRare{links: n.links, opErr: n.opErr}
		n.shrink()
	}
}

// shrink shares noRare again if n's nodeRare holds nothing.
func (n *node) shrink() {
	if n.nodeRare != noRare && n.nodeRare.empty() {
		n.nodeRare = noRare
	}
}

// settleRare is shrink for a node a pass has decided, which also replaces a
// nodeRare that holds a visibility and nothing else (most task creations:
// a quarter of a million at 1M events, 208 bytes each) by the builder's
// shared one for that visibility (visRares).
func (b *builder) settleRare(n *node) {
	n.shrink()
	r := n.nodeRare
	if r == noRare || r.shared || !r.visOnly() {
		return
	}
	k := strings.Join(r.vis, "\x00")
	s, ok := b.visRares[k]
	if ok && !slices.Equal(s.vis, r.vis) {
		return // roles whose names hold a NUL: not shared
	}
	if !ok {
		if b.visRares == nil {
			b.visRares = map[string]*nodeRare{}
		}
		s = &nodeRare{vis: r.vis, shared: true}
		b.visRares[k] = s
	}
	n.nodeRare = s
}

// visOnly reports whether r holds a visibility and nothing else.
func (r *nodeRare) visOnly() bool {
	rest := *r
	rest.vis = nil
	return r.vis != nil && rest.empty()
}

// empty reports whether r holds nothing.
func (r *nodeRare) empty() bool {
	return r.links == nil && r.opErr == nil && r.exec == nil && r.execNote == "" && r.vis == nil &&
		r.invite == nil && r.inert == "" && r.restrict == nil && r.kems == nil && r.sendRole == "" && r.revokes == nil
}

// copyRare gives n a copy of o's nodeRare (an extension places o again:
// its verdicts stand until a pass decides n anew), or o's itself when
// that is shared.
func (n *node) copyRare(o *node) {
	if o.nodeRare == noRare || o.nodeRare.shared {
		n.nodeRare = o.nodeRare
		return
	}
	r := *o.nodeRare
	n.nodeRare = &r
}

// restriction is what an accepted removal, demotion, invite revocation or
// link end does: it takes every role (role == "") or one role from target,
// or (with invite set) closes an invite, or (with link set) a link.
type restriction struct {
	target identity.PublicKey
	role   string
	invite event.ID
	link   event.ID
	device bool // a device revocation: target is the device revoked (and the node's revokes all it cuts off)
}

// member reports whether the restriction is on a member (a removal or a
// demotion), not on an invite or a link.
func (r restriction) member() bool { return r.invite.IsZero() && r.link.IsZero() && !r.device }

// builder folds a pursuance's events into its state. See docs/rules.md for
// the semantics it implements.
type builder struct {
	pursuance event.ID
	forks     map[identity.PublicKey]uint64
	evForks   map[identity.PublicKey]uint64 // forks the evidence named, before any event was added

	nodes      []*node
	pos        posIndex // position of each event in nodes
	authors    []identity.PublicKey
	authorIdx  map[identity.PublicKey]uint32
	keys       map[identity.PublicKey]*identity.PublicKey // the builder's copy of each author's and member's key (keyOf)
	authorKeys []*identity.PublicKey                      // per author index: keyOf its key
	memberKeys []*identity.PublicKey                      // per author index: keyOf the member it speaks for (node.member)
	vvScratch  []uint64                                   // versionVector's
	hint       map[event.ID]HeldKey                       // Builder.HintHeld's: sealed events are opened as they are added (openEarly)
	reuse      *ckState                                   // Builder.Reuse's: while set, task ops' strings are the view's equal ones
	visRares   map[string]*nodeRare                       // settleRare's shared nodeRares, by visibility: this builder's own
	canon      *bytes.Buffer                              // add's, to check that bodies are in canonical form (decodeOp)
	byAuthor   [][]int32                                  // positions of each author's events, in log order
	maxSeq     []uint64                                   // per author: highest seq added so far
	timeUpTo   [][]uint64                                 // per author, aligned with byAuthor: the highest claimed time of its events so far
	entered    []bool                                     // per author: it has signed a genesis or a join so far
	linkUsers  map[event.ID][]int32                       // events sent, received or reported over each link, in log order

	// Devices, from the bodies of device events as they are added
	// (accepted or not): which member a device key claims, by the
	// certificate of the first add of it in log order, and each member's
	// chains (its own and its devices').
	devMember    map[identity.PublicKey]identity.PublicKey
	memberChains map[identity.PublicKey][]uint32
	boxedTo      map[identity.PublicKey][]int32 // events giving a member KEM key to each device, in log order

	// Pass state.
	auth          *authState
	tasks         layered[event.ID, *Task]
	taskRecs      layered[event.ID, []int32] // accepted events on each task, in log order
	authRecs      []int32                    // accepted authority events, in log order
	snaps         []authSnap                 // the authority state every snapEvery authority events
	authMax       []uint64                   // per author: highest seq of its accepted authority events
	restrictBy    map[identity.PublicKey][]int32
	revokedBy     map[event.ID][]int32  // accepted invite revocations, by invite
	joinsBy       map[event.ID][]int32  // accepted joins, by invite
	endedBy       map[event.ID][]int32  // accepted link ends, by link
	pinned        map[int32]restriction // restrictions applied to concurrent events before them too
	pinnedBy      map[identity.PublicKey][]int32
	pinnedRev     map[event.ID][]int32
	pinnedEnd     map[event.ID][]int32
	excluded      map[int32]bool
	devRestrictBy map[identity.PublicKey][]int32 // accepted device revocations, by each device they cut off
	devPinnedBy   map[identity.PublicKey][]int32
	nodeAddrs     map[identity.PublicKey]*nodeAddr // node addresses announced, by member (nodeaddr.go)

	// What this member can read with (nil: nothing sealed is opened).
	secrets    *Secrets
	held       map[event.ID]HeldKey
	unwrappers map[event.ID]*keys.Unwrapper // wrap keys of held generations, derived once
	myKEMs     []kemStep                    // the KEM keys this member published, by seq
	linkKeys   map[event.ID]keys.LinkSecret // secrets of this pursuance's links this member holds

	// Caches of what depends only on an event's body, kept across passes.
	// cmu guards them, and unwrappers: reading a state fills them (State.Check
	// judges an event), and requests read a state a node keeps at once.
	cmu      *sync.Mutex
	charters map[string]charterResult  // by charter wire bytes
	publics  map[event.ID]publicResult // genesis and join events: the identity they publish
	inners   map[event.ID]innerResult  // proposals: the op proposed
	embeds   map[event.ID]embedded     // receives: the hand-off embedded, checked
	contents map[event.ID]struct {     // hand-offs: their content, opened
		c  HandoffContent
		ok bool
	}
	wraps map[string]*TaskSealed // the wraps of opened sealed task ops, by their generations (wrapsOf)
}

func newBuilder(pursuance event.ID, forks map[identity.PublicKey]uint64) *builder {
	return &builder{
		pursuance:    pursuance,
		cmu:          new(sync.Mutex),
		forks:        forks,
		evForks:      maps.Clone(forks),
		pos:          newPosIndex(),
		authorIdx:    make(map[identity.PublicKey]uint32),
		keys:         make(map[identity.PublicKey]*identity.PublicKey),
		pinned:       make(map[int32]restriction),
		charters:     make(map[string]charterResult),
		publics:      make(map[event.ID]publicResult),
		inners:       make(map[event.ID]innerResult),
		excluded:     make(map[int32]bool),
		linkUsers:    make(map[event.ID][]int32),
		devMember:    make(map[identity.PublicKey]identity.PublicKey),
		memberChains: make(map[identity.PublicKey][]uint32),
		boxedTo:      make(map[identity.PublicKey][]int32),
	}
}

// authorIndex returns the index of author k, making one if needed.
func (b *builder) authorIndex(k identity.PublicKey) uint32 {
	idx, ok := b.authorIdx[k]
	if !ok {
		idx = uint32(len(b.authors))
		b.authors = append(b.authors, k)
		b.authorIdx[k] = idx
		b.byAuthor = append(b.byAuthor, nil)
		b.timeUpTo = append(b.timeUpTo, nil)
		b.entered = append(b.entered, false)
		b.maxSeq = append(b.maxSeq, 0)
		m := k
		if dm, ok := b.devMember[k]; ok {
			m = dm
		}
		b.memberChains[m] = append(b.memberChains[m], idx)
		b.authorKeys = append(b.authorKeys, b.keyOf(k))
		b.memberKeys = append(b.memberKeys, b.keyOf(m))
	}
	return idx
}

// keyOf returns the builder's copy of k, one per distinct key: the nodes
// of an author point to it instead of holding the key each.
func (b *builder) keyOf(k identity.PublicKey) *identity.PublicKey {
	if p, ok := b.keys[k]; ok {
		return p
	}
	p := &k
	b.keys[k] = p
	return p
}

// claimDevice records the member a device event's certificate gives a
// device key, if it is the first valid claim on that key and the key has
// not signed anything yet: from then on the device's events speak for
// that member and may be accepted (whether they are is the rules').
func (b *builder) claimDevice(op *Device) {
	if op.Action == DeviceRevoke || !op.certValid() {
		return
	}
	for _, k := range append(op.lineKeys(), op.Added()) {
		if _, claimed := b.devMember[k]; claimed {
			continue
		}
		if _, known := b.authorIdx[k]; known {
			continue
		}
		b.devMember[k] = op.Identity
		b.entered[b.authorIndex(k)] = true
	}
}

// claimLine records, for a genesis or join carrying a valid root line
// (rootline.go) whose author has signed nothing yet, the member the
// author speaks for.
func (b *builder) claimLine(op Op, author identity.PublicKey) {
	m, ok := lineMember(op, author)
	if !ok {
		return
	}
	if _, claimed := b.devMember[author]; claimed {
		return
	}
	if _, known := b.authorIdx[author]; known {
		return
	}
	b.devMember[author] = m
	// The line's earlier keys are the member's too, revoked: what they
	// sign is judged as a revoked device's, not an outsider's.
	for _, d := range rootLineOf(op) {
		if _, claimed := b.devMember[d.Parent]; claimed {
			continue
		}
		if _, known := b.authorIdx[d.Parent]; known {
			continue
		}
		b.devMember[d.Parent] = m
		b.entered[b.authorIndex(d.Parent)] = true
	}
}

// add appends e to the builder's node list, computing its version vector.
// Events must come in log order: ascending (lamport, ID).
func (b *builder) add(e *event.Event) (*node, error) {
	if _, dup := b.posOf(e.ID()); dup {
		return nil, fmt.Errorf("state: event %s twice", e.ID().Short())
	}
	if n := len(b.nodes); n > 0 && logCompare(e, &b.nodes[n-1].e) < 0 {
		return nil, fmt.Errorf("state: event %s out of log order", e.ID().Short())
	}
	links := linksOf(e)
	for _, l := range links {
		if _, ok := b.posOf(l); !ok {
			return nil, fmt.Errorf("state: event %s links to %s, which is not in the log", e.ID().Short(), l.Short())
		}
	}
	var op Op
	var opErr error
	body := e.HasBody()
	if body {
		// The op decoded is all the fold reads of the body from here
		// on: the state keeps what the rules read of the header
		// (head), not the event (docs/fold.md).
		if b.canon == nil {
			b.canon = new(bytes.Buffer)
		}
		op, opErr = decodeOp(e.Kind, e.Body(), b.canon)
	} else {
		opErr = fmt.Errorf("body not available")
	}
	n := b.place(headOf(e), links, op, opErr, nil, nil, nil)
	n.body = body
	b.reuseStrings(n) // a sealed op's, once opened (openBy)
	b.openEarly(n)
	return n, nil
}

// place appends the event of header e linking to links, its body decoded
// as op (or not, opErr), to the node list. sealed, when set, is the
// task-sealed body op was opened from: the node is placed as that body
// and keeps op opened. vv, when set, is e's version vector, computed
// already (an extension of a state reuses its nodes': incremental.go)
// under the author indices of from (nil: b's); links are then only kept
// (joins).
func (b *builder) place(e head, links []event.ID, op Op, opErr error, sealed *TaskSealed, old *node, from []identity.PublicKey) *node {
	raw := op
	if sealed != nil {
		raw = sealed
	}
	if d, ok := raw.(*Device); ok && opErr == nil {
		b.claimDevice(d)
	}
	if opErr == nil {
		b.claimLine(op, *e.Author)
	}
	idx := b.authorIndex(*e.Author)
	e.Author = b.authorKeys[idx]
	// An honest chain's seqs rise with the log order (each event's lamport
	// exceeds its backlink's), so a seq not above the author's highest so
	// far means two events share it: the author forked.
	if e.Seq <= b.maxSeq[idx] {
		if s, ok := b.forks[*e.Author]; !ok || e.Seq < s {
			b.forks[*e.Author] = e.Seq
		}
	}
	b.maxSeq[idx] = max(b.maxSeq[idx], e.Seq)
	n := &node{e: e, author: idx, op: op, member: b.memberKeys[idx], nodeRare: noRare}
	if opErr != nil {
		n.w().opErr = opErr
	}
	// n.member: devMember does not change for a key once it is an
	// author's (claimDevice and claimLine skip known authors), so the
	// member authorIndex settled is the one devMember gives now.
	// An event of an author that has signed no genesis or join up to it
	// (a join comes first in its author's chain, so earlier in log order)
	// can never be accepted, whatever else arrives: its author is a
	// member at no parents it could have. Only its header decides that.
	if e.Kind == event.KindGenesis || e.Kind == event.KindJoin {
		b.entered[idx] = true
	} else {
		n.outsider = !b.entered[idx]
	}
	switch {
	case old == nil:
		n.vv, n.vvWide = packVV(b.versionVector(links, e.Seq, idx))
	case from != nil:
		// The same entries under b's indices: the event's past holds no
		// event of an author b indexed after from's (those events link
		// to its, not the other way), and its authors are all placed.
		full := make([]uint64, len(b.authors))
		for i := range from {
			if s := old.seen(uint32(i)); s > 0 {
				full[b.authorIdx[from[i]]] = s
			}
		}
		n.vv, n.vvWide = packVV(full)
	default:
		n.vv, n.vvWide = old.vv, old.vvWide
	}
	if e.Kind == event.KindJoin {
		n.w().links = links
	}
	p := int32(len(b.nodes))
	if n.opErr == nil && usesLink(raw) {
		l := linkOf(raw)
		b.linkUsers[l] = append(b.linkUsers[l], p)
	}
	for _, d := range deviceBoxes(raw) {
		b.boxedTo[d.Device] = append(b.boxedTo[d.Device], p)
	}
	b.nodes = append(b.nodes, n)
	b.setPos(e.ID(), p)
	b.byAuthor[idx] = append(b.byAuthor[idx], p)
	t := e.Time
	if k := len(b.timeUpTo[idx]); k > 0 {
		t = max(t, b.timeUpTo[idx][k-1])
	}
	b.timeUpTo[idx] = append(b.timeUpTo[idx], t)
	if sealed != nil {
		n.sealed = sealed
	}
	return n
}

// versionVector computes the version vector of an event at seq by
// author index idx, from its links' (which the store's order puts before
// it, and the caller checked are in the log), unpacked, in b's scratch
// (valid until the next call).
func (b *builder) versionVector(links []event.ID, seq uint64, idx uint32) []uint64 {
	vv := b.vvScratch[:0]
	for range b.authors {
		vv = append(vv, 0)
	}
	b.vvScratch = vv
	for _, l := range links {
		ln := b.nodes[b.at(l)]
		for i := range vv {
			vv[i] = max(vv[i], ln.seen(uint32(i)))
		}
	}
	vv[idx] = max(vv[idx], seq)
	return vv
}

// packVV returns the version vector full as a node keeps it: two seqs a
// word (half the memory: a node's vector is one entry per author the log
// knew when it was added), unless one does not fit in 32 bits (wide).
func packVV(full []uint64) (vv []uint64, wide bool) {
	for _, s := range full {
		if s > math.MaxUint32 {
			return slices.Clone(full), true
		}
	}
	vv = make([]uint64, (len(full)+1)/2)
	for i, s := range full {
		vv[i/2] |= s << (32 * (i % 2))
	}
	return vv, false
}

// inviteUsed returns the invite a join was judged against (zero if none).
func (n *node) inviteUsed() inviteState {
	if n.invite == nil {
		return inviteState{}
	}
	return *n.invite
}

// seen returns the highest seq of author index i in n's causal past.
func (n *node) seen(i uint32) uint64 {
	if n.vvWide {
		if int(i) < len(n.vv) {
			return n.vv[i]
		}
		return 0
	}
	if w := int(i / 2); w < len(n.vv) {
		return uint64(uint32(n.vv[w] >> (32 * (i % 2))))
	}
	return 0
}

// inPast reports whether x is in n's causal past (or is n). It is exact for
// every event that is not past its author's fork, and forked events are
// never accepted.
func (b *builder) inPast(x, n *node) bool { return x.e.Seq <= n.seen(x.author) }

// run folds all nodes, repeating passes until strong removal settles.
func (b *builder) run() {
	for {
		b.pass()
		changed := false
		for p, r := range b.pinned {
			// Unpin what no longer restricts as it did when pinned (rejected,
			// or an approval that no longer carries the same removal).
			if n := b.nodes[p]; !n.accepted || n.restrict == nil || *n.restrict != r {
				delete(b.pinned, p)
				b.excluded[p] = true
				changed = true
			}
		}
		for p, n := range b.nodes {
			p := int32(p)
			if _, pinned := b.pinned[p]; n.accepted && n.restrict != nil && !pinned && !b.excluded[p] && b.hasEarlierConcurrent(p) {
				b.pinned[p] = *n.restrict
				changed = true
			}
		}
		if !changed {
			return
		}
	}
}

// hasEarlierConcurrent reports whether the restriction at p has an accepted
// event of its target that comes earlier in the log but is concurrent with
// it: one that the restriction may have to invalidate retroactively.
//
// Any such event counts, whatever its own verdict: whether a restriction
// is pinned (and so is a step of mutual exemption, reaches) must not hang
// on the verdicts of its target's task events, which members with other
// keys, and the other side of a link, judge without their content
// (docs/links.md §6.3).
func (b *builder) hasEarlierConcurrent(p int32) bool {
	r := b.nodes[p]
	if l := r.restrict.link; !l.IsZero() {
		for _, x := range b.linkUsers[l] {
			if x < p && !b.inPast(b.nodes[x], r) {
				return true
			}
		}
		return false
	}
	if inv := r.restrict.invite; !inv.IsZero() {
		for _, x := range b.joinsBy[inv] {
			if x < p && !b.inPast(b.nodes[x], r) {
				return true
			}
		}
		return false
	}
	// The target's chains: a member's own and its devices'; a revoked
	// device's, and those of the devices below it.
	chains := b.memberChains[r.restrict.target]
	if r.restrict.device {
		chains = nil
		for _, k := range r.revokes {
			if ti, ok := b.authorIdx[k]; ok {
				chains = append(chains, ti)
			}
			// A member KEM key given to the device concurrently.
			for _, x := range b.boxedTo[k] {
				if x < p && !b.inPast(b.nodes[x], r) {
					return true
				}
			}
		}
	}
	for _, ti := range chains {
		// The target's events the restriction has not seen have seqs
		// above what it saw; they sit at the end of the chain's list
		// before p (in log order, an honest chain's seqs rise), so the
		// last of them before p tells.
		evs := b.byAuthor[ti]
		i, _ := slices.BinarySearch(evs, p)
		if i > 0 && b.nodes[evs[i-1]].e.Seq > r.seen(ti) {
			return true
		}
	}
	return false
}

// pass folds every node once, in log order.
func (b *builder) pass() {
	b.startPass()
	for p, n := range b.nodes {
		b.step(int32(p), n)
	}
}

// startPass resets what a pass folds into, for the pinned restrictions.
func (b *builder) startPass() {
	b.auth = newAuthState()
	b.tasks = newLayered[event.ID, *Task]()
	b.taskRecs = newLayered[event.ID, []int32]()
	b.authRecs = b.authRecs[:0]
	b.snaps = b.snaps[:0]
	b.authMax = make([]uint64, len(b.authors))
	b.restrictBy = make(map[identity.PublicKey][]int32)
	b.revokedBy = make(map[event.ID][]int32)
	b.joinsBy = make(map[event.ID][]int32)
	b.endedBy = make(map[event.ID][]int32)
	b.nodeAddrs = nil
	b.pinnedBy = make(map[identity.PublicKey][]int32)
	b.pinnedRev = make(map[event.ID][]int32)
	b.pinnedEnd = make(map[event.ID][]int32)
	b.devRestrictBy = make(map[identity.PublicKey][]int32)
	b.devPinnedBy = make(map[identity.PublicKey][]int32)
	for p, r := range b.pinned {
		switch {
		case r.device:
			for _, k := range b.nodes[p].revokes {
				b.devPinnedBy[k] = append(b.devPinnedBy[k], p)
			}
		case !r.invite.IsZero():
			b.pinnedRev[r.invite] = append(b.pinnedRev[r.invite], p)
		case !r.link.IsZero():
			b.pinnedEnd[r.link] = append(b.pinnedEnd[r.link], p)
		default:
			b.pinnedBy[r.target] = append(b.pinnedBy[r.target], p)
		}
	}
	for _, ps := range b.pinnedBy {
		slices.Sort(ps)
	}
	for _, ps := range b.pinnedRev {
		slices.Sort(ps)
	}
	for _, ps := range b.pinnedEnd {
		slices.Sort(ps)
	}
	for _, ps := range b.devPinnedBy {
		slices.Sort(ps)
	}
}

// step decides one node and, if accepted, applies it.
func (b *builder) step(p int32, n *node) {
	n.resetPass()
	if err := b.decide(p, n); err != nil {
		n.accepted, n.reason = false, err.Error()
	} else {
		n.accepted, n.reason = true, ""
		b.apply(p, n)
	}
	b.settleRare(n)
}

// authSnap is the authority state after the first upto accepted authority
// events of a pass; max is, per author, the highest seq among them. An
// event whose causal past holds all of them (max <= its version vector)
// can start rebuilding its view from the snapshot.
type authSnap struct {
	upto int
	max  []uint64
	st   *authState
}

// snapEvery is how many authority events apart snapshots are taken.
const snapEvery = 64

type charterResult struct {
	c   *charter.Charter
	err error
}

type publicResult struct {
	pub identity.Public
	err error
}

type innerResult struct {
	op  Op
	err error
}

// charterOf parses a charter's wire form, once per distinct charter.
func (b *builder) charterOf(wire []byte) (*charter.Charter, error) {
	b.cmu.Lock()
	r, ok := b.charters[string(wire)]
	b.cmu.Unlock()
	if ok {
		return r.c, r.err
	}
	c, err := charter.Unmarshal(wire)
	b.cmu.Lock()
	b.charters[string(wire)] = charterResult{c, err}
	b.cmu.Unlock()
	return c, err
}

// publicOf returns the identity a genesis or join event publishes, checked
// (KEM binding signature included) once per event.
func (b *builder) publicOf(n *node, name string, kem, binding []byte) (identity.Public, error) {
	b.cmu.Lock()
	r, ok := b.publics[n.e.ID()]
	b.cmu.Unlock()
	if ok {
		return r.pub, r.err
	}
	pub, err := publicOf(*n.e.Author, name, kem, binding)
	b.cmu.Lock()
	b.publics[n.e.ID()] = publicResult{pub, err}
	b.cmu.Unlock()
	return pub, err
}

// innerOf decodes the op a proposal proposes, once per proposal.
func (b *builder) innerOf(id event.ID, p *Proposal) (Op, error) {
	b.cmu.Lock()
	r, ok := b.inners[id]
	b.cmu.Unlock()
	if ok {
		return r.op, r.err
	}
	op, err := DecodeOp(p.Action, p.Body)
	b.cmu.Lock()
	b.inners[id] = innerResult{op, err}
	b.cmu.Unlock()
	return op, err
}
