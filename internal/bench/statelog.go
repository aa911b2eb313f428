package bench

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// stateLogVersion names the generator's output in cache file names. Bump it
// whenever GenerateStateLog changes what it generates for given parameters.
const stateLogVersion = 1

// The mix of ordinary steps, by weight (per mille). What is left over
// (about 2% of events) is authority: role changes, removals with their
// concurrent events, and the invites and joins of replacement members.
var stepMix = []struct {
	kind   opKind
	weight int
}{
	{opCreate, 150},
	{opComment, 400},
	{opStatus, 140},
	{opEdit, 100},
	{opAssign, 80},
	{opUnassign, 40},
	{opMove, 50},
	{opArchive, 20},
	{opPromote, 1},
	{opDemote, 1},
}

// Tunables of the generated pursuance.
const (
	pairPerMille   = 50     // steps where two members write without seeing each other's event
	removalEvery   = 25_000 // events per removal with concurrent events by the removed member (at least 2 per log)
	demotionEvery  = 50_000 // events per demotion with concurrent editor actions (at least 1 per log)
	poolSize       = 200    // open tasks members still work on; older ones go stale
	doneSize       = 64     // recently finished tasks, which editors archive
	maxConcurrent  = 3      // events a removed or demoted member signs unaware of it
	replacementLag = 200    // up to this many events before a removed member's replacement is invited
)

type opKind int

const (
	opCreate opKind = iota
	opComment
	opStatus
	opEdit
	opAssign
	opUnassign
	opMove
	opArchive
	opPromote
	opDemote
)

// GenerateStateLog builds a valid, signed log of n events of one pursuance
// on the desk template, deterministically from seed, and returns it in log
// order (ascending lamport, then ID) with the pursuance's ID.
//
// The founder (an editor) invites members members one by one, a quarter of
// them editors and the rest researchers, each joining right after its
// invite. Then the members work: by count about 15% task creations, 40%
// comments, 14% status changes, 10% edits, 12% assigns and unassigns, 5%
// moves, 2% archives and a few role changes (a researcher promoted to
// editor, later demoted). Each member acts within its rights under the
// charter, on the tasks it can see; activity is uneven between members
// and concentrates on recent tasks. Members mostly write in turn, each event
// naming the current heads as parents, but in 5% of steps two members write
// without seeing each other's event. Every 25,000 events (at least twice per
// log) an editor removes a researcher who, not having seen the removal,
// signs one to three more events, which strong removal invalidates; a
// replacement is invited and joins later. Every 50,000 events (at least
// once) a promoted editor is demoted while it edits tasks concurrently:
// its edits are invalidated, its comments stand. So all but a fraction of a
// percent of events are accepted by state.Build.
//
// Each event names the one before it, so signing is sequential: about
// 25 µs an event on an idle core. CachedStateLog keeps large logs on disk.
func GenerateStateLog(n, members int, seed uint64) ([]*event.Event, event.ID, error) {
	if members < 1 || n < 1+2*members {
		return nil, event.ID{}, fmt.Errorf("bench: a state log of %d members needs at least %d events, got %d", members, 1+2*members, n)
	}
	c, err := charter.Template("desk")
	if err != nil {
		return nil, event.ID{}, err
	}
	wire, err := c.MarshalBinary()
	if err != nil {
		return nil, event.ID{}, err
	}
	g := &stateGen{
		n:     n,
		rng:   rand.New(rand.NewPCG(seed, 0x5747e)),
		keys:  seededReader{rand.New(rand.NewPCG(seed, 0x6b657973))},
		c:     c,
		clock: 1_790_000_000_000,
		out:   make([]*event.Event, 0, n),
	}
	if err := g.run(members, wire); err != nil {
		return nil, event.ID{}, err
	}
	slices.SortFunc(g.out, func(x, y *event.Event) int {
		return cmp.Or(cmp.Compare(x.Lamport, y.Lamport), x.ID().Compare(y.ID()))
	})
	return g.out, g.pid, nil
}

