package state

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// Builder folds a pursuance's events, fed in log order, into its State.
// It is not safe for concurrent use.
type Builder struct {
	b   *builder
	err error
}

// NewBuilder starts a fold of the pursuance's log. evidence is the
// pursuance's equivocation records: an author that signed two events at
// one seq has every event from that seq on rejected.
func NewBuilder(pursuance event.ID, evidence []event.Equivocation) *Builder {
	return &Builder{b: newBuilder(pursuance, event.ForkedFrom(evidence))}
}

// Add adds the next event. Events must come in log order, ascending
// (lamport, ID), each after the events it links to: the order
// store.Iterate gives.
func (x *Builder) Add(e *event.Event) error {
	if x.err != nil {
		return x.err
	}
	_, x.err = x.b.add(e)
	return x.err
}

// SetSecrets makes the state one member's view: the key generations its
// secrets open (State.Held) and the sealed task events they open, which
// are then judged and applied like any other. Without secrets, every
// sealed task event is opaque.
func (x *Builder) SetSecrets(sec *Secrets) { x.b.secrets = sec }

// Finish decides every event and returns the state. The Builder must not
// be used afterwards.
func (x *Builder) Finish() (*State, error) {
	defer func() { x.b.reuse = nil }()
	if x.err != nil {
		return nil, x.err
	}
	if len(x.b.nodes) == 0 {
		return nil, errors.New("state: empty log")
	}
	if x.b.secrets != nil {
		x.b.held = x.b.openKeys(x.b.secrets)
		x.b.linkKeys = x.b.openLinkKeys(x.b.secrets)
		x.b.openSealed()
	}
	x.b.run()
	return &State{folded: x.b}, nil
}

// Build folds events, in log order, into a State.
func Build(pursuance event.ID, events []*event.Event, evidence []event.Equivocation) (*State, error) {
	x := NewBuilder(pursuance, evidence)
	for _, e := range events {
		if err := x.Add(e); err != nil {
			return nil, err
		}
	}
	return x.Finish()
}

// State is a pursuance's state: its charter, members, tasks and the
// verdict on every event. Two replicas holding the same events compute
// the same State (and the same Hash), whatever order the events came in.
// A State is read-only and safe for concurrent reads.
type State struct {
	// folded is the fold; nil for a state opened from a checkpoint
	// (OpenCheckpoint) until its nodes are loaded (lazy.go): use b().
	folded *builder
	lazy   *lazyNodes
	memo   memo // views derived from it (memo.go)
}

// Pursuance returns the pursuance's ID.
func (s *State) Pursuance() event.ID {
	if v := s.view(); v != nil {
		return v.pursuance
	}
	return s.b().pursuance
}

// Charter returns the charter in force.
func (s *State) Charter() *charter.Charter { return s.auth().charter }

// Name returns the pursuance's name, from its charter.
func (s *State) Name() string {
	if c := s.auth().charter; c != nil {
		return c.Name
	}
	return ""
}

// Members returns the current members, highest role first, then by name.
func (s *State) Members() []*Member {
	a := s.auth()
	out := make([]*Member, 0, len(a.members))
	for _, m := range a.members {
		out = append(out, m)
	}
	rank := func(m *Member) int {
		if len(m.Roles) == 0 {
			return 1 << 30
		}
		return a.charter.Rank(m.Roles[0])
	}
	slices.SortFunc(out, func(x, y *Member) int {
		return cmp.Or(cmp.Compare(rank(x), rank(y)), cmp.Compare(x.Name, y.Name), x.ID.Compare(y.ID))
	})
	return out
}

// Member returns a current member.
func (s *State) Member(id identity.PublicKey) (*Member, bool) {
	m, ok := s.auth().members[id]
	return m, ok
}

// NameOf returns the display name of a member, current or former, or ""
// if the log has never admitted it.
func (s *State) NameOf(id identity.PublicKey) string {
	if m, ok := s.auth().members[id]; ok {
		return m.Name
	}
	if m, ok := s.auth().former[id]; ok {
		return m.Name
	}
	return ""
}

