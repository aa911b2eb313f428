package state

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
)

// Links in the scenario language (testdata/scenarios/links.txt). Ops:
//
//	L = NAME@A: link B roles=R[,R]    A offers link L to pursuance B
//	NAME@B: accept L role=S           B accepts it, for its role S
//	NAME@P: end L                     either side ends it
//	H = NAME@A: handoff L "TITLE" [task=LABEL] [body="…"] [due=…]
//	NAME@B: receive H [over=L2] [tamper] [forgesig]
//	                                  B receives hand-off H (over another
//	                                  link; with its body altered; under
//	                                  a signature its author never made)
//	NAME@B: report H [status=S] [comment="…"]
//
// What a member of one pursuance holds of another's log comes through the
// link's channel: headers of every event, bodies of authority and link
// events only (docs/links.md §4):
//
//	learn NAME@A [FROM] [-LABEL…] [~LABEL…]
//	          NAME gets what FROM (default: everyone) has seen of A: task
//	          events without their bodies; -LABEL withholds an event (and
//	          so, as ingest would, everything that follows it), ~LABEL only
//	          its body
//
// Expectations across pursuances, checked for every actor who holds
// events of either side (or those named by by=):
//
//	expect origin H verified|pending|invalid ["reason"] [by=N,N] [to=P]
//	expect report R verified|pending|invalid ["reason"] [by=N,N]
//	expect received H "TITLE" [by=N,N]
//
// (to=P: as pursuance P, which received H, sees it; by default the
// link's peer.) These are checked where they stand, on what each actor
// holds then, so a case can show a verdict changing as history arrives.
//
// At the end of every case (links or not), checkStripped checks that the
// fold of each pursuance's events without task bodies, as the other side
// of a link holds them, reaches the same verdict on every authority and
// link event as the full fold, with and without each member's keys.

// pctx is one pursuance of a world, while another is current.
type pctx struct {
	id     event.ID
	all    map[event.ID]*event.Event
	chains map[string]event.Chain
	seen   map[string]map[event.ID]*event.Event
}

func (w *world) ctx(name string) *pctx {
	c := w.ctxs[name]
	if c == nil {
		c = &pctx{all: map[event.ID]*event.Event{}, chains: map[string]event.Chain{}, seen: map[string]map[event.ID]*event.Event{}}
		w.ctxs[name] = c
		if !slices.Contains(w.ctxOrder, name) {
			w.ctxOrder = append(w.ctxOrder, name)
		}
	}
	return c
}

// use makes pursuance p the current one.
func (w *world) use(p string) {
	if p == w.cur {
		return
	}
	c := w.ctx(w.cur)
	c.id, c.all = w.pursue, w.all
	for n, a := range w.actors {
		c.chains[n], c.seen[n] = a.chain, a.seen
	}
	d := w.ctx(p)
	w.pursue, w.all = d.id, d.all
	for n, a := range w.actors {
		ch, ok := d.chains[n]
		if !ok {
			ch = event.Chain{Key: a.id.SigningKey(), Pursuance: d.id}
		}
		a.chain = ch
		if a.seen = d.seen[n]; a.seen == nil {
			a.seen = map[event.ID]*event.Event{}
		}
	}
	w.cur = p
}

// pursuanceOf returns the ID of pursuance p (founded already).
func (w *world) pursuanceOf(p string) event.ID {
	if p == w.cur {
		return w.pursue
	}
	c := w.ctxs[p]
	if c == nil || c.id.IsZero() {
		w.t.Fatalf("no pursuance %q founded yet", p)
	}
	return c.id
}

// eventOf returns a labelled event, whichever pursuance it is in.
func (w *world) eventOf(label string) *event.Event {
	id := w.id(label)
	if e := w.all[id]; e != nil {
		return e
	}
	c := w.ctxs[w.labelCtx[label]]
	if c == nil || c.all[id] == nil {
		w.t.Fatalf("no event %s", label)
	}
	return c.all[id]
}

// linkSecrets are the worlds' link secrets, by link ID, with the
// pursuances each joins (from, the offer's; to, its peer).
type linkInfo struct {
	secret   keys.LinkSecret
	from, to string
}