// StateLogIdentities returns the first n identities GenerateStateLog
// makes for seed, in the order it makes them (its founder first): their
// keys, to sign more events into its log (a benchmark's late event).
func StateLogIdentities(seed uint64, n int) ([]*identity.Identity, error) {
	keys := seededReader{rand.New(rand.NewPCG(seed, 0x6b657973))}
	ids := make([]*identity.Identity, n)
	for i := range ids {
		id, err := identity.New(fmt.Sprintf("member %d", i), keys)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// seededReader is a deterministic stand-in for crypto/rand, for keys.
type seededReader struct{ r *rand.Rand }

func (s seededReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.r.Uint32())
	}
	return len(p), nil
}

type gMember struct {
	id     *identity.Identity
	chain  event.Chain
	text   string   // the member ID's text form, as assignees name it
	roles  []string // ranked, as the fold keeps them
	weight float64  // how much it writes
	active bool
}

func (m *gMember) is(role string) bool { return slices.Contains(m.roles, role) }

// promoted reports whether m is a researcher who was made an editor too.
func (m *gMember) promoted() bool { return m.is("editor") && m.is("researcher") }

type gTask struct {
	id        event.ID
	creator   *gMember
	parent    *gTask
	visibleTo []string
	assigned  []string // assignee text forms
	status    state.Status
	open      bool // in the pool of tasks being worked on
}

// step is a planned event: who signs what, and how it changes the model
// once signed.
type step struct {
	m      *gMember
	op     state.Op
	commit func(e *event.Event)
}

type scheduled struct {
	at   int // when len(out) reaches this
	kind int
	inv  *pendingInvite
}

const (
	schedRemoval = iota
	schedDemotion
	schedInvite
	schedJoin
)

type pendingInvite struct {
	role    string
	inviter *gMember
	key     *identity.SigningKey
	invite  event.ID
}

type stateGen struct {
	n       int
	rng     *rand.Rand
	keys    seededReader
	c       *charter.Charter
	pid     event.ID
	clock   uint64
	members []*gMember // every member ever admitted
	heads   []event.Ref
	out     []*event.Event
	pool    []*gTask // open tasks, oldest first
	done    []*gTask // recently finished, not archived
	sched   []scheduled
	names   int
}

func (g *stateGen) run(members int, charterWire []byte) error {
	founder, err := g.newMember("editor")
	if err != nil {
		return err
	}
	pub := founder.id.Public()
	body, err := state.EncodeOp(&state.Genesis{Charter: charterWire, Name: pub.Name, KEM: pub.KEM.Bytes(), Binding: pub.KEMBinding[:]})
	if err != nil {
		return err
	}
	gen, err := founder.chain.Genesis(g.tick(), body)
	if err != nil {
		return err
	}
	g.pid = gen.ID()
	founder.chain.Pursuance = g.pid
	founder.active = true
	g.members = append(g.members, founder)
	g.out = append(g.out, gen)
	g.heads = []event.Ref{gen.Ref()}

	for i := range members {
		role := "researcher"
		if i%4 == 3 {
			role = "editor"
		}
		inv, err := g.invite(role)
		if err != nil {
			return err
		}
		if err := g.join(inv); err != nil {
			return err
		}
	}

	// The scenarios, spread evenly over the rest of the log.
	rest := g.n - len(g.out)
	removals := max(2, g.n/removalEvery)
	for i := range removals {
		g.schedule(scheduled{at: len(g.out) + (2*i+1)*rest/(2*removals), kind: schedRemoval})
	}
	demotions := max(1, g.n/demotionEvery)
	for i := range demotions {
		g.schedule(scheduled{at: len(g.out) + (4*i+3)*rest/(4*demotions), kind: schedDemotion})
	}

	for len(g.out) < g.n {
		if len(g.sched) > 0 && g.sched[0].at <= len(g.out) {
			s := g.sched[0]
			g.sched = g.sched[1:]
			if err := g.scenario(s); err != nil {
				return err
			}
			continue
		}
		if g.left() >= 2 && g.rng.IntN(1000) < pairPerMille {
			ok, err := g.pair()
			if err != nil {
				return err
			}
			if ok {
				continue
			}
		}
		s, ok := g.plan(g.pickKind(), nil)
		if !ok {
			s, ok = g.plan(opCreate, nil)
		}
		if !ok {
			return errors.New("bench: no member can create a task")
		}
		if _, err := g.emit(s, slices.Clone(g.heads)); err != nil {
			return err
		}
	}
	return nil
}

