package state

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/pursuance/pursuance/event"
)

// TestPropertySuccession plays random desks whose founder may vanish and
// come back: days pass, members sign (some with far-future or backdated
// clocks), researchers claim the editor role and complete their claims,
// alice reappears concurrently or not, replicas sync in parts. For each
// log it checks convergence over random delivery orders, monotone
// evidence and soundness (as TestPropertyRules does), and that an
// accepted completion had no holder's event after its claim in its past.
// Over all runs, some completions must be accepted and some cancelled,
// so the generator is known to reach both.
func TestPropertySuccession(t *testing.T) {
	var accepted, cancelled int
	rapid.Check(t, func(rt *rapid.T) {
		s := playSuccession(rt, rapid.IntRange(20, 60).Draw(rt, "steps"))
		for _, en := range s.Log() {
			if en.Kind != event.KindSucceed {
				continue
			}
			if en.Accepted {
				accepted++
			} else {
				cancelled++
			}
		}
	})
	t.Logf("completions: %d accepted, %d rejected", accepted, cancelled)
	if accepted == 0 || cancelled == 0 {
		t.Errorf("the generator reached %d accepted and %d rejected completions; want some of each", accepted, cancelled)
	}
}

func playSuccession(rt *rapid.T, steps int) *State {
	w := newWorld(rt, rapid.Uint64().Draw(rt, "seed"))
	names := []string{"alice", "bob", "carol", "dave"}
	w.do("", "alice", false, []string{"found", "desk"})
	w.do("inv", "alice", false, []string{"invite", "researcher"})
	for _, n := range names[1:] {
		w.do("", n, false, []string{"join", "inv"})
	}
	w.sync(nil)
	pick := func(from []string, what string) string { return rapid.SampledFrom(from).Draw(rt, what) }
	if rapid.Bool().Draw(rt, "alice vanishes at once?") {
		// A month and more of silence from alice, the others writing.
		w.clock += uint64(rapid.IntRange(25, 45).Draw(rt, "days away")) * 86400_000
		for _, n := range names[1:] {
			w.do("", n, false, []string{"task", "away " + n})
		}
		w.sync(names[1:])
	}
	var claims []string
	claimant := map[string]string{}
	for i := range steps {
		actor := pick(names, "actor")
		if actor == "alice" && rapid.IntRange(0, 3).Draw(rt, "alice stays away?") > 0 {
			continue
		}
		label := fmt.Sprintf("e%d", i)
		var args []string
		switch rapid.IntRange(0, 11).Draw(rt, "op") {
		case 0, 8:
			w.clock += uint64(rapid.IntRange(1, 20).Draw(rt, "days")) * 86400_000
			continue
		case 1:
			w.sync([]string{actor, pick(names, "other")})
			continue
		case 2, 11:
			w.sync(nil)
			continue
		case 3, 4, 9:
			args = []string{"task", "t" + label}
		case 5:
			args = []string{"claim", "editor"}
		case 6, 10:
			if len(claims) == 0 {
				continue
			}
			// Mostly by the claimant, as an honest client does.
			c := claims[len(claims)-1]
			if rapid.Bool().Draw(rt, "an older claim?") {
				c = pick(claims, "claim")
			}
			if rapid.IntRange(0, 4).Draw(rt, "someone else?") > 0 {
				actor = claimant[c]
			}
			if rapid.IntRange(0, 3).Draw(rt, "wait it out?") > 0 {
				// The waiting period passes: the researchers sign and sync
				// among themselves (alice, if back, may not have synced).
				w.clock += uint64(rapid.IntRange(3, 12).Draw(rt, "days waited")) * 86400_000
				for _, n := range names[1:] {
					w.try("", n, false, []string{"task", "w" + label + n})
				}
				w.sync(names[1:])
			}
			args = []string{"succeed", c}
		case 7:
			args = []string{"invite", pick([]string{"editor", "researcher"}, "role")}
		}
		switch rapid.IntRange(0, 9).Draw(rt, "clock lie") {
		case 0:
			args = append([]string{fmt.Sprintf("at=%d", w.clock+uint64(rapid.IntRange(1, 1000).Draw(rt, "days ahead"))*86400_000)}, args...)
		case 1:
			args = append([]string{fmt.Sprintf("at=%d", rapid.Uint64Range(1, w.clock+1).Draw(rt, "backdated"))}, args...)
		}
		unchecked := rapid.IntRange(0, 3).Draw(rt, "unchecked?") == 0
		// Claims its own client accepted are worth completing (one signed
		// unchecked is mostly junk: the property test has those).
		if w.try(label, actor, unchecked, args) == nil && args[len(args)-2] == "claim" && !unchecked {
			claims = append(claims, label)
			claimant[label] = actor
			if rapid.Bool().Draw(rt, "complete at once?") {
				// The waiting period passes and the claimant completes,
				// as an honest client does; alice, if she came back
				// unsynced meanwhile, is concurrent with it.
				w.clock += uint64(rapid.IntRange(3, 12).Draw(rt, "days waited")) * 86400_000
				for _, n := range names[1:] {
					w.try("", n, false, []string{"task", "w" + label + n})
				}
				w.sync(names[1:])
				w.try(label+"s", actor, rapid.IntRange(0, 3).Draw(rt, "unchecked?") == 0, []string{"succeed", label})
			}
		}
	}
	s := buildFrom(rt, w.pursue, w.all)
	checkConvergence(rt, w, s.Hash())
	checkSound(rt, s)
	checkSucceeds(rt, s)
	return s
}

// checkSucceeds checks that every accepted completion had, in its past,
// no event of a holder of the role signed after the claim: a holder who
// came back cancels the claim.
func checkSucceeds(t tb, s *State) {
	t.Helper()
	b := s.b()
	for _, n := range b.nodes {
		op, ok := n.op.(*Succeed)
		if !ok || !n.accepted {
			continue
		}
		a := naiveAuthAt(b, n)
		tk, ok := a.takeovers[op.Claim]
		if !ok {
			t.Fatalf("accepted completion %s of a claim not open at its parents", n.e.ID().Short())
		}
		cl := b.nodes[b.at(op.Claim)]
		for _, m := range holdersOf(a, tk.role) {
			ai := b.authorIdx[m.ID]
			for _, p := range b.byAuthor[ai] {
				x := b.nodes[p]
				if b.inPast(x, n) && x.e.Seq > cl.seen(ai) {
					t.Fatalf("completion %s accepted although %s, holding %q, signed %s after the claim", n.e.ID().Short(), m.Name, tk.role, x.e.ID().Short())
				}
			}
		}
	}
}