// Tasks returns every task this member can read, archived ones included,
// in the order they were created in the log. A task whose creation it
// cannot open is left out, unless an event it can open gave the task a
// title (see Task.Sealed).
func (s *State) Tasks() []*Task { return slices.Clone(s.orderedTasks()) }

// taskPos is the log position of the event that made a task: its
// creation, or the receive that made a received task.
func (b *builder) taskPos(t *Task) int32 {
	if t.Origin != nil {
		return b.at(t.Origin.Receive)
	}
	return b.at(t.ID)
}

// SealedTasks returns the number of tasks whose creation this member
// cannot open and of which it knows nothing else: tasks that exist, for
// roles it does not hold.
func (s *State) SealedTasks() int {
	n := 0
	for _, t := range s.tasks().all() {
		if t.Sealed && t.Title == "" {
			n++
		}
	}
	return n
}

// Task returns a task by ID.
func (s *State) Task(id event.ID) (*Task, bool) {
	return s.tasks().get(id)
}

// CanSee reports whether member m may see task t under the charter.
func (s *State) CanSee(m identity.PublicKey, t *Task) bool {
	a := s.auth()
	if _, ok := a.members[m]; !ok {
		return false
	}
	roles := a.roles(m)
	return a.charter.CanSee(roles, taskFacts(t, m, roles))
}

// Entry is one event of the audit log with its verdict.
type Entry struct {
	ID       event.ID
	Author   identity.PublicKey
	Kind     event.Kind
	Seq      uint64
	Lamport  uint64
	Time     uint64 // claimed, display only
	Accepted bool
	Reason   string // why it was rejected: which rule, which role, which event
	Note     string // for an accepted event, what else came of it
	// Sealed is set for a task-sealed event; Kind is then the kind of the
	// task op inside when this member opened it.
	Sealed bool
	// Op is what the event asks to do, as this member read it: the task
	// op inside a task-sealed event it opened, a TaskSealed otherwise; nil
	// when its body is malformed. For display (package activity); the
	// verdict is Accepted.
	Op Op
}

// Log returns every event with its verdict, in log order.
func (s *State) Log() []Entry {
	out := make([]Entry, len(s.b().nodes))
	for i, n := range s.b().nodes {
		out[i] = s.entry(n)
	}
	return out
}

// Entries yields what Log returns, one entry at a time, without making
// the list: a reader going through the log once (a round's push plan, at
// a million events 150 MB a round) holds one entry at a time.
func (s *State) Entries() iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		for _, n := range s.b().nodes {
			if !yield(s.entry(n)) {
				return
			}
		}
	}
}

// EntriesAbove returns, in log order, the entries of the events whose
// seq is above their author's in vv (an author vv lacks: all of its
// events): what came since a log whose authors' highest seqs were vv, in
// time proportional to them. Each author's events are found from its
// newest back until one at or below its seq (a forked chain may hide an
// event above it behind one below: a caller that knows how many events
// that log had can tell, as Len minus the entries returned differs).
func (s *State) EntriesAbove(vv map[identity.PublicKey]uint64) []Entry {
	b := s.b()
	var ps []int32
	for i, a := range b.authors {
		evs := b.byAuthor[i]
		for k := len(evs) - 1; k >= 0 && b.nodes[evs[k]].e.Seq > vv[a]; k-- {
			ps = append(ps, evs[k])
		}
	}
	slices.Sort(ps)
	out := make([]Entry, len(ps))
	for i, p := range ps {
		out[i] = s.entry(b.nodes[p])
	}
	return out
}

// Index returns the position of event id in log order, ok false if it is
// not in the log.
func (s *State) Index(id event.ID) (int, bool) {
	p, ok := s.b().posOf(id)
	return int(p), ok
}

// EntriesBackward is Entries from the newest back.
func (s *State) EntriesBackward() iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		nodes := s.b().nodes
		for i := len(nodes) - 1; i >= 0; i-- {
			if !yield(s.entry(nodes[i])) {
				return
			}
		}
	}
}

// Entry returns one event's verdict.
func (s *State) Entry(id event.ID) (Entry, bool) {
	p, ok := s.b().posOf(id)
	if !ok {
		return Entry{}, false
	}
	return s.entry(s.b().nodes[p]), true
}

