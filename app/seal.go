package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// readers says who reads a task op: the scopes whose keys wrap its content
// key (the group key when every member sees the task, else the roles it
// is visible or assigned to) and the members outside them who read it
// anyway (its creator, members it is assigned to).
type readers struct {
	scopes      []string
	individuals []identity.PublicKey
}

// errSealedTask is returned for a write to a task this member cannot tell
// the readers of.
var errSealedTask = errors.New("this task's creation is sealed to roles you do not hold, so you cannot tell who reads it; ask its assigner to assign it to you again")

// readersOf works out the readers of op, a task op this member is about
// to write, as the rules will at its parents (state.checkSealing).
func (n *Node) readersOf(s *state.State, op state.Op) (readers, error) {
	me := n.me()
	var vis, assignees []string
	var creator identity.PublicKey
	switch op := op.(type) {
	case *state.TaskCreate:
		vis, creator, assignees = op.VisibleTo, me, op.Assignees
		if len(vis) == 0 {
			m, _ := s.Member(me)
			if m != nil {
				vis = s.Charter().NewTaskVisibility(m.Roles)
			}
		}
	default:
		id := state.TaskOf(op)
		t, ok := s.Task(id)
		if !ok {
			return readers{}, fmt.Errorf("no task %s", id.Short())
		}
		if t.Sealed && t.VisibleTo == nil {
			return readers{}, errSealedTask
		}
		vis, creator = t.VisibleTo, t.Creator
		for _, as := range t.Assignees {
			assignees = append(assignees, as.String())
		}
		if a, ok := op.(*state.TaskAssign); ok {
			assignees = append(assignees, a.Assignee)
		}
	}
	var r readers
	if len(vis) == 0 {
		r.scopes = []string{""}
	} else {
		r.scopes = slices.Clone(vis)
		for _, a := range assignees {
			if as, err := state.ParseAssignee(a); err == nil && as.IsRole() && !slices.Contains(r.scopes, as.Role) {
				r.scopes = append(r.scopes, as.Role)
			}
		}
	}
	cand := []identity.PublicKey{creator}
	for _, a := range assignees {
		if as, err := state.ParseAssignee(a); err == nil && !as.IsRole() {
			cand = append(cand, as.Member)
		}
	}
	for _, m := range cand {
		if _, ok := s.Member(m); !ok || slices.Contains(r.individuals, m) {
			continue
		}
		covered := false
		for _, sc := range s.EntitledScopes(m) {
			if _, keyed := s.CurrentKey(sc); keyed && slices.Contains(r.scopes, sc) {
				covered = true
			}
		}
		if !covered {
			r.individuals = append(r.individuals, m)
		}
	}
	return r, nil
}

// prepareTask readies the keys a task op will be sealed under: a scope
// with no generation yet gets its first (when this member may make it), a
// stale one a new generation (the member removed or demoted must not read
// what comes), an owed one too when this member holds it (so the newcomer
// reads it, and the history). An assignment of someone who did not read
// the task gets a brief. It returns the state to write against.
func (n *Node) prepareTask(ctx context.Context, s *state.State, op state.Op) (*state.State, state.Op, error) {
	if _, ok := s.CurrentKey(""); !ok {
		return s, op, nil // no keys: nothing to seal with (the rules do not ask for it)
	}
	r, err := n.readersOf(s, op)
	if err != nil {
		return nil, nil, err
	}
	changed := false
	for _, scope := range r.scopes {
		st, keyed := s.KeyStatusAt(scope, n.now())
		switch {
		case !keyed:
			// The first generation, if this member may make it; if not,
			// the rules ask no wrap for a scope without keys.
			if _, err := n.rotate(ctx, s, scope, DoOptions{}); err == nil {
				changed = true
			}
		case len(st.Stale)+len(st.Retired) > 0:
			if _, err := n.rotate(ctx, s, scope, DoOptions{}); err != nil {
				return nil, nil, fmt.Errorf("%s is still held by someone no longer entitled to it, and you may not rotate it: %w", scopeName(scope), err)
			}
			changed = true
		case len(st.Owed) > 0 && n.holds(s, st.Current.Update):
			if _, err := n.rotate(ctx, s, scope, DoOptions{}); err == nil {
				changed = true
			}
		}
		if changed {
			if s, err = n.State(ctx, s.Pursuance()); err != nil {
				return nil, nil, err
			}
			changed = false
		}
	}
	if a, ok := op.(*state.TaskAssign); ok && a.Brief == nil {
		op = n.brief(s, a)
	}
	return s, op, nil
}

// brief adds a brief to an assignment whose assignee did not read the
// task: so a member or role outside the task's readers learns what it was
// given.
func (n *Node) brief(s *state.State, a *state.TaskAssign) state.Op {
	t, ok := s.Task(a.Task)
	if !ok || t.Sealed || len(t.VisibleTo) == 0 {
		return a
	}
	as, err := state.ParseAssignee(a.Assignee)
	if err != nil {
		return a
	}
	scopes := slices.Clone(t.VisibleTo)
	for _, x := range t.Assignees {
		if x.IsRole() {
			scopes = append(scopes, x.Role)
		}
	}
	var reads bool
	if as.IsRole() {
		reads = slices.Contains(scopes, as.Role) || s.Charter().CanSee([]string{as.Role}, charter.TaskFacts{VisibleTo: scopes})
	} else {
		reads = t.Creator == as.Member || t.AssignedTo(as.Member, nil)
		for _, sc := range s.EntitledScopes(as.Member) {
			reads = reads || slices.Contains(scopes, sc)
		}
	}
	if reads {
		return a
	}
	c := *a
	c.Brief = &state.TaskBrief{Title: t.Title, Body: t.Body, VisibleTo: t.VisibleTo}
	return &c
}

// sealTask seals a task op as the body of this member's event at seq.
func (n *Node) sealTask(s *state.State, op state.Op, seq uint64) (state.Op, error) {
	r, err := n.readersOf(s, op)
	if err != nil {
		return nil, err
	}
	held := s.Held()
	me := n.me()
	mine := s.EntitledScopes(me)
	wraps := map[event.ID]keys.Key{}
	to := slices.Clone(r.individuals)
	for _, scope := range r.scopes {
		cur, ok := s.CurrentKey(scope)
		if !ok {
			continue
		}
		if h, ok := held[cur.Update]; ok {
			wraps[cur.Update] = h.Key
			continue
		}
		if slices.Contains(mine, scope) {
			return nil, fmt.Errorf("you do not hold the current generation of %s (%d), which reads this task; a member who holds it must re-key to you", scopeName(scope), cur.Gen)
		}
		// A scope this member is outside of (it reads the task as its
		// creator or assignee): seal to each of the scope's members.
		for _, m := range s.Entitled(scope) {
			if m.ID != me && !slices.Contains(to, m.ID) {
				to = append(to, m.ID)
			}
		}
	}
	if len(to) > state.MaxBoxes {
		return nil, fmt.Errorf("this task has %d readers outside your roles, more than one event seals to (%d)", len(to), state.MaxBoxes)
	}
	var boxes []identity.KEMPublicKey
	for _, m := range to {
		if mem, ok := s.Member(m); ok {
			boxes = append(boxes, mem.KEM)
		}
	}
	return state.SealTask(op, state.SealedAD(s.Pursuance(), n.id.ID(), seq), wraps, boxes, n.rand())
}