// link returns the link a label names: a link offer, or an event over one.
func (w *world) link(label string) linkInfo {
	e := w.eventOf(label)
	op, err := DecodeOp(e.Kind, e.Body())
	if err != nil {
		w.t.Fatalf("%s: %v", label, err)
	}
	if p, ok := op.(*Proposal); ok {
		if op, err = DecodeOp(p.Action, p.Body); err != nil {
			w.t.Fatalf("%s: %v", label, err)
		}
	}
	l, ok := w.linkSecrets[linkOf(op)]
	if !ok {
		w.t.Fatalf("%s names no link of this world", label)
	}
	return l
}

// heldGroup returns the current group key generation a holds in its view,
// if any: what it wraps a link's secret under.
func (w *world) heldGroup(a *actor) (event.ID, *keys.Key) {
	s := w.buildFor(a)
	cur, ok := s.CurrentKey("")
	if !ok {
		return event.ID{}, nil
	}
	h, ok := s.Held()[cur.Update]
	if !ok {
		return event.ID{}, nil
	}
	return cur.Update, &h.Key
}

func (w *world) nextSeq(a *actor) uint64 {
	if a.chain.Last == nil {
		return 1
	}
	return a.chain.Last.Seq + 1
}

// linkOp makes a link op signed by a in the current pursuance.
func (w *world) linkOp(a *actor, args []string) Op {
	w.t.Helper()
	rnd := seededReader{w.rng}
	kv := func(key string) (string, bool) {
		for _, x := range args[1:] {
			if v, ok := strings.CutPrefix(x, key+"="); ok {
				return v, true
			}
		}
		return "", false
	}
	wrap := func(s keys.LinkSecret) (event.ID, []byte) {
		up, g := w.heldGroup(a)
		if g == nil {
			return event.ID{}, nil
		}
		k, err := keys.WrapLinkSecret(g, s, LinkKeyAD(w.pursue, s.ID()), rnd)
		if err != nil {
			w.t.Fatal(err)
		}
		return up, k
	}
	switch args[0] {
	case "link":
		s, err := keys.NewLinkSecret(rnd)
		if err != nil {
			w.t.Fatal(err)
		}
		peer := w.pursuanceOf(args[1])
		roles, _ := kv("roles")
		o := &LinkOffer{Link: s.ID(), Roles: slices.Compact(slices.Sorted(slices.Values(strings.Split(roles, ","))))}
		if o.Peer, err = SealPeer(s, "offer", w.pursue, peer, rnd); err != nil {
			w.t.Fatal(err)
		}
		o.Update, o.Key = wrap(s)
		w.linkSecrets[s.ID()] = linkInfo{secret: s, from: w.cur, to: args[1]}
		return o
	case "accept":
		l := w.link(args[1])
		role, _ := kv("role")
		o := &LinkAccept{Link: l.secret.ID(), Role: role}
		var err error
		if o.Peer, err = SealPeer(l.secret, "accept", w.pursue, w.pursuanceOf(l.from), rnd); err != nil {
			w.t.Fatal(err)
		}
		o.Update, o.Key = wrap(l.secret)
		return o
	case "end":
		return &LinkEnd{Link: w.link(args[1]).secret.ID()}
	case "handoff":
		l := w.link(args[1])
		c := HandoffContent{Title: args[2]}
		if v, ok := kv("task"); ok {
			c.Task = w.id(v)
		}
		c.Body, _ = kv("body")
		c.Due, _ = kv("due")
		h, err := SealHandoff(l.secret, w.pursue, a.id.ID(), w.nextSeq(a), c, rnd)
		if err != nil {
			w.t.Fatal(err)
		}
		return h
	case "receive":
		h := w.eventOf(args[1])
		l := w.link(args[1])
		if over, ok := kv("over"); ok {
			l = w.link(over)
		}
		enc := h.Encode()
		if slices.Contains(args[2:], "tamper") {
			enc[len(enc)-1] ^= 1 // the body is last: its hash no longer matches
		}
		if slices.Contains(args[2:], "forgesig") {
			// The same header and body under a signature the author never
			// made.
			sig := slices.Clone(h.Signature())
			sig[0] ^= 1
			f, err := event.FromParts(h.HeaderBytes(), sig, h.Body())
			if err != nil {
				w.t.Fatal(err)
			}
			enc = f.Encode()
		}
		return &LinkReceive{Link: l.secret.ID(), Handoff: enc}
	case "report":
		l := w.link(args[1])
		var c ReportContent
		if v, ok := kv("status"); ok {
			st, err := ParseStatus(v)
			if err != nil {
				w.t.Fatal(err)
			}
			c.Status = &st
		}
		c.Comment, _ = kv("comment")
		r, err := SealReport(l.secret, w.pursue, a.id.ID(), w.nextSeq(a), w.id(args[1]), c, rnd)
		if err != nil {
			w.t.Fatal(err)
		}
		return r
	}
	w.t.Fatalf("unknown link op %q", args[0])
	return nil
}

