package state

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// The scenario language. A file under testdata/scenarios holds cases, each
// starting with a line "== name". Lines are:
//
//	NAME: OP ARGS...          NAME signs OP on top of everything it has seen;
//	                          the op must pass NAME's own rules check
//	NAME!: OP ARGS...         the same, unchecked (a malicious client)
//	NAME^: OP ARGS...         NAME signs OP at the seq of its last event
//	                          again, forking its chain (unchecked)
//	LABEL = NAME: OP ARGS...  the same, naming the event LABEL
//	NAME: at=T OP ARGS...     the same, claiming the time T (the clock
//	                          counts one per event signed otherwise;
//	                          T in ms, or 30d, 12h)
//	clock T                   the clock jumps to T
//	expect inactive NAME / expect active NAME (at the heads of the log)
//	expect claims N [CANCELLED]  open succession claims
//	sync A B...               A, B... exchange everything they have seen
//	sync                      everyone exchanges everything
//	expect LABEL accepted
//	expect LABEL rejected "substring of the reason"
//	expect LABEL note "substring of the note" (what an accepted event came to)
//	expect roles NAME ROLE... (no roles: "expect roles NAME -"; not a member: "expect roles NAME gone")
//	expect task LABEL FIELD VALUE   (FIELD: title status parent assignees archived due comments)
//	expect members N
//
// Several pursuances (links.txt): NAME@P, sync@P and expect@P act in
// pursuance P (a line without @ acts in the pursuance named ""); each
// actor has one identity and, in each pursuance, its own chain and what
// it has seen. Link ops, what one pursuance's members learn of another's
// log through a link's channel, and the expectations on origins and
// reports are described in link_test.go.
//
// OPs: found TEMPLATE|file:NAME | invite ROLE [uses=N] [expires=T]
// [seal=KEYUPDATE]... (labels an invite) |
// uninvite INVITE | join INVITE |
// assign NAME ROLE | revoke NAME ROLE | remove NAME | leave |
// propose OP ARGS... | approve PROPOSAL | amend TEMPLATE |
// task "TITLE" [parent=LABEL] [visible=R,R] [assign=WHO,WHO] |
// edit TASK title="T" | move TASK PARENT|root | tassign TASK WHO |
// tunassign TASK WHO | status TASK STATUS | comment TASK "TEXT" |
// archive TASK | claim ROLE | succeed CLAIM | nodeaddr
// onion:WORD|withdraw|URL (NAME announces its node; expect nodeaddr NAME
// onion:WORD|none) | rotate group|ROLE [gen=N] [+NAME] [-NAME] (a new key
// generation sealed to the entitled members, give or take; "chain": the
// current one chained under it; "sibling=LABEL": that generation chained
// beside it) | rekem [same]
// (NAME publishes a new KEM key of its own; "same": its current one
// again). WHO is a NAME or role:ROLE.
//
// At the end of a case, every expectation is checked against the state
// built from all events, and the same state is built from several random
// delivery orders through partial replicas to check convergence.

type actor struct {
	name  string
	id    *identity.Identity
	chain event.Chain
	seen  map[event.ID]*event.Event
	// Devices (device_test.go): an actor named MEMBER/DEVICE is a device
	// of MEMBER, signing with its own key; devKEM is a device's own KEM
	// key (a device actor's id's; a root's made when it certifies one),
	// and kems the member's KEM keys a device actor holds, oldest first.
	devKEM *identity.KEMPrivateKey
	kems   []*identity.KEMPrivateKey
}

// tb is what the harness needs of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
}

type world struct {
	t tb
	// Several pursuances: the fields below (pursue, all, and each actor's
	// chain and seen) are those of the current one, cur; the others wait
	// in ctxs (use switches).
	cur         string
	ctxs        map[string]*pctx
	ctxOrder    []string
	labelCtx    map[string]string     // the pursuance each label's event is in
	linkSecrets map[event.ID]linkInfo // the links made, by ID

	rng     *rand.Rand
	actors  map[string]*actor
	order   []string
	labels  map[string]event.ID
	invites map[string]*identity.SigningKey
	all     map[event.ID]*event.Event
	pursue  event.ID
	clock   uint64
	at      uint64 // when set, the claimed time of the next event signed
}

func newWorld(t tb, seed uint64) *world {
	return &world{t: t, rng: rand.New(rand.NewPCG(seed, 1)), actors: map[string]*actor{}, labels: map[string]event.ID{},
		invites: map[string]*identity.SigningKey{}, all: map[event.ID]*event.Event{},
		ctxs: map[string]*pctx{}, ctxOrder: []string{""}, labelCtx: map[string]string{}, linkSecrets: map[event.ID]linkInfo{}}
}

type seededReader struct{ r *rand.Rand }

func (s seededReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.r.Uint32())
	}
	return len(p), nil
}

func (w *world) actor(name string) *actor {
	if a, ok := w.actors[name]; ok {
		return a
	}
	id, err := identity.New(name, seededReader{w.rng})
	if err != nil {
		w.t.Fatal(err)
	}
	a := &actor{name: name, id: id, chain: event.Chain{Key: id.SigningKey(), Pursuance: w.pursue}, seen: map[event.ID]*event.Event{}}
	w.actors[name] = a
	w.order = append(w.order, name)
	return a
}