func (g *stateGen) left() int { return g.n - len(g.out) }

func (g *stateGen) schedule(s scheduled) {
	i, _ := slices.BinarySearchFunc(g.sched, s.at, func(x scheduled, at int) int { return cmp.Compare(x.at, at+1) })
	g.sched = slices.Insert(g.sched, i, s)
}

func (g *stateGen) tick() uint64 {
	g.clock += 1000 + g.rng.Uint64N(120_000)
	return g.clock
}

var firstNames = []string{"Ada", "Bea", "Cai", "Dev", "Eli", "Fay", "Gus", "Hal", "Ines", "Jo", "Kim", "Lea", "Max", "Nia", "Oti", "Pia", "Quin", "Rae", "Sol", "Tam", "Uma", "Vic", "Wen", "Xan", "Yara", "Zed"}

// newMember makes a member's identity; it is admitted by genesis or join.
func (g *stateGen) newMember(role string) (*gMember, error) {
	name := fmt.Sprintf("%s %d", firstNames[g.names%len(firstNames)], g.names/len(firstNames)+1)
	g.names++
	id, err := identity.New(name, g.keys)
	if err != nil {
		return nil, err
	}
	m := &gMember{id: id, chain: event.Chain{Key: id.SigningKey(), Pursuance: g.pid}, text: id.ID().String(),
		roles: []string{role}, weight: math.Exp(g.rng.NormFloat64() * 0.8)}
	return m, nil
}

// emit signs s's op as s.m with the given parents, and applies it.
func (g *stateGen) emit(s step, parents []event.Ref) (*event.Event, error) {
	body, err := state.EncodeOp(s.op)
	if err != nil {
		return nil, err
	}
	e, err := s.m.chain.Next(s.op.Kind(), parents, g.tick(), body)
	if err != nil {
		return nil, err
	}
	g.out = append(g.out, e)
	g.heads = slices.DeleteFunc(g.heads, func(r event.Ref) bool {
		_, found := slices.BinarySearchFunc(e.Parents, r.ID, event.ID.Compare)
		return found
	})
	g.heads = append(g.heads, e.Ref())
	if s.commit != nil {
		s.commit(e)
	}
	return e, nil
}

// invite has an active editor publish an invite into role, and returns it.
func (g *stateGen) invite(role string) (*pendingInvite, error) {
	inviter := g.pickMember(func(m *gMember) bool { return m.is("editor") }, nil)
	if inviter == nil {
		return nil, errors.New("bench: no editor to invite")
	}
	if err := g.c.Allows(inviter.roles, charter.Invite, []string{role}, nil); err != nil {
		return nil, err
	}
	k, err := identity.NewSigningKey(g.keys)
	if err != nil {
		return nil, err
	}
	inv := &pendingInvite{role: role, inviter: inviter, key: k}
	_, err = g.emit(step{m: inviter, op: &state.Invite{Key: k.Public(), Role: role, Uses: 1},
		commit: func(e *event.Event) { inv.invite = e.ID() }}, slices.Clone(g.heads))
	return inv, err
}

// join admits a new member with inv. Its inviter must still be a member.
func (g *stateGen) join(inv *pendingInvite) error {
	m, err := g.newMember(inv.role)
	if err != nil {
		return err
	}
	pub := m.id.Public()
	op := &state.Join{Invite: inv.invite, Proof: inv.key.Sign(state.JoinMessage(g.pid, inv.invite, m.id.ID())),
		Name: pub.Name, KEM: pub.KEM.Bytes(), Binding: pub.KEMBinding[:]}
	_, err = g.emit(step{m: m, op: op, commit: func(*event.Event) {
		m.active = true
		g.members = append(g.members, m)
	}}, slices.Clone(g.heads))
	return err
}

