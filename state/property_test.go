package state

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/pursuance/pursuance/charter"
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
//     themselves may be undone.
func TestPropertyRules(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		playRandom(rt, rapid.IntRange(5, 60).Draw(rt, "steps"))
	})
}

func playRandom(rt *rapid.T, steps int) { playRandomS(rt, steps) }

func playRandomS(rt *rapid.T, steps int) *State {
	w := newWorld(rt, rapid.Uint64().Draw(rt, "seed"))
	tmpl := rapid.SampledFrom(charter.TemplateNames()).Draw(rt, "template")
	c, err := charter.Template(tmpl)
	if err != nil {
		rt.Fatal(err)
	}
	roles := c.RoleNames()
	names := []string{"alice", "bob", "carol", "dave"}
	w.do("", "alice", false, []string{"found", tmpl})
	var invites, tasks, proposals []string
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
	for i := range steps {
		actor := pick(names, "actor")
		other := pick(names, "other")
		role := pick(roles, "role")
		label := fmt.Sprintf("e%d", i)
		var args []string
		op := rapid.IntRange(0, 22).Draw(rt, "op")
		if op > 16 {
			op = []int{4, 5, 6, 18, 15, 19}[op-17] // authority changes more often
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
		case op == 3 && len(invites) > 0:
			args = []string{"join", pick(invites, "invite")}
		case op == 18 && len(invites) > 0:
			args = []string{"uninvite", pick(invites, "invite")}
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
		if w.try(label, actor, unchecked, args) != nil {
			continue
		}
		switch args[0] {
		case "invite":
			invites = append(invites, label)
		case "task":
			tasks = append(tasks, label)
		case "propose":
			proposals = append(proposals, label)
		}
	}
	s := buildFrom(rt, w.pursue, w.all)
	checkConvergence(rt, w, s.Hash())
	checkSound(rt, s)
	return s
}