// learn runs "learn NAME@A [FROM] [-LABEL…] [~LABEL…]".
func (w *world) learn(args []string) {
	w.t.Helper()
	name, p, _ := strings.Cut(args[0], "@")
	w.use(p)
	src := w.all
	drop, bodyless := map[event.ID]bool{}, map[event.ID]bool{}
	for _, x := range args[1:] {
		switch {
		case strings.HasPrefix(x, "-"):
			drop[w.id(x[1:])] = true
		case strings.HasPrefix(x, "~"):
			bodyless[w.id(x[1:])] = true
		default:
			src = w.actor(x).seen
		}
	}
	w.learnFrom(w.actor(name), src, drop, bodyless)
}

// learnFrom gives a the events of src, as a link's channel carries them
// (no task bodies), without those in drop and those that follow one
// (ingest holds an event whose links have not arrived), and without the
// bodies of those in bodyless.
func (w *world) learnFrom(a *actor, src map[event.ID]*event.Event, drop, bodyless map[event.ID]bool) {
	for _, e := range logOrder(mapValues(src)) {
		id := e.ID()
		if drop[id] {
			continue
		}
		ok := e.Backlink.IsZero() || a.seen[e.Backlink] != nil
		for _, l := range e.Parents {
			ok = ok && a.seen[l] != nil
		}
		if !ok {
			continue
		}
		if !CarriedOverLinks(e.Kind) || bodyless[id] {
			e = e.WithoutBody()
		}
		if have := a.seen[id]; have != nil && have.HasBody() {
			continue
		}
		a.seen[id] = e
	}
}

// holders returns the actors who hold events of pursuance p, and the
// events each holds.
func (w *world) holders(p string) map[string]map[event.ID]*event.Event {
	w.use(p)
	out := map[string]map[event.ID]*event.Event{}
	for n, a := range w.actors {
		if len(a.seen) > 0 {
			out[n] = a.seen
		}
	}
	return out
}

// stateOf folds what actor name holds of pursuance p, with its keys; nil
// when it holds nothing.
func (w *world) stateOf(name, p string) *State {
	w.use(p)
	a := w.actor(name)
	if len(a.seen) == 0 || a.seen[w.pursue] == nil {
		return nil
	}
	return w.buildFor(a)
}

// expectAcross checks "origin" and "report" expectations.
func (w *world) expectAcross(args []string) {
	w.t.Helper()
	if len(args) < 3 {
		w.t.Fatalf("expect %s: needs a label and a verdict", args[0])
	}
	label, want := args[1], args[2]
	reason := ""
	var by []string
	l := w.link(label)
	to := l.to
	for _, x := range args[3:] {
		if v, ok := strings.CutPrefix(x, "by="); ok {
			by = strings.Split(v, ",")
		} else if v, ok := strings.CutPrefix(x, "to="); ok {
			to = v
		} else {
			reason = x
		}
	}
	sender, receiver := l.from, to
	if args[0] == "report" {
		sender, receiver = l.to, l.from
	}
	if by == nil {
		seen := map[string]bool{}
		ps := []string{sender, receiver}
		if args[0] == "received" {
			ps = ps[1:]
		}
		for _, p := range ps {
			for n := range w.holders(p) {
				if !seen[n] {
					seen[n] = true
					by = append(by, n)
				}
			}
		}
		slices.Sort(by)
	}
	e := w.eventOf(label)
	for _, n := range by {
		var got, why string
		s := w.stateOf(n, sender)
		switch args[0] {
		case "origin":
			ov := VerifyHandoff(s, e, w.pursuanceOf(l.from), w.pursuanceOf(to), l.secret)
			got, why = ov.Verdict, ov.Reason
		case "received":
			r := w.stateOf(n, receiver)
			if r == nil {
				w.t.Fatalf("%s holds nothing of %s", n, receiver)
			}
			t, ok := r.Task(e.ID())
			switch {
			case !ok:
				got, why = "no such task", ""
			case t.Origin == nil || t.Origin.Handoff != e.ID() || t.Origin.Sender != e.Author:
				got, why = "a task without its origin", ""
			default:
				got, why = t.Title, ""
			}
		case "report":
			if s == nil {
				got, why = Pending, "nothing of it"
			} else {
				got, why = VerifyReport(s, e.ID())
			}
		default:
			w.t.Fatalf("expect: unknown %q", args[0])
		}
		if got != want || !strings.Contains(why, reason) {
			w.t.Errorf("%s %s as %s sees it: %s (%s), want %s %q", args[0], label, n, got, why, want, reason)
		}
	}
}