func (g *stateGen) scenario(s scheduled) error {
	switch s.kind {
	case schedRemoval:
		return g.removal()
	case schedDemotion:
		return g.demotion()
	case schedInvite:
		if g.left() < 2 {
			return nil
		}
		inv, err := g.invite(s.inv.role)
		if err != nil {
			return err
		}
		g.schedule(scheduled{at: len(g.out) + 5 + g.rng.IntN(50), kind: schedJoin, inv: inv})
	case schedJoin:
		if !s.inv.inviter.active {
			// The invite died with its author's membership: invite again.
			g.schedule(scheduled{at: len(g.out), kind: schedInvite, inv: s.inv})
			return nil
		}
		return g.join(s.inv)
	}
	return nil
}

// removal: an editor removes a researcher who, unaware, signs one to three
// more events concurrently. Strong removal invalidates them.
func (g *stateGen) removal() error {
	k := 1 + g.rng.IntN(maxConcurrent)
	if g.left() < 1+k {
		return nil
	}
	target := g.pickMember(func(m *gMember) bool { return slices.Equal(m.roles, []string{"researcher"}) }, nil)
	if target == nil {
		return nil
	}
	by := g.pickMember(func(m *gMember) bool { return m.is("editor") }, target)
	if by == nil {
		return nil
	}
	if err := g.c.Allows(by.roles, charter.RemoveMember, target.roles, nil); err != nil {
		return err
	}
	// The target's events are planned against the state before the
	// removal; being invalidated, they change nothing in the model.
	var mine []step
	for range k {
		kind := opComment
		if g.rng.IntN(3) == 0 {
			kind = opCreate
		}
		s, ok := g.planAs(target, kind)
		if !ok {
			s, ok = g.planAs(target, opCreate)
		}
		if !ok {
			return errors.New("bench: removed member cannot act")
		}
		s.commit = nil
		mine = append(mine, s)
	}
	h := slices.Clone(g.heads)
	if _, err := g.emit(step{m: by, op: &state.Remove{Member: target.id.ID()}, commit: func(*event.Event) {
		target.active = false
	}}, h); err != nil {
		return err
	}
	parents := h
	for _, s := range mine {
		e, err := g.emit(s, parents)
		if err != nil {
			return err
		}
		parents = []event.Ref{e.Ref()}
	}
	g.schedule(scheduled{at: len(g.out) + 20 + g.rng.IntN(replacementLag), kind: schedInvite, inv: &pendingInvite{role: "researcher"}})
	return nil
}

// demotion: an editor takes the editor role from a promoted researcher
// who, unaware, edits a task and comments concurrently. The edit is
// invalidated; the comments stand, since researchers may comment.
func (g *stateGen) demotion() error {
	p := g.pickMember((*gMember).promoted, nil)
	if p == nil {
		// Promote someone now and demote it later.
		if s, ok := g.plan(opPromote, nil); ok && g.left() >= 1 {
			if _, err := g.emit(s, slices.Clone(g.heads)); err != nil {
				return err
			}
			g.schedule(scheduled{at: len(g.out) + 50 + g.rng.IntN(200), kind: schedDemotion})
		}
		return nil
	}
	k := 1 + g.rng.IntN(maxConcurrent)
	if g.left() < 1+k {
		return nil
	}
	by := g.pickMember(func(m *gMember) bool { return m.is("editor") && !m.promoted() }, p)
	if by == nil {
		return nil
	}
	var mine []step
	for i := range k {
		var s step
		ok := false
		if i == 0 {
			s, ok = g.planAs(p, opEdit)
			s.commit = nil // invalidated
		} else {
			// Comments on tasks it may still comment on as a researcher.
			roles := p.roles
			p.roles = []string{"researcher"}
			s, ok = g.planAs(p, opComment)
			p.roles = roles
		}
		if !ok {
			s, ok = g.planAs(p, opCreate)
			s.commit = nil // planned as an editor: it may be invalidated
		}
		if !ok {
			return errors.New("bench: demoted member cannot act")
		}
		mine = append(mine, s)
	}
	h := slices.Clone(g.heads)
	if _, err := g.emit(step{m: by, op: &state.RoleRevoke{Member: p.id.ID(), Role: "editor"}, commit: func(*event.Event) {
		p.roles = []string{"researcher"}
	}}, h); err != nil {
		return err
	}
	parents := h
	for _, s := range mine {
		e, err := g.emit(s, parents)
		if err != nil {
			return err
		}
		parents = []event.Ref{e.Ref()}
	}
	return nil
}

