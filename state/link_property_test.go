package state

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
)

// TestPropertyLinks plays two linked pursuances at random: A's members
// assign, demote and remove each other, hand tasks off and end the link
// while B's members receive, report, remove each other and end it too,
// concurrently, partitioned, some signing what their rules forbid; each
// side learns the other's log through the link's channel in pieces
// (learn). Then, for each side:
//   - convergence, soundness and the stripped check as for one pursuance
//     (checkConvergence, checkSound, checkStripped): the other side's fold
//     without task bodies reaches the verdict of every member's fold on
//     every authority and link event;
//   - the same verdicts whatever the delivery order: the events are
//     delivered in random orders, and at random points the origin verdict
//     of every hand-off (and every report's) computed from what a member of
//     the sending side holds (all bodies, its keys) equals the one computed
//     from the same events as the other side holds them (no task bodies,
//     no keys) — pending, verified or invalid alike (checkAcross).
func TestPropertyLinks(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		playLinks(rt, rapid.IntRange(5, 50).Draw(rt, "steps"))
	})
}

func playLinks(rt *rapid.T, steps int) {
	w := newWorld(rt, rapid.Uint64().Draw(rt, "seed"))
	tmpl := rapid.SampledFrom(charter.TemplateNames()).Draw(rt, "template")
	c, err := charter.Template(tmpl)
	if err != nil {
		rt.Fatal(err)
	}
	roles := c.RoleNames()
	invitable := roles
	if len(roles) > 1 {
		invitable = roles[1:]
	}
	as := []string{"alice", "bob", "carol", "dave"}
	bs := []string{"erin", "fay", "gina"}
	pick := func(from []string, what string) string { return rapid.SampledFrom(from).Draw(rt, what) }
	w.use("A")
	w.do("", "alice", false, []string{"found", tmpl})
	for i, n := range as[1:] {
		inv := fmt.Sprintf("a%d", i)
		w.do(inv, "alice", false, []string{"invite", pick(invitable, "A role")})
		w.do("", n, false, []string{"join", inv})
		w.sync(nil)
	}
	w.use("B")
	w.do("", "erin", false, []string{"found", "desk"})
	for i, n := range bs[1:] {
		inv := fmt.Sprintf("b%d", i)
		w.do(inv, "erin", false, []string{"invite", pick([]string{"editor", "researcher"}, "B role")})
		w.do("", n, false, []string{"join", inv})
		w.sync(nil)
	}
	w.use("A")
	sendRoles := pick(roles, "send role")
	if rapid.Bool().Draw(rt, "two send roles?") {
		sendRoles += "," + pick(roles, "send role 2")
	}
	w.do("L", "alice", false, []string{"link", "B", "roles=" + sendRoles})
	w.sync(nil)
	w.use("B")
	w.do("", "erin", false, []string{"accept", "L", "role=" + pick([]string{"editor", "researcher"}, "deliver role")})
	w.sync(nil)
	var handoffs, received []string
	for i := range steps {
		label := fmt.Sprintf("e%d", i)
		unchecked := rapid.IntRange(0, 3).Draw(rt, "unchecked?") == 0
		var args []string
		var actor string
		switch side := rapid.IntRange(0, 3).Draw(rt, "side"); side {
		case 0: // A
			w.use("A")
			actor = pick(as, "A actor")
			other := pick(as, "A other")
			switch rapid.IntRange(0, 8).Draw(rt, "A op") {
			case 0, 1, 2:
				args = []string{"handoff", "L", "T" + label}
			case 3:
				args = []string{"assign", other, pick(roles, "role")}
			case 4:
				args = []string{"revoke", other, pick(roles, "role")}
			case 5:
				args = []string{"remove", other}
			case 6:
				if rapid.IntRange(0, 3).Draw(rt, "end?") == 0 {
					args = []string{"end", "L"}
				}
			case 7:
				args = []string{"task", "T" + label}
			default:
				w.sync([]string{actor, other})
				continue
			}
		case 1: // B
			w.use("B")
			actor = pick(bs, "B actor")
			other := pick(bs, "B other")
			switch rapid.IntRange(0, 7).Draw(rt, "B op") {
			case 0, 1, 2:
				// A hand-off of A this member holds (through the channel).
				w.use("A")
				var held []string
				for _, h := range handoffs {
					if w.actor(actor).seen[w.id(h)] != nil {
						held = append(held, h)
					}
				}
				w.use("B")
				if len(held) > 0 {
					args = []string{"receive", pick(held, "hand-off")}
				}
			case 3, 4:
				if rapid.Bool().Draw(rt, "catch up first?") {
					w.sync([]string{actor, other})
				}
				if len(received) > 0 {
					args = []string{"report", pick(received, "received"), "comment=c" + label}
				}
			case 5:
				args = []string{"remove", other}
			case 6:
				if rapid.IntRange(0, 3).Draw(rt, "end?") == 0 {
					args = []string{"end", "L"}
				}
			default:
				w.sync([]string{actor, other})
				continue
			}
		default: // the channel: one side's member learns what one of the other's holds
			if rapid.Bool().Draw(rt, "B learns?") {
				w.use("A")
				w.learnFrom(w.actor(pick(bs, "learner")), w.actor(pick(as, "source")).seen, nil, nil)
			} else {
				w.use("B")
				w.learnFrom(w.actor(pick(as, "learner")), w.actor(pick(bs, "source")).seen, nil, nil)
			}
			continue
		}
		if args == nil {
			continue
		}
		if w.try(label, actor, unchecked, args) != nil {
			continue
		}
		switch args[0] {
		case "handoff":
			handoffs = append(handoffs, label)
		case "receive":
			received = append(received, args[1])
		}
	}
	for _, ctx := range []string{"A", "B"} {
		w.use(ctx)
		s := buildFrom(rt, w.pursue, w.all)
		checkConvergence(rt, w, s.Hash())
		checkSound(rt, s)
		checkStripped(rt, w, s)
	}
	l := w.linkSecrets[w.link("L").secret.ID()]
	checkAcross(rt, w, "A", l, func(s *State, e *event.Event) string {
		if e.Kind != event.KindHandoff {
			return ""
		}
		ov := VerifyHandoff(s, e, w.pursuanceOf("A"), w.pursuanceOf("B"), l.secret)
		return ov.Verdict + " " + ov.Reason + " " + ov.Role
	})
	checkAcross(rt, w, "B", l, func(s *State, e *event.Event) string {
		if e.Kind != event.KindLinkReport {
			return ""
		}
		v, why := VerifyReport(s, e.ID())
		return v + " " + why
	})
}