// checkStripped checks that the verdict on every authority and link event
// of the current pursuance is the same in the fold of its events without
// task bodies, as the other side of a link holds them, as in s (the full
// fold, no keys) and in the full fold with each member's keys: what the
// other side of a link concludes of a sender is what its own pursuance
// concludes (docs/links.md §6.3).
func checkStripped(t tb, w *world, s *State) {
	t.Helper()
	stripped := map[event.ID]*event.Event{}
	for id, e := range w.all {
		if !CarriedOverLinks(e.Kind) {
			e = e.WithoutBody()
		}
		stripped[id] = e
	}
	bs := buildFrom(t, w.pursue, stripped)
	if bs.Withheld() != 0 {
		t.Fatalf("the stripped log withholds %d authority or link bodies", bs.Withheld())
	}
	views := []*State{s}
	for _, a := range w.actors {
		if len(a.seen) > 0 && a.seen[w.pursue] != nil {
			x := NewBuilder(w.pursue, nil)
			for _, e := range logOrder(mapValues(w.all)) {
				if err := x.Add(e); err != nil {
					t.Fatal(err)
				}
			}
			x.SetSecrets(&Secrets{Member: a.id.ID(), KEM: a.id.KEMKey(), Retired: a.id.RetiredKEMKeys()})
			v, err := x.Finish()
			if err != nil {
				t.Fatal(err)
			}
			views = append(views, v)
		}
	}
	want := bs.Log()
	for _, v := range views {
		for i, en := range v.Log() {
			if !CarriedOverLinks(en.Kind) || en.Sealed {
				continue
			}
			if w := want[i]; w.Accepted != en.Accepted || w.Reason != en.Reason {
				t.Fatalf("%s %s: %v (%s) in the full fold, %v (%s) in the fold without task bodies", en.Kind, en.ID.Short(), en.Accepted, en.Reason, w.Accepted, w.Reason)
			}
		}
	}
}

// TestPinningIsStructural checks that whether a removal is pinned
// (docs/rules.md §6.6) does not depend on the verdicts of its target's
// task events: here bob's only event concurrent with his removal, and
// before it in log order, is a comment, accepted in the full fold and
// rejected, for want of its body, in the other side's. Both must pin the
// removal (it then invalidates the comment in the full fold).
func TestPinningIsStructural(t *testing.T) {
	w := newWorld(t, 3)
	for _, line := range []string{
		"alice: found desk",
		"i = alice: invite editor",
		"bob: join i",
		"sync",
		"T = alice: task \"Story\"",
		"sync",
		"alice: task \"one\"",
		"alice: task \"two\"",
		"RM = alice: remove bob",
		"C = bob: comment T \"before I knew\"",
		"sync",
	} {
		f := tokens(line)
		if f[0] == "sync" {
			w.sync(nil)
			continue
		}
		label := ""
		if len(f) > 2 && f[1] == "=" {
			label, f = f[0], f[2:]
		}
		w.do(label, strings.TrimSuffix(f[0], ":"), false, f[1:])
	}
	full := buildFrom(t, w.pursue, w.all)
	stripped := map[event.ID]*event.Event{}
	for id, e := range w.all {
		if !CarriedOverLinks(e.Kind) {
			e = e.WithoutBody()
		}
		stripped[id] = e
	}
	other := buildFrom(t, w.pursue, stripped)
	c, rm := w.id("C"), w.id("RM")
	if full.b().at(c) > full.b().at(rm) {
		t.Fatal("the comment sorts after the removal: the case does not test pinning")
	}
	if en, _ := full.Entry(c); en.Accepted || !strings.Contains(en.Reason, "invalidated by concurrent removal") {
		t.Fatalf("the comment: %v %q, want invalidated by the pinned removal", en.Accepted, en.Reason)
	}
	pinned := func(s *State) bool { _, ok := s.b().pinned[s.b().at(rm)]; return ok }
	if !pinned(full) || !pinned(other) {
		t.Fatalf("the removal pinned in the full fold: %v, in the fold without task bodies: %v; want both", pinned(full), pinned(other))
	}
}