// pair has two members write at once, each on the state before the
// other's event. Only ops that commute with one another are paired.
func (g *stateGen) pair() (bool, error) {
	pairable := func(k opKind) opKind {
		switch k {
		case opCreate, opComment, opStatus, opEdit, opAssign:
			return k
		}
		return opComment
	}
	a, ok := g.plan(pairable(g.pickKind()), nil)
	if !ok {
		return false, nil
	}
	b, ok := g.plan(pairable(g.pickKind()), a.m)
	if !ok {
		return false, nil
	}
	h := slices.Clone(g.heads)
	if _, err := g.emit(a, h); err != nil {
		return false, err
	}
	if _, err := g.emit(b, h); err != nil {
		return false, err
	}
	return true, nil
}

func (g *stateGen) pickKind() opKind {
	total := 0
	for _, x := range stepMix {
		total += x.weight
	}
	r := g.rng.IntN(total)
	for _, x := range stepMix {
		if r < x.weight {
			return x.kind
		}
		r -= x.weight
	}
	return opComment
}

// pickMember picks an active member that ok accepts (nil: any), other than
// not, weighted by how much each writes.
func (g *stateGen) pickMember(ok func(*gMember) bool, not *gMember) *gMember {
	total := 0.0
	for _, m := range g.members {
		if m.active && m != not && (ok == nil || ok(m)) {
			total += m.weight
		}
	}
	if total == 0 {
		return nil
	}
	r := g.rng.Float64() * total
	var last *gMember
	for _, m := range g.members {
		if m.active && m != not && (ok == nil || ok(m)) {
			last = m
			if r -= m.weight; r < 0 {
				return m
			}
		}
	}
	return last
}

func (g *stateGen) assignedTo(t *gTask, m *gMember) bool {
	for _, a := range t.assigned {
		if a == m.text {
			return true
		}
		if r, ok := strings.CutPrefix(a, "role:"); ok && m.is(r) {
			return true
		}
	}
	return false
}

func (g *stateGen) facts(t *gTask, m *gMember) *charter.TaskFacts {
	return &charter.TaskFacts{VisibleTo: t.visibleTo, AssignedToActor: g.assignedTo(t, m), CreatedByActor: t.creator == m}
}

// pickTask picks an open task m may do a on (a == "": that m can see)
// and that ok accepts (nil: any), favouring recent tasks.
func (g *stateGen) pickTask(m *gMember, a charter.Action, ok func(*gTask) bool) *gTask {
	if len(g.pool) == 0 {
		return nil
	}
	for range 12 {
		r := g.rng.Float64()
		t := g.pool[len(g.pool)-1-int(r*r*float64(len(g.pool)))]
		if ok != nil && !ok(t) {
			continue
		}
		f := g.facts(t, m)
		if a == "" && g.c.CanSee(m.roles, *f) || a != "" && g.c.Allows(m.roles, a, nil, f) == nil {
			return t
		}
	}
	return nil
}

// plan plans an op of kind k by a member able to do it, other than not.
func (g *stateGen) plan(k opKind, not *gMember) (step, bool) {
	editor := func(m *gMember) bool { return m.is("editor") }
	var who func(*gMember) bool
	switch k {
	case opEdit, opAssign, opUnassign, opMove, opArchive, opPromote, opDemote:
		who = editor
	case opStatus:
		// Half the time a researcher reports on a task assigned to it.
		if g.rng.IntN(2) == 0 {
			for range 3 {
				if m := g.pickMember(func(m *gMember) bool { return !m.is("editor") }, not); m != nil {
					if s, ok := g.planAs(m, k); ok {
						return s, true
					}
				}
			}
		}
		who = editor
	}
	for range 3 {
		m := g.pickMember(who, not)
		if m == nil {
			break
		}
		if s, ok := g.planAs(m, k); ok {
			return s, true
		}
	}
	return step{}, false
}