// checkAcross delivers pursuance p's events in random orders, and at
// random points compares verdict(s, e) for every event e of p, where s is
// the fold of what was delivered so far as a member of p holds it (every
// body, with that member's keys) and as the other side of a link does
// (no task bodies, no keys); e need not be among those delivered.
func checkAcross(t tb, w *world, p string, l linkInfo, verdict func(*State, *event.Event) string) {
	t.Helper()
	w.use(p)
	var members []*actor
	for _, n := range w.order {
		if a := w.actors[n]; len(a.seen) > 0 && a.seen[w.pursue] != nil {
			members = append(members, a)
		}
	}
	ids := slices.SortedFunc(func(yield func(event.ID) bool) {
		for id := range w.all {
			if !yield(id) {
				return
			}
		}
	}, event.ID.Compare)
	all := logOrder(mapValues(w.all))
	for round := range 3 {
		rng := rand.New(rand.NewPCG(uint64(round), 11))
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		have := map[event.ID]*event.Event{}
		pending := slices.Clone(ids)
		for len(pending) > 0 {
			for i, id := range pending {
				e := w.all[id]
				ok := e.Backlink.IsZero() || have[e.Backlink] != nil
				for _, x := range e.Parents {
					ok = ok && have[x] != nil
				}
				if ok {
					have[id] = e
					pending = slices.Delete(pending, i, i+1)
					break
				}
			}
			if rng.IntN(5) != 0 && len(pending) > 0 || have[w.pursue] == nil {
				continue
			}
			stripped := map[event.ID]*event.Event{}
			for id, e := range have {
				if !CarriedOverLinks(e.Kind) {
					e = e.WithoutBody()
				}
				stripped[id] = e
			}
			other := buildFrom(t, w.pursue, stripped)
			a := members[rng.IntN(len(members))]
			x := NewBuilder(w.pursue, nil)
			for _, e := range logOrder(mapValues(have)) {
				if err := x.Add(e); err != nil {
					t.Fatal(err)
				}
			}
			x.SetSecrets(&Secrets{Member: a.id.ID(), KEM: a.id.KEMKey(), Retired: a.id.RetiredKEMKeys()})
			mine, err := x.Finish()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range all {
				got, want := verdict(other, e), verdict(mine, e)
				if got != want {
					t.Fatalf("%s %s: %s sees %q, the other side %q, holding %d of %d events", e.Kind, e.ID().Short(), a.name, want, got, len(have), len(w.all))
				}
				if e.Kind == event.KindHandoff && have[e.ID()] == nil && other.last(e) {
					// Decided alone against the fold (State.Check): what
					// folding it in gives.
					with := maps.Clone(stripped)
					with[e.ID()] = e
					if folded := verdict(buildFrom(t, w.pursue, with), e); folded != got {
						t.Fatalf("%s %s decided against the fold: %q; folded in: %q", e.Kind, e.ID().Short(), got, folded)
					}
				}
			}
		}
	}
}
