package state

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// TestPropertyRules plays random pursuances: members on any template
// acting concurrently, partitioned and re-merged, some of them signing
// what their rules forbid. For each it checks
//   - convergence: replicas receiving the events in random orders, built
//     at random points along the way, end with the same state hash;
//   - soundness: every accepted event is permitted at its parents, by a
//     naive rebuild of the state there;
//   - monotone evidence: a rejected event has a reason, and one rejected by
//     the rules stays rejected as more events arrive unless some event is
//     newly invalidated or void in between (checkEvidence); invalidations
//     themselves may be undone;
//   - time claims change nothing of the above: the clock jumps by days,
//     members claim far-future and backdated times, and claim roles
//     whose holders look inactive and complete those claims
//     (docs/succession.md), so inactivity, quorums over active members,
//     proposal expiry and succession are all judged on random logs;
//   - keys go only where the rules entitle them: every accepted key
//     generation a member can open (with its own KEM key, from the real
//     sealed seeds) was sealed to it while it was entitled to the scope,
//     and every accepted sealed task event is wrapped only under
//     generations nobody unentitled holds (checkKeys).
func TestPropertyRules(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		playRandom(rt, rapid.IntRange(5, 60).Draw(rt, "steps"))
	})
}

func playRandom(rt *rapid.T, steps int) { playRandomS(rt, steps) }

func playRandomS(rt *rapid.T, steps int) *State {
	_, s := playRandomW(rt, steps)
	return s
}

// playRandomW plays a random pursuance, checks it, and returns its world
// and final state.
func playRandomW(rt *rapid.T, steps int) (*world, *State) { return playWork(rt, steps, false) }