// TestRemovedUnseen: an event of a removed member that did not see its
// removal is one every replica must hold (to mark it invalidated); one
// signed after seeing it is not; nor is a member's.
func TestRemovedUnseen(t *testing.T) {
	w := newWorld(t, 5)
	for _, line := range []string{
		"alice: found desk",
		"i = alice: invite editor",
		"bob: join i",
		"sync",
		"RM = alice: remove bob",
		"C = bob: task \"concurrent\"",
		"A = alice: task \"a member's\"",
	} {
		f := tokens(line)
		if f[0] == "sync" {
			w.sync(nil)
			continue
		}
		label := ""
		if len(f) > 2 && f[1] == "=" {
			label, f = f[0], f[2:]
		}
		w.do(label, strings.TrimSuffix(f[0], ":"), false, f[1:])
	}
	c, a := w.all[w.id("C")], w.all[w.id("A")]
	held := map[event.ID]*event.Event{}
	for id, e := range w.all {
		if id != c.ID() && id != a.ID() {
			held[id] = e
		}
	}
	s := buildFrom(t, w.pursue, held)
	linksOf := func(e *event.Event) []event.ID { return append(slices.Clone(e.Parents), e.Backlink) }
	if !s.RemovedUnseen(c.Author, linksOf(c)) {
		t.Error("bob's task, concurrent with his removal, is not taken for one")
	}
	if s.RemovedUnseen(a.Author, linksOf(a)) {
		t.Error("alice's task is taken for a removed member's")
	}
	// Bob, having seen his removal, signs anyway.
	w.sync(nil)
	bob := w.actor("bob")
	after := w.sign(bob, &TaskCreate{Title: "after"})
	held = maps.Clone(w.all)
	delete(held, after.ID())
	s = buildFrom(t, w.pursue, held)
	if s.RemovedUnseen(after.Author, linksOf(after)) {
		t.Error("an event that saw its author's removal is taken for a concurrent one")
	}
}

// TestOtherLinksPeerHidden: C, linked with A, folds A's authority history
// with A's link to B in it. C sees that link (its ID, its roles), not
// whom it joins: the peer opens only with that link's secret, which C
// does not hold; with its own link's secret C reads its own link's peer.
func TestOtherLinksPeerHidden(t *testing.T) {
	w := newWorld(t, 8)
	for _, line := range []string{
		"alice@A: found desk",
		"erin@B: found desk",
		"carl@C: found desk",
		"LB = alice@A: link B roles=editor",
		"LC = alice@A: link C roles=editor",
	} {
		f := tokens(line)
		label := ""
		if len(f) > 2 && f[1] == "=" {
			label, f = f[0], f[2:]
		}
		name, p, _ := strings.Cut(strings.TrimSuffix(f[0], ":"), "@")
		w.use(p)
		w.do(label, name, false, f[1:])
	}
	w.use("A")
	a := buildFrom(t, w.pursue, w.all) // no secrets, as C folds it
	lb, lc := w.link("LB"), w.link("LC")
	if len(a.Links()) != 2 {
		t.Fatalf("links: %+v", a.Links())
	}
	for _, l := range a.Links() {
		if l.HasSecret || !l.Peer.IsZero() {
			t.Fatalf("a fold without secrets names a peer: %+v", l)
		}
	}
	if _, ok := openPeer(lc.secret, "offer", w.pursue, a.b().auth.links[lb.secret.ID()].peer); ok {
		t.Fatal("C's link secret opens the peer of A's link to B")
	}
	peer, ok := openPeer(lc.secret, "offer", w.pursue, a.b().auth.links[lc.secret.ID()].peer)
	if !ok || peer != w.pursuanceOf("C") {
		t.Fatal("C's own link's peer does not open to C with its secret")
	}
}