var words = strings.Fields(`the a of to and in for on with by from records filing
invoice shipment port ledger court council contract budget audit source lead
interview transcript document leak archive dataset timeline map photo video
company director minister donor account transfer offshore subsidiary permit
tender vendor invoice claim denial response deadline draft review check verify
compare trace confirm request obtain follow scrape translate summarise annotate
late missing unclear signed unsigned second third revised original public
regional municipal federal internal leaked redacted partial full quarterly`)

func (g *stateGen) words(lo, hi int) string {
	n := lo + g.rng.IntN(hi-lo+1)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[g.rng.IntN(len(words))])
	}
	return b.String()
}

func (g *stateGen) title() string {
	t := g.words(3, 9)
	return strings.ToUpper(t[:1]) + t[1:]
}

func (g *stateGen) due() string {
	return fmt.Sprintf("2027-%02d-%02d", 1+g.rng.IntN(12), 1+g.rng.IntN(28))
}

// nextStatus moves a task along its life, mostly forward.
func (g *stateGen) nextStatus(s state.Status) state.Status {
	if g.rng.IntN(10) == 0 {
		return state.StatusDone
	}
	switch s {
	case state.StatusNew:
		return state.StatusStarted + state.Status(g.rng.IntN(2))
	case state.StatusStarted, state.StatusHelpWanted:
		return state.StatusWorkingOn
	case state.StatusWorkingOn:
		if g.rng.IntN(4) == 0 {
			return state.StatusHelpWanted
		}
		return state.StatusReadyForReview
	case state.StatusReadyForReview:
		if g.rng.IntN(4) == 0 {
			return state.StatusWorkingOn
		}
		return state.StatusReviewing
	case state.StatusReviewing:
		if g.rng.IntN(5) == 0 {
			return state.StatusWorkingOn
		}
		return state.StatusDone
	}
	return state.StatusWorkingOn
}

func (g *stateGen) addTask(t *gTask) {
	if len(g.pool) == poolSize {
		g.pool[0].open = false
		g.pool = slices.Delete(g.pool, 0, 1)
	}
	t.open = true
	g.pool = append(g.pool, t)
}

func (g *stateGen) finish(t *gTask) {
	if !t.open {
		return
	}
	t.open = false
	g.pool = slices.DeleteFunc(g.pool, func(x *gTask) bool { return x == t })
	if len(g.done) == doneSize {
		g.done = slices.Delete(g.done, 0, 1)
	}
	g.done = append(g.done, t)
}