func (s *State) entry(n *node) Entry {
	e := &n.e
	en := Entry{ID: e.ID(), Author: *e.Author, Kind: e.Kind, Seq: e.Seq, Lamport: e.Lamport, Time: e.Time, Accepted: n.accepted, Reason: n.reason,
		Sealed: e.Kind == event.KindTaskSealed, Op: n.op}
	if n.sealed != nil && n.op != nil {
		en.Kind = n.op.Kind()
	}
	switch {
	case n.exec != nil:
		en.Note = fmt.Sprintf("carried the proposal: %s", n.exec.Kind())
	case n.execNote != "":
		en.Note = n.execNote
	case n.inert != "":
		en.Note = n.inert
	}
	return en
}

// Len returns the number of events in the log.
func (s *State) Len() int {
	if v := s.view(); v != nil {
		return v.n
	}
	return len(s.b().nodes)
}

// ProposalInfo is an open proposal.
type ProposalInfo struct {
	ID        event.ID
	Author    identity.PublicKey
	Op        Op
	Action    charter.Action
	Approvals []identity.PublicKey
	Needed    int
	// Expires is when the proposal stops taking approvals (Unix
	// milliseconds, by the members' clocks; 0: never), and Expired
	// whether the log says it has (docs/succession.md).
	Expires uint64
	Expired bool
}

// Proposals returns the open proposals, oldest first, expired ones
// included (Expired). Needed counts active holders when the charter has
// continuity rules, at the heads of the log.
func (s *State) Proposals() []ProposalInfo {
	a := s.b().auth
	h := s.b().heads()
	var out []ProposalInfo
	for _, p := range a.proposals {
		pi := ProposalInfo{ID: p.id, Author: p.author, Op: p.op, Action: p.action}
		for m := range p.approvals {
			pi.Approvals = append(pi.Approvals, m)
		}
		slices.SortFunc(pi.Approvals, identity.PublicKey.Compare)
		if q, ok := a.charter.QuorumFor(p.action); ok {
			pi.Needed = s.b().neededAt(a, q, h)
		}
		pi.Expires, pi.Expired = s.b().proposalExpiry(a, p, h)
		out = append(out, pi)
	}
	slices.SortFunc(out, func(x, y ProposalInfo) int { return cmp.Compare(s.b().at(x.ID), s.b().at(y.ID)) })
	return out
}

// Check returns the verdict e would get if it were added to the log now:
// nil if accepted, else the reason. e's links must all be in the log. It is
// how a client refuses, before publishing, what its rules would reject.
func (s *State) Check(e *event.Event) error {
	_, err := s.check(e)
	return err
}

// check is Check; it also returns, for a hand-off, the role its author
// sent as.
func (s *State) check(e *event.Event) (string, error) {
	b := s.b()
	if e.PursuanceID() != b.pursuance {
		return "", errors.New("state: event of another pursuance")
	}
	if _, dup := b.posOf(e.ID()); dup {
		return "", errors.New("state: event already in the log")
	}
	links := linksOf(e)
	n := &node{e: headOf(e), author: uint32(len(b.authors)), nodeRare: &nodeRare{links: links}}
	if i, ok := b.authorIdx[e.Author]; ok {
		n.author = i
	}
	n.vv = make([]uint64, max(len(b.authors), int(n.author)+1))
	for _, l := range links {
		p, ok := b.posOf(l)
		if !ok {
			return "", fmt.Errorf("state: event links to %s, which is not in the log", l.Short())
		}
		for i := range b.authors {
			n.vv[i] = max(n.vv[i], b.nodes[p].seen(uint32(i)))
		}
	}
	n.vv[n.author] = max(n.vv[n.author], e.Seq)
	n.vvWide = true // unpacked
	if !e.HasBody() {
		return "", errors.New("state: the event has no body")
	}
	n.op, n.opErr = DecodeOp(e.Kind, e.Body()) // n's own nodeRare
	// Copies, not the builder's (keyOf): a State is read concurrently.
	member := e.Author
	if m, ok := b.devMember[e.Author]; ok {
		member = m
	} else if m, ok := lineMember(n.op, e.Author); ok && n.opErr == nil {
		if _, known := b.authorIdx[e.Author]; !known {
			member = m // a rotated root's genesis or join (rootline.go)
		}
	} else if d, ok := n.op.(*Device); ok && n.opErr == nil && d.Added() == e.Author && d.Action == DeviceAdd && d.certValid() {
		if _, known := b.authorIdx[e.Author]; !known {
			member = d.Identity // a device's own add, its first event
		}
	}
	n.member = &member
	b.openNode(n)
	if err := b.decide(int32(len(b.nodes)), n); err != nil {
		return "", err
	}
	if n.inert != "" {
		// Accepted, but pointless: an honest client does not publish it.
		return "", errors.New(n.inert)
	}
	return n.sendRole, nil
}