// playWork is playRandomW; with taskWork, the steps after everyone
// joined are mostly task work (creations, edits, moves, assignments,
// comments) among members who sync now and then, as a working
// pursuance's log is, with an authority change now and then.
func playWork(rt *rapid.T, steps int, taskWork bool) (*world, *State) {
	w := newWorld(rt, rapid.Uint64().Draw(rt, "seed"))
	tmpl := rapid.SampledFrom(charter.TemplateNames()).Draw(rt, "template")
	c, err := charter.Template(tmpl)
	if err != nil {
		rt.Fatal(err)
	}
	roles := c.RoleNames()
	names := []string{"alice", "bob", "carol", "dave"}
	w.do("", "alice", false, []string{"found", tmpl})
	var invites, tasks, proposals, claims []string
	// Everyone joins first, with a random role, so that the random steps
	// have members to act.
	invitable := roles
	if len(roles) > 1 {
		invitable = roles[1:] // the ladder's primary invites only below it
	}
	for i, n := range names[1:] {
		inv := fmt.Sprintf("setup%d", i)
		w.do(inv, "alice", false, []string{"invite", rapid.SampledFrom(invitable).Draw(rt, "setup role")})
		w.do("", n, false, []string{"join", inv})
		w.sync(nil)
	}
	pick := func(from []string, what string) string { return rapid.SampledFrom(from).Draw(rt, what) }
	statuses := []string{"New", "Started", "WorkingOn", "HelpWanted", "ReadyForReview", "Reviewing", "Done"}
	// Two who are not members at first act too: they join with the
	// invites made along the way (some backdated, some past the expiry)
	// and, unchecked, sign what non-members may not.
	actors := append(slices.Clone(names), "erin", "frank")
	// One member may vanish part-way, as a founder does (docs/succession.md):
	// from then on it signs nothing, and others may claim its roles.
	vanished, vanishAt := pick(names, "vanishes"), rapid.IntRange(0, steps*2).Draw(rt, "vanishes at")
	for i := range steps {
		actor := pick(actors, "actor")
		if actor == vanished && i >= vanishAt {
			continue
		}
		other := pick(names, "other")
		role := pick(roles, "role")
		label := fmt.Sprintf("e%d", i)
		var args []string
		op := rapid.IntRange(0, 29).Draw(rt, "op")
		if op > 16 && op < 23 {
			op = []int{4, 5, 6, 18, 15, 19}[op-17] // authority changes more often
		}
		if op > 26 {
			op = []int{24, 25, 26}[op-27] // and time passes, roles are claimed
		}
		if taskWork {
			op = rapid.SampledFrom([]int{0, 0, 1, 10, 10, 10, 11, 12, 13, 14, 15, 15, 16, 4, 6}).Draw(rt, "task work")
		}
		if (actor == "erin" || actor == "frank") && rapid.Bool().Draw(rt, "newcomer joins?") {
			op = 3
		}
		switch {
		case op == 0:
			w.sync([]string{actor, other})
			continue
		case op == 1 && rapid.IntRange(0, 2).Draw(rt, "full sync?") == 0:
			w.sync(nil)
			continue
		case op == 2:
			args = []string{"invite", role}
			if rapid.Bool().Draw(rt, "expires?") {
				args = append(args, fmt.Sprintf("expires=%d", w.clock+uint64(rapid.IntRange(0, 12).Draw(rt, "expires in"))))
			}
		case op == 3 && len(invites) > 0:
			args = []string{"join", pick(invites, "invite")}
			if rapid.IntRange(0, 3).Draw(rt, "backdate?") == 0 {
				args = append([]string{fmt.Sprintf("at=%d", rapid.Uint64Range(1, w.clock+1).Draw(rt, "claimed time"))}, args...)
			}
		case op == 18 && len(invites) > 0:
			args = []string{"uninvite", pick(invites, "invite")}
		case op == 23:
			args = []string{"rekem"}
		case op == 24:
			// Days pass: enough, now and then, for members to go inactive
			// and for proposals and claims to expire or ripen.
			w.clock += uint64(rapid.IntRange(0, 40).Draw(rt, "days")) * 86400_000
			continue
		case op == 25:
			args = []string{"claim", role}
			if rapid.Bool().Draw(rt, "by a quorum?") {
				args = append([]string{"propose"}, args...)
			}
		case op == 26 && len(claims) > 0:
			args = []string{"succeed", pick(claims, "claim")}
		case op == 19:
			args = []string{"rotate", pick(append([]string{"group"}, roles...), "scope")}
			switch rapid.IntRange(0, 5).Draw(rt, "tamper") {
			case 0:
				args = append(args, "+"+other)
			case 1:
				args = append(args, "-"+other)
			}
		case op == 4:
			args = []string{"assign", other, role}
		case op == 5:
			args = []string{"revoke", other, role}
		case op == 6:
			args = []string{"remove", other}
		case op == 7 && rapid.IntRange(0, 3).Draw(rt, "leave?") == 0:
			args = []string{"leave"}
		case op == 8:
			args = []string{"propose", pick([]string{"remove", "assign"}, "proposal"), other}
			if args[1] == "assign" {
				args = append(args, role)
			}
		case op == 9 && len(proposals) > 0:
			args = []string{"approve", pick(proposals, "proposal")}
		case op == 10:
			args = []string{"task", "T" + label}
			if rapid.Bool().Draw(rt, "visible?") {
				args = append(args, "visible="+role)
			}
			if len(tasks) > 0 && rapid.Bool().Draw(rt, "sub?") {
				args = append(args, "parent="+pick(tasks, "parent"))
			}
		case op == 11 && len(tasks) > 0:
			args = []string{"edit", pick(tasks, "task"), "title=E" + label}
		case op == 12 && len(tasks) > 0:
			args = []string{"move", pick(tasks, "task"), pick(append([]string{"root"}, tasks...), "parent")}
		case op == 13 && len(tasks) > 0:
			args = []string{pick([]string{"tassign", "tunassign"}, "assign op"), pick(tasks, "task"), pick([]string{other, "role:" + role}, "who")}
		case op == 14 && len(tasks) > 0:
			args = []string{"status", pick(tasks, "task"), pick(statuses, "status")}
		case op == 15 && len(tasks) > 0:
			args = []string{"comment", pick(tasks, "task"), "c" + label}
		case op == 16 && len(tasks) > 0:
			args = []string{"archive", pick(tasks, "task")}
		default:
			continue
		}
		unchecked := rapid.IntRange(0, 3).Draw(rt, "unchecked?") == 0
		what := args
		if !strings.HasPrefix(args[0], "at=") {
			// Clocks lie now and then: far ahead, far behind, or a little.
			switch rapid.IntRange(0, 11).Draw(rt, "clock lie") {
			case 0:
				args = append([]string{fmt.Sprintf("at=%d", w.clock+uint64(rapid.IntRange(1, 1000).Draw(rt, "days ahead"))*86400_000)}, args...)
			case 1:
				args = append([]string{fmt.Sprintf("at=%d", rapid.Uint64Range(1, w.clock+1).Draw(rt, "backdated"))}, args...)
			}
		}
		if w.try(label, actor, unchecked, args) != nil {
			continue
		}
		if strings.HasPrefix(what[0], "at=") {
			what = what[1:]
		}
		switch what[0] {
		case "invite":
			invites = append(invites, label)
		case "task":
			tasks = append(tasks, label)
		case "propose":
			proposals = append(proposals, label)
			if what[1] == "claim" {
				claims = append(claims, label)
			}
		case "claim":
			claims = append(claims, label)
		}
	}
	s := buildFrom(rt, w.pursue, w.all)
	checkConvergence(rt, w, s.Hash())
	checkSound(rt, s)
	checkKeys(rt, w, s)
	checkGarbage(rt, w, s)
	checkStripped(rt, w, s)
	return w, s
}