// planAs plans an op of kind k by m, if m may do one now.
func (g *stateGen) planAs(m *gMember, k opKind) (step, bool) {
	c := g.c
	switch k {
	case opCreate:
		if c.Allows(m.roles, charter.CreateTask, nil, nil) != nil {
			return step{}, false
		}
		op := &state.TaskCreate{Title: g.title()}
		if g.rng.IntN(2) == 0 {
			op.Body = g.words(10, 80)
		}
		if g.rng.IntN(4) == 0 {
			op.Due = g.due()
		}
		var parent *gTask
		if g.rng.IntN(5) == 0 {
			parent = g.pickTask(m, "", nil)
			if parent != nil {
				op.Parent = parent.id
			}
		}
		if m.is("editor") {
			if g.rng.IntN(4) != 0 {
				op.VisibleTo = []string{"editor", "researcher"}
			}
			if g.rng.IntN(10) < 3 {
				if a := g.pickAssignee(m); a != "" {
					op.Assignees = []string{a}
				}
			}
		}
		vis := op.VisibleTo
		if len(vis) == 0 {
			vis = c.NewTaskVisibility(m.roles)
		}
		vis = slices.Compact(slices.Sorted(slices.Values(vis)))
		return step{m: m, op: op, commit: func(e *event.Event) {
			g.addTask(&gTask{id: e.ID(), creator: m, parent: parent, visibleTo: vis, assigned: slices.Clone(op.Assignees)})
		}}, true

	case opComment:
		t := g.pickTask(m, charter.Comment, nil)
		if t == nil {
			return step{}, false
		}
		return step{m: m, op: &state.TaskComment{Task: t.id, Text: g.words(4, 45)}}, true

	case opStatus:
		t := g.pickTask(m, charter.SetStatus, nil)
		if t == nil {
			return step{}, false
		}
		s := g.nextStatus(t.status)
		return step{m: m, op: &state.TaskStatus{Task: t.id, Status: s}, commit: func(*event.Event) {
			t.status = s
			if s == state.StatusDone {
				g.finish(t)
			}
		}}, true

	case opEdit:
		t := g.pickTask(m, charter.EditTask, nil)
		if t == nil {
			return step{}, false
		}
		op := &state.TaskEdit{Task: t.id}
		switch r := g.rng.IntN(20); {
		case r < 10:
			s := g.title()
			op.Title = &s
		case r < 17:
			s := g.words(10, 80)
			op.Body = &s
		case r < 19:
			s := g.due()
			op.Due = &s
		default:
			s := ""
			op.Due = &s
		}
		return step{m: m, op: op}, true

	case opAssign:
		t := g.pickTask(m, "", nil)
		if t == nil {
			return step{}, false
		}
		a := g.pickAssignee(m)
		if a == "" || slices.Contains(t.assigned, a) {
			return step{}, false
		}
		return step{m: m, op: &state.TaskAssign{Task: t.id, Assignee: a}, commit: func(*event.Event) {
			if !slices.Contains(t.assigned, a) {
				t.assigned = append(t.assigned, a)
			}
		}}, true

	case opUnassign:
		t := g.pickTask(m, "", func(t *gTask) bool { return len(t.assigned) > 0 })
		if t == nil {
			return step{}, false
		}
		a := t.assigned[g.rng.IntN(len(t.assigned))]
		if c.Allows(m.roles, charter.AssignTask, g.assigneeRoles(a), nil) != nil {
			return step{}, false
		}
		return step{m: m, op: &state.TaskUnassign{Task: t.id, Assignee: a}, commit: func(*event.Event) {
			t.assigned = slices.DeleteFunc(t.assigned, func(x string) bool { return x == a })
		}}, true

	case opMove:
		t := g.pickTask(m, charter.EditTask, nil)
		if t == nil {
			return step{}, false
		}
		var to *gTask
		if t.parent == nil || g.rng.IntN(3) != 0 {
			to = g.pickTask(m, "", func(p *gTask) bool {
				for x := p; x != nil; x = x.parent {
					if x == t {
						return false // would close a cycle
					}
				}
				return p != t.parent
			})
			if to == nil {
				return step{}, false
			}
		}
		op := &state.TaskMove{Task: t.id}
		if to != nil {
			op.Parent = to.id
		}
		return step{m: m, op: op, commit: func(*event.Event) { t.parent = to }}, true

	case opArchive:
		if len(g.done) == 0 {
			return step{}, false
		}
		i := g.rng.IntN(len(g.done))
		t := g.done[i]
		if c.Allows(m.roles, charter.ArchiveTask, nil, g.facts(t, m)) != nil {
			return step{}, false
		}
		return step{m: m, op: &state.TaskArchive{Task: t.id, Archived: true}, commit: func(*event.Event) {
			g.done = slices.DeleteFunc(g.done, func(x *gTask) bool { return x == t })
		}}, true

	case opPromote:
		if g.pickMember((*gMember).promoted, nil) != nil && g.rng.IntN(2) == 0 {
			return step{}, false // a promoted editor or two at a time
		}
		r := g.pickMember(func(x *gMember) bool { return slices.Equal(x.roles, []string{"researcher"}) }, m)
		if r == nil || c.Allows(m.roles, charter.AssignRole, []string{"editor"}, nil) != nil {
			return step{}, false
		}
		return step{m: m, op: &state.RoleAssign{Member: r.id.ID(), Role: "editor"}, commit: func(*event.Event) {
			r.roles = []string{"editor", "researcher"}
		}}, true

	case opDemote:
		p := g.pickMember((*gMember).promoted, m)
		if p == nil || c.Allows(m.roles, charter.RevokeRole, []string{"editor"}, nil) != nil {
			return step{}, false
		}
		return step{m: m, op: &state.RoleRevoke{Member: p.id.ID(), Role: "editor"}, commit: func(*event.Event) {
			p.roles = []string{"researcher"}
		}}, true
	}
	return step{}, false
}