// Hash returns a digest of the state: charter, members and roles, tasks
// and every event's verdict, in a canonical serialization. Replicas with
// the same events have the same Hash.
func (s *State) Hash() [32]byte {
	h := sha256.New()
	w := func(parts ...[]byte) {
		for _, p := range parts {
			var l [8]byte
			binary.BigEndian.PutUint64(l[:], uint64(len(p)))
			h.Write(l[:])
			h.Write(p)
		}
	}
	u := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	str := func(v string) []byte { return []byte(v) }
	b := s.b()
	w(str("pursuance/v1/state-hash"), b.pursuance[:], b.auth.charterWire)
	for _, m := range s.Members() {
		w(str("member"), m.ID[:], str(m.Name), m.Since[:])
		for _, r := range m.Roles {
			w(str(r))
		}
	}
	for _, r := range s.Relays() {
		w(str("relay"), str(r))
	}
	for _, l := range s.Links() {
		w(str("link"), l.ID[:], l.By[:], u(boolU(l.Offer)), str(l.Role), u(boolU(l.Ended)), l.EndedBy[:])
		for _, r := range l.Roles {
			w(str(r))
		}
	}
	for _, t := range s.Tasks() {
		w(str("task"), t.ID[:], t.Parent[:], str(t.Title), str(t.Body), str(t.Due), u(uint64(t.Status)), u(boolU(t.Archived)))
		for _, r := range t.VisibleTo {
			w(str("visible"), str(r))
		}
		for _, a := range t.Assignees {
			w(str("assignee"), str(a.String()))
		}
		for _, c := range t.Comments {
			w(str("comment"), c.ID[:])
		}
	}
	roles := make([]string, 0, len(b.auth.keys))
	for r := range b.auth.keys {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	for _, r := range roles {
		for _, k := range b.auth.keys[r] {
			w(str("key"), str(r), u(k.Gen), k.Update[:])
			for _, m := range k.Members {
				w(m[:])
			}
		}
	}
	for _, p := range s.Proposals() {
		w(str("proposal"), p.ID[:])
		for _, a := range p.Approvals {
			w(a[:])
		}
	}
	for _, c := range s.claims() {
		w(str("claim"), c.id[:], str(c.role), c.claimant[:])
	}
	for _, n := range b.nodes {
		id := n.e.ID()
		w(id[:], u(boolU(n.accepted)), str(n.reason), str(n.execNote), str(n.inert))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func boolU(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// NeedsProposal reports whether op, by author, needs a quorum: the charter
// puts its action under one that author's approval alone does not meet.
// Such an op must be proposed (a Proposal event) and approved. needed is
// the number of approvals the quorum asks for now.
func (s *State) NeedsProposal(author identity.PublicKey, op Op) (needed int, ok bool) {
	a := s.b().auth
	q, found := a.charter.QuorumFor(actionOf(op))
	if !found {
		return 0, false
	}
	needed = s.b().neededAt(a, q, s.b().heads())
	return needed, needed > 1 || !slices.Contains(a.roles(author), q.Of)
}

// KeyGenerations returns the accepted generations of the group key (role
// "") or of a role's key, in log order. Every one stays readable.
func (s *State) KeyGenerations(role string) []KeyGen {
	return slices.Clone(s.auth().keys[role])
}

// CurrentKey returns the generation of the group key (role "") or of a
// role's key that new content is sealed under: the highest generation
// number, and among concurrent rotations to it the last in log order.
func (s *State) CurrentKey(role string) (KeyGen, bool) {
	return s.auth().current(role)
}

// Held returns every key generation this member's secrets open (none
// without Builder.SetSecrets), by the key-update that published it. It
// may include generations of key-updates the rules rejected: they open
// what was sealed under them, and nothing is ever sealed under them by an
// honest member.
func (s *State) Held() map[event.ID]HeldKey { return maps.Clone(s.b().held) }

// KeyStatus says who holds the current generation of a scope and who
// should: Stale lists those who hold it and are no longer entitled (a
// removed member, a former holder of the role, and, by its invite key, the
// code of an invite that sealed it once the invite is used, revoked or
// expired), Owed those entitled who do not hold it (it was not sealed to
// them). A member who holds a stale key rotates before sealing anything
// under it; one who sees an owed key rotates so the newcomer gets it.
// Nothing is returned for a scope with no generation yet.
type KeyStatus struct {
	Current KeyGen
	Stale   []identity.PublicKey
	Owed    []identity.PublicKey
	// Retired lists the members the current generation was sealed to
	// under a KEM key they have since replaced (a member-key event): it is
	// rotated, like a stale one, before anything is sealed under it.
	Retired []identity.PublicKey
}

// KeyStatus returns the status of the group key (role "") or a role's key;
// ok is false when it has no generation. Invites' expiry is not looked at:
// KeyStatusAt does.
func (s *State) KeyStatus(role string) (st KeyStatus, ok bool) { return s.KeyStatusAt(role, 0) }

// KeyStatusAt is KeyStatus at now (Unix milliseconds): the code of an
// invite that has expired by now counts among the stale holders of what it
// sealed, as the rules judge content sealed at that time.
func (s *State) KeyStatusAt(role string, now uint64) (st KeyStatus, ok bool) {
	a := s.b().auth
	cur, ok := a.current(role)
	if !ok {
		return KeyStatus{}, false
	}
	st.Current = cur
	st.Stale, st.Owed = s.b().keyHolders(a, cur, now)
	st.Retired = retiredHolders(a, cur)
	return st, true
}

// Relays returns the pursuance's relay list, sorted.
func (s *State) Relays() []string {
	return slices.Sorted(maps.Keys(s.auth().relays))
}

// MayRotate reports whether member m may publish a generation of the
// group key (role "") or of a role's key now.
func (s *State) MayRotate(m identity.PublicKey, role string) bool {
	a := s.auth()
	if _, ok := a.members[m]; !ok {
		return false
	}
	roles := a.roles(m)
	return role == "" || a.charter.CanSee(roles, charter.TaskFacts{VisibleTo: []string{role}}) ||
		a.charter.Allows(roles, charter.RotateKeys, nil, nil) == nil
}

// RotationDue reports whether the current generation of a scope is older
// than the charter's rotation period at now (Unix milliseconds), by the
// claimed time of the key-update that published it.
func (s *State) RotationDue(role string, now uint64) bool {
	every := s.b().auth.charter.Keys.RotateEvery
	cur, ok := s.b().auth.current(role)
	if every == 0 || !ok {
		return false
	}
	return s.b().nodes[s.b().at(cur.Update)].e.Time+every*1000 <= now
}

// EntitledScopes returns the scopes whose key member m is entitled to
// now: the group key ("") and every role whose tasks it sees.
func (s *State) EntitledScopes(m identity.PublicKey) []string {
	a := s.auth()
	mem, ok := a.members[m]
	if !ok {
		return nil
	}
	out := []string{""}
	for _, r := range a.charter.RoleNames() {
		if mem.HasRole(r) || a.charter.CanSee(mem.Roles, charter.TaskFacts{VisibleTo: []string{r}}) {
			out = append(out, r)
		}
	}
	return out
}

// Entitled returns the members entitled to the group key (role "") or a
// role's key now, sorted: whom a new generation must be sealed to.
func (s *State) Entitled(role string) []*Member {
	var out []*Member
	for _, id := range s.b().auth.entitled(role) {
		out = append(out, s.b().auth.members[id])
	}
	return out
}
