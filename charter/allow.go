package charter

import (
	"fmt"
	"slices"
)

// TaskFacts is what a permission check needs to know about a task, relative
// to the acting member.
type TaskFacts struct {
	VisibleTo       []string // the roles the task is visible to; empty: every member
	AssignedToActor bool     // assigned to the actor or to one of its roles
	CreatedByActor  bool     // created by the actor
}

// Allows reports whether a member holding the roles actor may do a, under
// this charter: nil if it may, otherwise a *Denied that wraps
// ErrNotPermitted. It permits the action if any one of the actor's roles
// does; roles that are not in the charter, in actor or target, permit and
// cover nothing. A member with no role may do nothing.
//
// What target and task must hold depends on the action:
//
//   - Plain actions (AmendCharter, CreateTask, RotateKeys, ManageRelays,
//     LinkPursuances): target and task are ignored.
//   - AssignRole, RevokeRole, Invite, SeeTasks, TakeOver: target names the
//     role given, taken, invited into, seen or taken over, and one single role of the actor must
//     cover every role in it. An empty target is denied.
//   - RemoveMember: target is every role the member being removed holds; one
//     single role of the actor must cover them all. A member who holds no
//     role may be removed by any role granted remove-member.
//   - AssignTask: target is the role a task is assigned to (or unassigned
//     from), or every role of the member it is assigned to; any one of them
//     covered suffices. An empty target (a member with no role) needs a
//     grant of "*". If task is not nil the actor must also be able to see
//     the task.
//   - Task-scoped actions (EditTask, SetStatus, Comment, ArchiveTask): task
//     is required and target ignored. The actor must be able to see the
//     task (CanSee), and a role's grant must cover it: "any" any task,
//     "assigned" if task.AssignedToActor, "own" if task.CreatedByActor.
//
// Quorums are not Allows' concern: an action that needs one is allowed here
// if a role may propose it; see QuorumFor.
func (c *Charter) Allows(actor []string, a Action, target []string, task *TaskFacts) error {
	deny := func(reason string) error {
		return &Denied{Action: a, Actor: slices.Clone(actor), Target: slices.Clone(target), Reason: reason}
	}
	roles := c.known(actor)
	switch a.kind() {
	case plainAction:
		for _, i := range roles {
			if _, ok := c.Roles[i].grant(a); ok {
				return nil
			}
		}
		return deny("")

	case roleAction:
		if a == AssignTask && task != nil && !c.CanSee(actor, *task) {
			return deny("on a task it cannot see")
		}
		if len(target) == 0 {
			switch a {
			case AssignTask:
				for _, i := range roles {
					if g, ok := c.Roles[i].grant(a); ok && slices.Contains(g.Roles, AllRoles) {
						return nil
					}
				}
				return deny("to a member with no role")
			case RemoveMember:
				for _, i := range roles {
					if _, ok := c.Roles[i].grant(a); ok {
						return nil
					}
				}
				return deny("")
			default:
				return deny("(no role given)")
			}
		}
		for _, i := range roles {
			g, ok := c.Roles[i].grant(a)
			if !ok {
				continue
			}
			if a == AssignTask && c.coversAny(g, i, target) || a != AssignTask && c.coversAll(g, i, target) {
				return nil
			}
		}
		for _, t := range target {
			if c.Rank(t) < 0 {
				return deny(fmt.Sprintf("(there is no role %q)", t))
			}
		}
		return deny("")

	case taskAction:
		if task == nil {
			return deny("(no task given)")
		}
		if !c.CanSee(actor, *task) {
			return deny("on a task it cannot see")
		}
		var assigned, own, granted bool
		for _, i := range roles {
			g, ok := c.Roles[i].grant(a)
			if !ok {
				continue
			}
			granted = true
			for _, s := range g.Tasks {
				switch s {
				case AnyTask:
					return nil
				case AssignedTask:
					if task.AssignedToActor {
						return nil
					}
					assigned = true
				case OwnTask:
					if task.CreatedByActor {
						return nil
					}
					own = true
				}
			}
		}
		switch {
		case !granted:
			return deny("")
		case assigned && own:
			return deny("on a task neither assigned to it nor created by it")
		case assigned:
			return deny("on a task not assigned to it")
		case own:
			return deny("on a task it did not create")
		}
		return deny("")
	}
	return deny("(unknown action)")
}

// CanSee reports whether a member holding the roles actor can see a task:
// if it is assigned to the member or one of its roles, or the member
// created it, or it is visible to no role in particular (and so to every
// member), or it is visible to one of the actor's roles, or one of the
// actor's roles has a see-tasks grant covering a role it is visible to.
func (c *Charter) CanSee(actor []string, t TaskFacts) bool {
	if t.AssignedToActor || t.CreatedByActor || len(t.VisibleTo) == 0 {
		return true
	}
	for _, i := range c.known(actor) {
		if slices.Contains(t.VisibleTo, c.Roles[i].Name) {
			return true
		}
		g, ok := c.Roles[i].grant(SeeTasks)
		if !ok {
			continue
		}
		for _, v := range t.VisibleTo {
			if j := c.Rank(v); j >= 0 && g.covers(c, i, j) {
				return true
			}
		}
	}
	return false
}

// NewTaskVisibility returns the roles a task created by a member holding the
// roles actor is visible to by default: the union of the TaskVisibility of
// the actor's roles or, if those are all empty, the actor's roles. The result
// is sorted, holds no repeats and only roles of the charter; it is nil (the
// task is visible to every member) if the actor holds no role of the
// charter. The caller owns it.
func (c *Charter) NewTaskVisibility(actor []string) []string {
	roles := c.known(actor)
	var vis []string
	for _, i := range roles {
		for _, v := range c.Roles[i].TaskVisibility {
			if c.Rank(v) >= 0 {
				vis = append(vis, v)
			}
		}
	}
	if len(vis) == 0 {
		for _, i := range roles {
			vis = append(vis, c.Roles[i].Name)
		}
	}
	slices.Sort(vis)
	return slices.Compact(vis)
}

// known returns the ranks of the roles in names that the charter has.
func (c *Charter) known(names []string) []int {
	var ranks []int
	for _, n := range names {
		if i := c.Rank(n); i >= 0 {
			ranks = append(ranks, i)
		}
	}
	return ranks
}

// covers reports whether g, a grant of the role ranked i, covers the role
// ranked j.
func (g *Grant) covers(c *Charter, i, j int) bool {
	for _, r := range g.Roles {
		switch r {
		case AllRoles:
			return true
		case RolesBelow:
			if j > i {
				return true
			}
		default:
			if r == c.Roles[j].Name {
				return true
			}
		}
	}
	return false
}

// coversAll reports whether g, a grant of the role ranked i, covers every
// role named in targets; unknown names are not covered.
func (c *Charter) coversAll(g *Grant, i int, targets []string) bool {
	for _, t := range targets {
		j := c.Rank(t)
		if j < 0 || !g.covers(c, i, j) {
			return false
		}
	}
	return true
}

// coversAny reports whether g, a grant of the role ranked i, covers some
// role named in targets.
func (c *Charter) coversAny(g *Grant, i int, targets []string) bool {
	for _, t := range targets {
		if j := c.Rank(t); j >= 0 && g.covers(c, i, j) {
			return true
		}
	}
	return false
}

// covers reports whether the role ranked i has a grant of a that covers the
// role ranked j.
func (c *Charter) covers(i int, a Action, j int) bool {
	g, ok := c.Roles[i].grant(a)
	return ok && g.covers(c, i, j)
}