// pickAssignee picks whom m assigns a task to: usually an active
// researcher, sometimes a role. "" if m may not.
func (g *stateGen) pickAssignee(m *gMember) string {
	var a string
	var target []string
	if g.rng.IntN(4) == 0 {
		role := "researcher"
		if g.rng.IntN(3) == 0 {
			role = "editor"
		}
		a, target = "role:"+role, []string{role}
	} else {
		editor := g.rng.IntN(5) == 0
		x := g.pickMember(func(x *gMember) bool { return x.is("editor") == editor }, nil)
		if x == nil {
			return ""
		}
		a, target = x.text, x.roles
	}
	if g.c.Allows(m.roles, charter.AssignTask, target, nil) != nil {
		return ""
	}
	return a
}

// assigneeRoles returns the roles an assignee names: the role, or the
// member's roles (none once it is gone).
func (g *stateGen) assigneeRoles(a string) []string {
	if r, ok := strings.CutPrefix(a, "role:"); ok {
		return []string{r}
	}
	for _, m := range g.members {
		if m.text == a && m.active {
			return m.roles
		}
	}
	return nil
}

// CachedStateLog is GenerateStateLog with a cache: a log of at least
// 50,000 events is saved under os.TempDir(), in a file named by the
// parameters, the generator's version and the desk charter's hash, and
// read back by later calls instead of being signed again.
func CachedStateLog(n, members int, seed uint64) ([]*event.Event, event.ID, error) {
	if n < 50_000 {
		return GenerateStateLog(n, members, seed)
	}
	c, err := charter.Template("desk")
	if err != nil {
		return nil, event.ID{}, err
	}
	wire, err := c.MarshalBinary()
	if err != nil {
		return nil, event.ID{}, err
	}
	h := sha256.Sum256(wire)
	path := filepath.Join(os.TempDir(), fmt.Sprintf("pursuance-statelog-v%d-n%d-m%d-s%d-%s.bin", stateLogVersion, n, members, seed, hex.EncodeToString(h[:6])))
	if evs, err := readLog(path, n); err == nil {
		return evs, evs[0].ID(), nil
	}
	evs, pid, err := GenerateStateLog(n, members, seed)
	if err != nil {
		return nil, event.ID{}, err
	}
	if err := writeLog(path, evs); err != nil {
		os.Remove(path)
	}
	return evs, pid, nil
}

const logMagic = "pursuance-statelog\n"

func writeLog(path string, evs []*event.Event) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(logMagic)
	var buf []byte
	buf = binary.AppendUvarint(buf, uint64(len(evs)))
	w.Write(buf)
	for _, e := range evs {
		b := e.Encode()
		buf = binary.AppendUvarint(buf[:0], uint64(len(b)))
		w.Write(buf)
		w.Write(b)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// readLog reads a log saved by writeLog, decoding on every core.
func readLog(path string, n int) ([]*event.Event, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(string(b[:min(len(b), len(logMagic))]), logMagic)
	if !ok || rest != "" {
		return nil, errors.New("bench: not a saved state log")
	}
	b = b[len(logMagic):]
	count, k := binary.Uvarint(b)
	if k <= 0 || count != uint64(n) {
		return nil, errors.New("bench: saved state log has the wrong size")
	}
	b = b[k:]
	parts := make([][]byte, n)
	for i := range parts {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return nil, io.ErrUnexpectedEOF
		}
		parts[i], b = b[k:k+int(l)], b[k+int(l):]
	}
	if len(b) != 0 {
		return nil, errors.New("bench: trailing bytes in saved state log")
	}
	evs := make([]*event.Event, n)
	errs := make([]error, runtime.GOMAXPROCS(0))
	per := (n + len(errs) - 1) / len(errs)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := w * per; i < min(n, (w+1)*per); i++ {
				if evs[i], errs[w] = event.Decode(parts[i]); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return evs, nil
}