// checkGarbage checks that dropping the bodies of the events State.Garbage
// names (what a member garbage-collects) changes no verdict and no state.
func checkGarbage(t tb, w *world, s *State) {
	t.Helper()
	garbage := map[event.ID]bool{}
	for _, id := range s.Garbage() {
		garbage[id] = true
	}
	pruned := map[event.ID]*event.Event{}
	for id, e := range w.all {
		if garbage[id] {
			e = e.WithoutBody()
		}
		pruned[id] = e
	}
	if got := buildFrom(t, w.pursue, pruned); got.Hash() != s.Hash() {
		t.Fatalf("dropping the bodies of %d garbage events changed the state", len(garbage))
	}
}

// checkKeys checks that no accepted key generation reaches a member the
// rules did not entitle to it at the generation's parents, by opening the
// real sealed seeds with each member's KEM key; and that no accepted
// sealed task event is wrapped under a generation someone unentitled
// holds at the event's parents.
func checkKeys(t tb, w *world, s *State) {
	t.Helper()
	b := s.b()
	gens := map[event.ID]*node{}
	for _, n := range b.nodes {
		if _, ok := n.op.(*KeyUpdate); ok && n.accepted {
			gens[n.e.ID()] = n
		}
	}
	for _, a := range w.actors {
		x := NewBuilder(w.pursue, nil)
		for _, e := range logOrder(mapValues(w.all)) {
			if err := x.Add(e); err != nil {
				t.Fatal(err)
			}
		}
		x.SetSecrets(&Secrets{Member: a.id.ID(), KEM: a.id.KEMKey(), Retired: a.id.RetiredKEMKeys()})
		mine, err := x.Finish()
		if err != nil {
			t.Fatal(err)
		}
		for id, h := range mine.Held() {
			n := gens[id]
			if n == nil || h.Via != "sealed" {
				continue
			}
			ku := n.op.(*KeyUpdate)
			at := naiveAuthAt(b, n)
			if _, ok := slices.BinarySearchFunc(at.entitled(ku.Role), a.id.ID(), identity.PublicKey.Compare); !ok {
				t.Errorf("%s holds generation %d of %q (%s), to which it was not entitled", a.name, ku.Gen, ku.Role, id.Short())
			}
		}
	}
	for _, n := range b.nodes {
		sealed, ok := n.op.(*TaskSealed)
		if !ok || !n.accepted {
			continue
		}
		at := naiveAuthAt(b, n)
		for _, wr := range sealed.Wraps {
			kg, ok := at.generation(wr.Update)
			if !ok {
				t.Errorf("sealed task %s wrapped under %s, no generation at its parents", n.e.ID().Short(), wr.Update.Short())
				continue
			}
			if stale, _ := b.keyHolders(at, kg, n.e.Time); len(stale) > 0 {
				t.Errorf("sealed task %s wrapped under a generation %s holds unentitled", n.e.ID().Short(), stale[0].Short())
			}
			if retired := retiredHolders(at, kg); len(retired) > 0 {
				t.Errorf("sealed task %s wrapped under a generation sealed to %s's retired KEM key", n.e.ID().Short(), retired[0].Short())
			}
		}
	}
}

// naiveAuthAt rebuilds the authority state at n's parents from scratch.
func naiveAuthAt(b *builder, n *node) *authState {
	a := newAuthState()
	for _, x := range b.nodes {
		if x != n && x.accepted && isAuthority(x.op) && b.inPast(x, n) {
			b.applyAuth(a, x, false)
		}
	}
	return a
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