// when parses a time of the scenario language: milliseconds, or a number
// of days (30d) or hours (12h) in milliseconds.
func (w *world) when(s string) uint64 {
	unit := uint64(1)
	switch {
	case strings.HasSuffix(s, "d"):
		s, unit = s[:len(s)-1], 86400_000
	case strings.HasSuffix(s, "h"):
		s, unit = s[:len(s)-1], 3600_000
	}
	var v uint64
	if _, err := fmt.Sscan(s, &v); err != nil {
		w.t.Fatalf("bad time %q", s)
	}
	return v * unit
}

// logOrder sorts events into log order.
func logOrder(evs []*event.Event) []*event.Event {
	slices.SortFunc(evs, func(x, y *event.Event) int {
		return cmp.Or(cmp.Compare(x.Lamport, y.Lamport), x.ID().Compare(y.ID()))
	})
	return evs
}

func buildFrom(t tb, pursuance event.ID, set map[event.ID]*event.Event) *State {
	t.Helper()
	evs := make([]*event.Event, 0, len(set))
	for _, e := range set {
		evs = append(evs, e)
	}
	s, err := Build(pursuance, logOrder(evs), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// heads returns the refs of a's seen events that no seen event links to.
func (a *actor) heads() []event.Ref {
	linked := map[event.ID]bool{}
	for _, e := range a.seen {
		for _, p := range e.Parents {
			linked[p] = true
		}
		linked[e.Backlink] = true
	}
	var out []event.Ref
	for id, e := range a.seen {
		if !linked[id] {
			out = append(out, e.Ref())
		}
	}
	slices.SortFunc(out, func(x, y event.Ref) int { return x.ID.Compare(y.ID) })
	return out
}

func (w *world) sign(a *actor, op Op) *event.Event {
	w.t.Helper()
	body, err := EncodeOp(op)
	if err != nil {
		w.t.Fatal(err)
	}
	w.clock++
	t := w.clock
	if w.at != 0 {
		t, w.at = w.at, 0
	}
	var e *event.Event
	if op.Kind() == event.KindGenesis {
		e, err = a.chain.Genesis(t, body)
		w.pursue = e.ID()
		for _, b := range w.actors {
			b.chain.Pursuance = w.pursue
		}
	} else {
		e, err = a.chain.Next(op.Kind(), a.heads(), t, body)
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// tokens splits a line into words, keeping "quoted strings" whole.
func tokens(s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return append(out, s[1:])
			}
			out = append(out, s[1:end+1])
			s = s[end+2:]
			continue
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return append(out, s)
		}
		// key="quoted value"
		if q := strings.Index(s[:i], "=\""); q >= 0 {
			end := strings.IndexByte(s[q+2:], '"')
			if end >= 0 {
				out = append(out, s[:q+1]+s[q+2:q+2+end])
				s = s[q+3+end:]
				continue
			}
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

func (w *world) id(label string) event.ID {
	id, ok := w.labels[label]
	if !ok {
		w.t.Fatalf("no event labelled %q", label)
	}
	return id
}

func (w *world) who(s string) string {
	if strings.HasPrefix(s, "role:") {
		return s
	}
	return w.actor(s).id.ID().String()
}

// charter returns a template, or with "file:NAME" the charter in
// testdata/scenarios/charters/NAME.yaml.
func (w *world) charter(name string) *charter.Charter {
	w.t.Helper()
	if f, ok := strings.CutPrefix(name, "file:"); ok {
		src, err := os.ReadFile(filepath.Join("testdata", "scenarios", "charters", f+".yaml"))
		if err != nil {
			w.t.Fatal(err)
		}
		c, err := charter.Parse(src)
		if err != nil {
			w.t.Fatal(err)
		}
		return c
	}
	c, err := charter.Template(name)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// op parses an OP and its arguments into an Op signed by a.
func (w *world) op(a *actor, args []string) Op {
	w.t.Helper()
	need := func(n int) {
		if len(args) < n {
			w.t.Fatalf("%s: needs %d arguments", args[0], n-1)
		}
	}
	pub := a.id.Public()
	switch args[0] {
	case "found":
		need(2)
		c := w.charter(args[1])
		wire, err := c.MarshalBinary()
		if err != nil {
			w.t.Fatal(err)
		}
		return &Genesis{Charter: wire, Name: pub.Name, KEM: pub.KEM.Bytes(), Binding: pub.KEMBinding[:], Root: w.rootLine(a, args[2:])}
	case "amend":
		need(2)
		wire, _ := w.charter(args[1]).MarshalBinary()
		return &CharterAmend{Charter: wire}
	case "invite":
		need(2)
		k, err := identity.NewSigningKey(seededReader{w.rng})
		if err != nil {
			w.t.Fatal(err)
		}
		w.invites[fmt.Sprint(len(w.invites))] = k
		inv := &Invite{Key: k.Public(), Role: args[1]}
		for _, kv := range args[2:] {
			if v, ok := strings.CutPrefix(kv, "uses="); ok {
				fmt.Sscan(v, &inv.Uses)
			}
			// expires=T: a join claiming a time after T (the harness's
			// clock counts one per event signed) is too late.
			if v, ok := strings.CutPrefix(kv, "expires="); ok {
				fmt.Sscan(v, &inv.Expires)
			}
			// seal=LABEL: the generation that key-update published,
			// sealed to the invite (the box's bytes are random: the
			// rules judge which generation, not what no one can open).
			if v, ok := strings.CutPrefix(kv, "seal="); ok {
				e := w.all[w.id(v)]
				op, _ := DecodeOp(e.Kind, e.Body())
				ku, ok := op.(*KeyUpdate)
				if !ok {
					w.t.Fatalf("invite: %s is not a key update", v)
				}
				box := make([]byte, SealedSeedSize)
				io.ReadFull(seededReader{w.rng}, box)
				inv.Boxes = append(inv.Boxes, InviteSeal{Role: ku.Role, Update: e.ID(), Box: box})
				inv.KEM = make([]byte, identity.KEMPublicKeySize)
			}
		}
		return inv
	case "uninvite":
		need(2)
		return &InviteRevoke{Invite: w.id(args[1])}
	case "join":
		need(2)
		inv := w.id(args[1])
		var key *identity.SigningKey
		for _, k := range w.invites {
			if e := w.all[inv]; e != nil {
				op, _ := DecodeOp(e.Kind, e.Body())
				if p, ok := op.(*Proposal); ok {
					op, _ = DecodeOp(p.Action, p.Body)
				}
				if i, ok := op.(*Invite); ok && i.Key == k.Public() {
					key = k
				}
			}
		}
		if key == nil {
			w.t.Fatalf("join: %s is not an invite", args[1])
		}
		line := w.rootLine(a, args[2:])
		joiner := a.id.ID()
		if len(line) > 0 {
			joiner = line[0].Identity
		}
		return &Join{Invite: inv, Proof: key.Sign(JoinMessage(w.pursue, inv, joiner)), Name: pub.Name, KEM: pub.KEM.Bytes(), Binding: pub.KEMBinding[:], Root: line}
	case "assign":
		need(3)
		return &RoleAssign{Member: w.actor(args[1]).id.ID(), Role: args[2]}
	case "revoke":
		need(3)
		return &RoleRevoke{Member: w.actor(args[1]).id.ID(), Role: args[2]}
	case "remove":
		need(2)
		return &Remove{Member: w.actor(args[1]).id.ID()}
	case "leave":
		return &Leave{}
	case "propose":
		need(2)
		inner := w.op(a, args[1:])
		body, _ := EncodeOp(inner)
		return &Proposal{Action: inner.Kind(), Body: body}
	case "approve":
		need(2)
		return &Approval{Proposal: w.id(args[1])}
	case "claim":
		need(2)
		return &Succession{Role: args[1]}
	case "succeed":
		need(2)
		return &Succeed{Claim: w.id(args[1])}
	case "task":
		need(2)
		tc := &TaskCreate{Title: args[1]}
		for _, kv := range args[2:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "parent":
				tc.Parent = w.id(v)
			case "visible":
				tc.VisibleTo = strings.Split(v, ",")
			case "assign":
				for _, x := range strings.Split(v, ",") {
					tc.Assignees = append(tc.Assignees, w.who(x))
				}
			case "due":
				tc.Due = v
			default:
				w.t.Fatalf("task: unknown %q", k)
			}
		}
		return tc
	case "edit":
		need(3)
		te := &TaskEdit{Task: w.id(args[1])}
		for _, kv := range args[2:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "title":
				te.Title = &v
			case "body":
				te.Body = &v
			case "due":
				te.Due = &v
			}
		}
		return te
	case "move":
		need(3)
		m := &TaskMove{Task: w.id(args[1])}
		if args[2] != "root" {
			m.Parent = w.id(args[2])
		}
		return m
	case "tassign":
		need(3)
		return &TaskAssign{Task: w.id(args[1]), Assignee: w.who(args[2])}
	case "tunassign":
		need(3)
		return &TaskUnassign{Task: w.id(args[1]), Assignee: w.who(args[2])}
	case "status":
		need(3)
		st, err := ParseStatus(args[2])
		if err != nil {
			w.t.Fatal(err)
		}
		return &TaskStatus{Task: w.id(args[1]), Status: st}
	case "comment":
		need(3)
		return &TaskComment{Task: w.id(args[1]), Text: args[2]}
	case "archive":
		need(2)
		return &TaskArchive{Task: w.id(args[1]), Archived: true}
	case "relays":
		// relays +URL -URL ...: a relays event.
		r := &Relays{}
		for _, x := range args[1:] {
			if u, ok := strings.CutPrefix(x, "+"); ok {
				r.Add = append(r.Add, u)
			} else if u, ok := strings.CutPrefix(x, "-"); ok {
				r.Remove = append(r.Remove, u)
			}
		}
		return r
	case "link", "accept", "end", "handoff", "receive", "report":
		return w.linkOp(a, args)
	case "profile":
		return w.profileOp(a, args)
	case "device":
		return w.deviceOp(a, args)
	case "nodeaddr":
		return w.nodeAddrOp(args)
	case "rekem":
		if w.hasDevices(a) {
			return w.deviceRekem(a)
		}
		if len(args) > 1 && args[1] == "same" {
			return &MemberKey{KEM: pub.KEM.Bytes(), Binding: pub.KEMBinding[:]}
		}
		next, err := a.id.RotateKEM(seededReader{w.rng})
		if err != nil {
			w.t.Fatal(err)
		}
		a.id = next
		pub = next.Public()
		return &MemberKey{KEM: pub.KEM.Bytes(), Binding: pub.KEMBinding[:]}
	case "rotate":
		// rotate group|ROLE [gen=N] [+NAME] [-NAME]: a new generation
		// sealed to whoever a's view says is entitled, give or take.
		need(2)
		role := args[1]
		if role == "group" {
			role = ""
		}
		s := buildFrom(w.t, w.pursue, a.seen)
		ku := &KeyUpdate{Role: role, Gen: s.b().auth.currentGen(role) + 1}
		to := map[identity.PublicKey]bool{}
		for _, m := range s.b().auth.entitled(role) {
			to[m] = true
		}
		for _, x := range args[2:] {
			switch {
			case strings.HasPrefix(x, "gen="):
				fmt.Sscan(x[4:], &ku.Gen)
			case x == "chain":
				// The current generation chained under the new one (really,
				// below, when a holds it; else random bytes: the rules judge
				// that a chain is there and what it names, not what no one
				// can open).
				cur, ok := s.b().auth.current(role)
				if !ok {
					w.t.Fatalf("rotate chain: %s has no generation", role)
				}
				ku.Prev, ku.Chain = cur.Update, make([]byte, ChainedSeedSize)
				io.ReadFull(seededReader{w.rng}, ku.Chain)
			case strings.HasPrefix(x, "+"):
				to[w.actor(x[1:]).id.ID()] = true
			case strings.HasPrefix(x, "-"):
				delete(to, w.actor(x[1:]).id.ID())
			}
		}
		k := &keys.Key{Scope: keys.Scope{Pursuance: w.pursue, Role: role}, Gen: ku.Gen}
		if _, err := io.ReadFull(seededReader{w.rng}, k.Seed[:]); err != nil {
			w.t.Fatal(err)
		}
		if !ku.Prev.IsZero() {
			if h, ok := w.buildFor(a).Held()[ku.Prev]; ok && h.Key.Gen+1 == ku.Gen {
				box, err := keys.Chain(k, &h.Key)
				if err != nil {
					w.t.Fatal(err)
				}
				ku.Chain = box
			}
		}
		// sibling=LABEL: the generation that key update published chained
		// beside the current one (really, when a holds it; else random
		// bytes, which the rules cannot tell apart).
		var held map[event.ID]HeldKey
		for _, x := range args[2:] {
			l, ok := strings.CutPrefix(x, "sibling=")
			if !ok {
				continue
			}
			if held == nil {
				held = w.buildFor(a).Held()
			}
			id := w.id(l)
			e := w.all[id]
			op, _ := DecodeOp(e.Kind, e.Body())
			sk, ok := op.(*KeyUpdate)
			if !ok {
				w.t.Fatalf("rotate: %s is not a key update", l)
			}
			sib := ChainedSibling{Prev: id, Gen: sk.Gen}
			if h, ok := held[id]; ok && sk.Gen < ku.Gen && sk.Role == role {
				box, err := keys.ChainSibling(k, &h.Key, id)
				if err != nil {
					w.t.Fatal(err)
				}
				sib.Chain = box
			} else {
				sib.Chain = make([]byte, ChainedSeedSize)
				io.ReadFull(seededReader{w.rng}, sib.Chain)
			}
			ku.Siblings = append(ku.Siblings, sib)
		}
		slices.SortFunc(ku.Siblings, func(x, y ChainedSibling) int { return x.Prev.Compare(y.Prev) })
		for m := range to {
			// Sealed to the KEM key m has in a's view (a newer one a has
			// not seen is not known to it); to a non-member's own.
			var kem identity.KEMPublicKey
			if mem, ok := s.Member(m); ok {
				kem = mem.KEM
			} else {
				for _, b := range w.actors {
					if b.id.ID() == m {
						kem = b.id.KEMKey().Public()
					}
				}
			}
			box, err := keys.SealSeed(k, m, kem)
			if err != nil {
				w.t.Fatal(err)
			}
			ku.Boxes = append(ku.Boxes, SealedSeed{Member: m, Box: box})
		}
		slices.SortFunc(ku.Boxes, func(x, y SealedSeed) int { return x.Member.Compare(y.Member) })
		return ku
	}
	w.t.Fatalf("unknown op %q", args[0])
	return nil
}

// do runs one "NAME: OP" line.
func (w *world) do(label, name string, unchecked bool, args []string) {
	w.t.Helper()
	if err := w.try(label, name, unchecked, args); err != nil {
		w.t.Fatalf("%s's own rules refuse %v: %v (use %s!: to sign it anyway)", name, args, err, name)
	}
}

// try signs an op as name; if checked, it first asks name's own state and
// returns its refusal instead of publishing.
func (w *world) try(label, name string, unchecked bool, args []string) error {
	w.t.Helper()
	a := w.actor(name)
	if v, ok := strings.CutPrefix(args[0], "at="); ok && len(args) > 1 {
		// at=T: claim the time T (the harness's clock counts one per
		// event signed), as a backdating client would.
		w.at = w.when(v)
		args = args[1:]
	}
	if args[0] == "join" && len(args) > 1 && a.seen[w.id(args[1])] == nil {
		// A newcomer who has not seen the invite fetches the log its
		// inviter has before joining.
		inv := w.all[w.id(args[1])]
		for _, b := range w.actors {
			if b.id.ID() == inv.Author {
				for id, e := range b.seen {
					a.seen[id] = e
				}
			}
		}
	}
	if len(a.seen) == 0 && args[0] != "found" {
		return fmt.Errorf("%s has not seen the pursuance", name)
	}
	// Modifiers of a task op: "plain" leaves it unsealed; "under=LABEL"
	// wraps it under the generation the key-update LABEL published
	// (repeatable) instead of the scopes' current ones.
	plain, under := false, []event.ID(nil)
	for len(args) > 1 {
		if args[0] == "plain" {
			plain, args = true, args[1:]
		} else if l, ok := strings.CutPrefix(args[0], "under="); ok {
			under, args = append(under, w.id(l)), args[1:]
		} else {
			break
		}
	}
	op := w.op(a, args)
	if IsTaskOp(op) && !plain {
		op = w.seal(a, op, under)
	}
	return w.publish(label, a, op, unchecked)
}

// publish signs op as a's next event; checked, it first asks a's own
// state and returns its refusal instead of publishing.
func (w *world) publish(label string, a *actor, op Op, unchecked bool) error {
	w.t.Helper()
	last := a.chain.Last
	e := w.sign(a, op)
	if op.Kind() != event.KindGenesis && !unchecked {
		s := w.buildFor(a)
		if err := s.Check(e); err != nil {
			a.chain.Last = last // not published: the chain does not move
			return err
		}
	}
	a.seen[e.ID()] = e
	w.all[e.ID()] = e
	if label != "" {
		w.labels[label] = e.ID()
		w.labelCtx[label] = w.cur
	}
	return nil
}

// buildFor folds what a has seen, as a: with its keys.
func (w *world) buildFor(a *actor) *State {
	w.t.Helper()
	x := NewBuilder(w.pursue, nil)
	for _, e := range logOrder(mapValues(a.seen)) {
		if err := x.Add(e); err != nil {
			w.t.Fatal(err)
		}
	}
	// The world's link secrets stand for the link codes members hold
	// (pursuances without a group key keep none in their log).
	var links []keys.LinkSecret
	for _, l := range w.linkSecrets {
		links = append(links, l.secret)
	}
	x.SetSecrets(w.secretsOf(a, links))
	s, err := x.Finish()
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// seal seals a task op as a would, once its view has a group key: wrapped
// under the current generation of each scope that reads the task and
// that a holds (a simpler reader than app's: no boxes to members outside
// the scopes, but to a itself when it holds none of them).
func (w *world) seal(a *actor, op Op, under []event.ID) Op {
	w.t.Helper()
	if len(a.seen) == 0 {
		return op
	}
	s := w.buildFor(a)
	if _, keyed := s.CurrentKey(""); !keyed {
		return op
	}
	var vis []string
	var roleAssignees []string
	switch o := op.(type) {
	case *TaskCreate:
		vis = o.VisibleTo
		if len(vis) == 0 {
			if m, ok := s.Member(w.rootOf(a).id.ID()); ok {
				vis = s.Charter().NewTaskVisibility(m.Roles)
			}
		}
		roleAssignees = o.Assignees
	default:
		if t, ok := s.Task(taskOf(op)); ok {
			vis = t.VisibleTo
			for _, as := range t.Assignees {
				roleAssignees = append(roleAssignees, as.String())
			}
		}
		if o, ok := op.(*TaskAssign); ok {
			roleAssignees = append(roleAssignees, o.Assignee)
		}
	}
	scopes := []string{""}
	if len(vis) > 0 {
		scopes = slices.Clone(vis)
		for _, x := range roleAssignees {
			if as, err := ParseAssignee(x); err == nil && as.IsRole() {
				scopes = append(scopes, as.Role)
			}
		}
	}
	held := s.Held()
	wraps := map[event.ID]keys.Key{}
	for _, sc := range scopes {
		if cur, ok := s.CurrentKey(sc); ok && under == nil {
			if h, ok := held[cur.Update]; ok {
				wraps[cur.Update] = h.Key
			}
		}
	}
	for _, id := range under {
		h, ok := held[id]
		if !ok {
			w.t.Fatalf("seal: %s does not hold %s", a.name, id.Short())
		}
		wraps[id] = h.Key
	}
	var boxes []identity.KEMPublicKey
	if len(wraps) == 0 {
		k := w.secretsOf(a, nil).KEM
		if k == nil {
			k = a.id.KEMKey() // a device that holds no member key
		}
		boxes = append(boxes, k.Public())
	}
	seq := uint64(1)
	if a.chain.Last != nil {
		seq = a.chain.Last.Seq + 1
	}
	sealed, err := SealTask(op, SealedAD(w.pursue, a.id.ID(), seq), wraps, boxes, seededReader{w.rng})
	if err != nil {
		w.t.Fatal(err)
	}
	return sealed
}

func (w *world) sync(names []string) {
	if len(names) == 0 {
		// Everyone who holds something of the current pursuance (in a
		// world of several, the others' members are not its members).
		for _, n := range w.order {
			if len(w.ctxs) == 0 || len(w.actors[n].seen) > 0 {
				names = append(names, n)
			}
		}
	}
	union := map[event.ID]*event.Event{}
	for _, n := range names {
		for id, e := range w.actor(n).seen {
			// A copy learned through a link may lack its body: the one
			// with it wins.
			if u := union[id]; u == nil || !u.HasBody() {
				union[id] = e
			}
		}
	}
	for _, n := range names {
		a := w.actor(n)
		for id, e := range union {
			a.seen[id] = e
		}
	}
}

func (w *world) expect(s *State, args []string) {
	w.t.Helper()
	switch args[0] {
	case "key":
		// expect key group|ROLE GEN LABEL: the current generation and the
		// update that published it.
		role := args[1]
		if role == "group" {
			role = ""
		}
		k, ok := s.CurrentKey(role)
		if !ok || fmt.Sprint(k.Gen) != args[2] || k.Update != w.id(args[3]) {
			w.t.Errorf("current key of %s: got generation %d by %s, want %s by %s", args[1], k.Gen, k.Update.Short(), args[2], args[3])
		}
		return
	case "profile", "profilekey":
		w.expectProfile(s, args)
		return
	case "devices", "forked", "unforked", "holds", "lacks":
		w.expectDevices(s, args)
		return
	case "inactive", "active":
		// expect inactive NAME / expect active NAME: at the heads of the log.
		act, ok := s.Activity(w.actor(args[1]).id.ID())
		if !ok || act.Inactive != (args[0] == "inactive") {
			w.t.Errorf("%s: got member %v, inactive %v since %d; want %s", args[1], ok, act.Inactive, act.Since, args[0])
		}
		return
	case "claims":
		// expect claims N [cancelled]: the open succession claims, and
		// how many of them are cancelled.
		cs := s.Claims()
		cancelled := 0
		for _, c := range cs {
			if c.Cancelled != "" {
				cancelled++
			}
		}
		if got := fmt.Sprint(len(cs)); got != args[1] || len(args) > 2 && fmt.Sprint(cancelled) != args[2] {
			w.t.Errorf("claims: got %d (%d cancelled: %+v), want %s", len(cs), cancelled, cs, strings.Join(args[1:], " "))
		}
		return
	case "nodeaddr":
		w.expectNodeAddr(s, args)
		return
	case "relays":
		// expect relays [URL...]: the relay list, sorted.
		if got, want := strings.Join(s.Relays(), " "), strings.Join(args[1:], " "); got != want {
			w.t.Errorf("relays: got %q, want %q", got, want)
		}
		return
	case "members":
		if got := fmt.Sprint(len(s.Members())); got != args[1] {
			w.t.Errorf("members: got %s, want %s", got, args[1])
		}
		return
	case "roles":
		m, ok := s.Member(w.actor(args[1]).id.ID())
		got := "gone"
		if ok {
			got = strings.Join(m.Roles, " ")
			if got == "" {
				got = "-"
			}
		}
		if want := strings.Join(args[2:], " "); got != want {
			w.t.Errorf("roles of %s: got %q, want %q", args[1], got, want)
		}
		return
	case "task":
		t, ok := s.Task(w.id(args[1]))
		if !ok {
			w.t.Errorf("task %s: not in the state", args[1])
			return
		}
		want := strings.Join(args[3:], " ")
		var got string
		switch args[2] {
		case "creator":
			got = s.NameOf(t.Creator)
		case "title":
			got = t.Title
		case "status":
			got = t.Status.String()
		case "due":
			got = t.Due
		case "archived":
			got = fmt.Sprint(t.Archived)
		case "comments":
			got = fmt.Sprint(len(t.Comments))
		case "parent":
			got = "root"
			for l, id := range w.labels {
				if id == t.Parent {
					got = l
				}
			}
		case "assignees":
			var names []string
			for _, as := range t.Assignees {
				if as.IsRole() {
					names = append(names, as.String())
				} else {
					names = append(names, s.NameOf(as.Member))
				}
			}
			slices.Sort(names)
			got = strings.Join(names, " ")
			if got == "" {
				got = "-"
			}
		default:
			w.t.Fatalf("expect task: unknown field %q", args[2])
		}
		if got != want {
			w.t.Errorf("task %s %s: got %q, want %q", args[1], args[2], got, want)
		}
		return
	}
	en, ok := s.Entry(w.id(args[0]))
	if !ok {
		w.t.Fatalf("expect: %s not in the log", args[0])
	}
	switch args[1] {
	case "accepted":
		if !en.Accepted {
			w.t.Errorf("%s: rejected (%s), want accepted", args[0], en.Reason)
		}
	case "note":
		if !strings.Contains(en.Note, args[2]) {
			w.t.Errorf("%s: note %q, want one containing %q", args[0], en.Note, args[2])
		}
	case "rejected":
		if en.Accepted {
			w.t.Errorf("%s: accepted, want rejected", args[0])
		} else if len(args) > 2 && !strings.Contains(en.Reason, args[2]) {
			w.t.Errorf("%s: rejected for %q, want a reason containing %q", args[0], en.Reason, args[2])
		}
	default:
		w.t.Fatalf("expect: unknown %q", args[1])
	}
}

// runScenario runs one case's lines.
func runScenario(t tb, lines []string) {
	w := newWorld(t, 1)
	type expectation struct {
		ctx  string
		args []string
	}
	var expects []expectation
	for _, line := range lines {
		if i := strings.Index(line, "#"); i >= 0 && !strings.Contains(line[:i], "\"") {
			line = line[:i]
		}
		f := tokens(line)
		if len(f) == 0 {
			continue
		}
		verb, ctx, _ := strings.Cut(f[0], "@")
		switch {
		case verb == "sync":
			w.use(ctx)
			w.sync(f[1:])
		case verb == "learn":
			w.learn(f[1:])
		case verb == "clock":
			// clock T: the harness's clock jumps to T (30d: 30 days, in
			// milliseconds); it counts one per event signed from there.
			if len(f) != 2 {
				t.Fatalf("bad line %q", line)
			}
			w.clock = w.when(f[1])
		case verb == "expect" && len(f) > 1 && (f[1] == "origin" || f[1] == "report" || f[1] == "received"):
			cur := w.cur
			w.expectAcross(f[1:])
			w.use(cur)
		case verb == "expect":
			if len(f) > 1 {
				if c, ok := w.labelCtx[f[1]]; ok && ctx == "" {
					ctx = c
				}
			}
			expects = append(expects, expectation{ctx, f[1:]})
		default:
			label := ""
			if len(f) > 2 && f[1] == "=" {
				label, f = f[0], f[2:]
			}
			name, ok := strings.CutSuffix(f[0], ":")
			if !ok {
				t.Fatalf("bad line %q", line)
			}
			mark := ""
			if strings.HasSuffix(name, "^") || strings.HasSuffix(name, "!") {
				name, mark = name[:len(name)-1], name[len(name)-1:]
			}
			name, ctx, _ = strings.Cut(name, "@")
			name += mark
			w.use(ctx)
			if name, ok := strings.CutSuffix(name, "^"); ok {
				a := w.actor(name)
				if a.chain.Last == nil {
					t.Fatalf("%s has nothing to fork from", name)
				}
				prev := w.all[a.chain.Last.ID]
				if prev.Backlink.IsZero() {
					a.chain.Last = nil
				} else {
					r := w.all[prev.Backlink].Ref()
					a.chain.Last = &r
				}
				w.do(label, name, true, f[1:])
				continue
			}
			name, unchecked := strings.CutSuffix(name, "!")
			w.do(label, name, unchecked, f[1:])
		}
	}
	for _, ctx := range w.ctxOrder {
		w.use(ctx)
		if len(w.all) == 0 {
			continue
		}
		s := buildFrom(t, w.pursue, w.all)
		for _, x := range expects {
			if x.ctx == ctx {
				w.expect(s, x.args)
			}
		}
		if t.Failed() {
			t.Logf("pursuance %q:", ctx)
			for _, en := range s.Log() {
				l := ""
				for k, v := range w.labels {
					if v == en.ID {
						l = k
					}
				}
				t.Logf("%-6s %-14s %-8s lamport %d %v %s %s", l, en.Kind, s.NameOf(en.Author), en.Lamport, en.Accepted, en.Reason, en.Note)
			}
		}
		checkConvergence(t, w, s.Hash())
		// Both ways: a replica keeping its state and extending it as the
		// events come, without keys and with each member's.
		checkIncremental(t, w, 1, replica(t, w, nil))
		for i, name := range w.order {
			if raceEnabled && i > 0 {
				break // the first member's keys only: the race detector is slow
			}
			checkIncremental(t, w, uint64(i+2), replica(t, w, w.actors[name]))
		}
		checkSound(t, s)
		checkStripped(t, w, s)
	}
}

// checkConvergence delivers the events to a replica in random orders,
// building the state at random points of each delivery (from the events
// whose links have arrived), and checks the final state is the same.
func checkConvergence(t tb, w *world, want [32]byte) {
	t.Helper()
	ids := make([]event.ID, 0, len(w.all))
	for id := range w.all {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, event.ID.Compare)
	for round := range 5 {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		have := map[event.ID]*event.Event{}
		rejected := map[event.ID]rejection{}
		pending := slices.Clone(ids)
		for len(pending) > 0 {
			// Deliver the first pending event whose links are all here.
			for i, id := range pending {
				e := w.all[id]
				ok := e.Backlink.IsZero() || have[e.Backlink] != nil
				for _, p := range e.Parents {
					ok = ok && have[p] != nil
				}
				if ok {
					have[id] = e
					pending = slices.Delete(pending, i, i+1)
					break
				}
			}
			if rng.IntN(4) == 0 && have[w.pursue] != nil {
				checkEvidence(t, buildFrom(t, w.pursue, have), rejected)
			}
		}
		final := buildFrom(t, w.pursue, have)
		checkEvidence(t, final, rejected)
		if got := final.Hash(); got != want {
			t.Fatalf("delivery order %d: state hash differs", round)
		}
	}
}

// checkEvidence checks that the audit log gives every rejected event a
// reason, and that an event once rejected by the rules stays rejected as
// the replica learns more events — unless, in between, some event became
// invalidated by strong removal or void by its author's fork: an undone
// removal gives back what it took, and with it the permission a rejected
// event lacked. Invalidations themselves may be undone (docs/rules.md,
// "Monotone evidence").
type rejection struct {
	reason  string
	invalid map[event.ID]bool // the events invalidated or void when it was rejected
}

func checkEvidence(t tb, s *State, rejected map[event.ID]rejection) {
	t.Helper()
	invalid := map[event.ID]bool{}
	for _, en := range s.Log() {
		if !en.Accepted && (strings.HasPrefix(en.Reason, "invalidated") || strings.HasPrefix(en.Reason, "void")) {
			invalid[en.ID] = true
		}
	}
	for _, en := range s.Log() {
		if en.Accepted {
			if then, ok := rejected[en.ID]; ok {
				newly := false
				for id := range invalid {
					newly = newly || !then.invalid[id]
				}
				if !newly {
					t.Fatalf("%s %s was rejected (%s) and is now accepted, with no new invalidation", en.Kind, en.ID.Short(), then.reason)
				}
				delete(rejected, en.ID)
			}
			continue
		}
		if en.Reason == "" {
			t.Fatalf("%s %s rejected with no reason", en.Kind, en.ID.Short())
		}
		// An invalidation may itself be undone (the restriction behind it
		// invalidated or exempted in turn); only rejections by the rules
		// are held to monotonicity.
		if _, ok := rejected[en.ID]; !ok && !invalid[en.ID] {
			rejected[en.ID] = rejection{en.Reason, invalid}
		}
	}
}

// checkSound checks every accepted event against a naive rebuild of the
// state at its parents: the accepted events of its causal past, replayed
// from scratch, with no shortcut.
func checkSound(t tb, s *State) {
	t.Helper()
	b := s.b()
	for _, n := range b.nodes {
		if !n.accepted || n.op.Kind() == event.KindGenesis {
			continue
		}
		a := newAuthState()
		for _, x := range b.nodes {
			if x != n && x.accepted && isAuthority(x.op) && b.inPast(x, n) {
				b.applyAuth(a, x, false)
			}
		}
		_, member := a.members[*n.member]
		v := view{auth: a, task: func(id event.ID) *Task { return naiveTaskAt(b, n, id) }}
		if err := b.permitted(v, n, n.op, *n.member, member, a.roles(*n.member), false); err != nil {
			t.Errorf("accepted %s %s but its parents forbid it: %v", n.e.Kind, n.e.ID().Short(), err)
		}
	}
}

func naiveTaskAt(b *builder, n *node, id event.ID) *Task {
	var t *Task
	for _, x := range b.nodes {
		if !x.accepted || x == n || !b.inPast(x, n) {
			continue
		}
		op := effectiveOp(x)
		if c, ok := op.(*TaskCreate); ok && x.e.ID() == id {
			if cur := b.tasks.at(id); cur != nil {
				t = newTask(&x.e, c, cur.VisibleTo)
				t.Creator = *x.member
			}
			continue
		}
		if c, ok := op.(*TaskSealed); ok && c.Task.IsZero() && x.e.ID() == id {
			t = newSealedTask(&x.e)
			t.Creator = *x.member
			continue
		}
		if c, ok := op.(*LinkReceive); ok && t == nil {
			if em := b.embeddedOf(x, c); em.err == nil && em.ev.ID() == id {
				t = b.newReceivedTask(x, em, x.vis)
				continue
			}
		}
		if t != nil && taskOf(op) == id && x.inert == "" {
			b.applyTaskOp(t, x, op)
		}
	}
	return t
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	n := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var name string
		var lines []string
		flush := func() {
			if name != "" {
				lines := lines
				n++
				t.Run(name, func(t *testing.T) { runScenario(t, lines) })
			}
		}
		sc := bufio.NewScanner(bytes.NewReader(src))
		for sc.Scan() {
			if nm, ok := strings.CutPrefix(sc.Text(), "== "); ok {
				flush()
				name, lines = strings.TrimSpace(nm), nil
				continue
			}
			lines = append(lines, sc.Text())
		}
		flush()
	}
	if n < 20 {
		t.Errorf("only %d scenarios; the issue asks for at least 20", n)
	}
}
