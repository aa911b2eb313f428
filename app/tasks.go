package app

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// The CLI and the web UI show a member the same tasks, found the same way:
// both go through VisibleTasks and ResolveTask.

// VisibleTasks returns the tasks of s that the member me may see and f
// matches (every one when f is nil), in tree order (TreeOrder). The tasks
// me may see, in tree order, are computed once per state and member
// (State.Memo): every request and command served from the same state
// shares them, and a new state (a write, a synced event, a role change)
// computes them again.
func VisibleTasks(s *state.State, me identity.PublicKey, f *state.Filter) []*state.Task {
	seen := visibleOf(s, me)
	if f == nil {
		return slices.Clone(seen)
	}
	var roles []string
	if m, ok := s.Member(me); ok {
		roles = m.Roles
	}
	fc := state.FilterContext{Me: me, MyRoles: roles, NameOf: s.NameOf}
	var out []*state.Task
	for _, t := range seen {
		if f.Match(t, fc) {
			out = append(out, t)
		}
	}
	return out
}

// visibleKey names, in a State's memo, the tasks a member may see in tree
// order.
type visibleKey struct{ me identity.PublicKey }

// visibleOf returns the tasks of s me may see, in tree order, shared:
// callers do not modify it.
func visibleOf(s *state.State, me identity.PublicKey) []*state.Task {
	v, _ := s.Memo(visibleKey{me}, func() (any, error) {
		var out []*state.Task
		for _, t := range TreeOrder(s.Tasks()) {
			if s.CanSee(me, t) {
				out = append(out, t)
			}
		}
		return out, nil
	})
	return v.([]*state.Task)
}

// TreeOrder orders tasks depth-first, each after its parent, siblings in
// the order given; a task whose parent is not among them is a root. It
// allocates an index of the tasks and two lists of positions, not a map
// of children: at 250,000 tasks (1M events) the maps it made were ~50 MB,
// once per new state, which the collector then had to catch up with.
func TreeOrder(tasks []*state.Task) []*state.Task {
	const none = -1
	index := make(map[event.ID]int32, len(tasks))
	for i, t := range tasks {
		index[t.ID] = int32(i)
	}
	// Each task's first and last child and next sibling, by position;
	// the roots hang from a sentinel at len(tasks).
	first := make([]int32, len(tasks)+1)
	last := make([]int32, len(tasks)+1)
	next := make([]int32, len(tasks))
	for i := range first {
		first[i], last[i] = none, none
	}
	for i, t := range tasks {
		p, ok := index[t.Parent]
		if !ok {
			p = int32(len(tasks))
		}
		next[i] = none
		if last[p] == none {
			first[p] = int32(i)
		} else {
			next[last[p]] = int32(i)
		}
		last[p] = int32(i)
	}
	out := make([]*state.Task, 0, len(tasks))
	var walk func(int32)
	walk = func(p int32) {
		for c := first[p]; c != none; c = next[c] {
			out = append(out, tasks[c])
			walk(c)
		}
	}
	walk(int32(len(tasks)))
	return out
}

// ResolveTask finds a task of s that the member me may see, by full ID or
// unique prefix (at least MinPrefix hex digits). A task me may not see is
// not found, nor counted in an ambiguity: its existence is not told.
func ResolveTask(s *state.State, me identity.PublicKey, ref string) (*state.Task, error) {
	low := strings.ToLower(ref)
	var found []*state.Task
	for _, t := range s.Tasks() {
		if !s.CanSee(me, t) {
			continue
		}
		id := t.ID.String()
		if id == low {
			return t, nil
		}
		if len(low) >= MinPrefix && strings.HasPrefix(id, low) {
			found = append(found, t)
		}
	}
	switch {
	case len(found) == 0 && len(low) < MinPrefix:
		return nil, fmt.Errorf("%q is too short to name a task: give at least %d hex digits of its ID (`pursuance task list P` shows them)", ref, MinPrefix)
	case len(found) == 0:
		return nil, fmt.Errorf("no task %q in %s", ref, s.Name())
	case len(found) == 1:
		return found[0], nil
	}
	var c []string
	for _, t := range found {
		c = append(c, fmt.Sprintf("%s (%s)", t.ID.Short(), t.Title))
	}
	return nil, fmt.Errorf("%w: task %q could be %s", ErrAmbiguous, ref, strings.Join(c, ", "))
}
