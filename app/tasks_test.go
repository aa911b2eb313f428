package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/pursuance/pursuance/event"

	"github.com/pursuance/pursuance/state"
)

// TestVisibleTasks: the one way the CLI and the web UI find a member's
// tasks: visible ones only, each after its parent, and a task the member
// may not see is not found even by its full ID.
func TestVisibleTasks(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	root := do(t, alice, p, &state.TaskCreate{Title: "Root", VisibleTo: []string{"researcher"}})
	secret := do(t, alice, p, &state.TaskCreate{Title: "Editors only", VisibleTo: []string{"editor"}})
	child := do(t, alice, p, &state.TaskCreate{Title: "Child", Parent: root.ID(), VisibleTo: []string{"researcher"}})
	other := do(t, alice, p, &state.TaskCreate{Title: "Other", VisibleTo: []string{"researcher"}})
	copyAll(t, alice, bob, p)
	s, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, tk := range VisibleTasks(s, bob.Me().ID, nil) {
		titles = append(titles, tk.Title)
	}
	if got := strings.Join(titles, ","); got != "Root,Child,Other" {
		t.Errorf("bob's tasks in tree order: %s", got)
	}
	f, _ := state.ParseFilter("Oth")
	if got := VisibleTasks(s, bob.Me().ID, f); len(got) != 1 || got[0].ID != other.ID() {
		t.Errorf("filtered: %v", got)
	}
	if tk, err := ResolveTask(s, bob.Me().ID, child.ID().String()[:6]); err != nil || tk.ID != child.ID() {
		t.Errorf("by prefix: %v, %v", tk, err)
	}
	if _, err := ResolveTask(s, bob.Me().ID, secret.ID().String()); err == nil || !strings.Contains(err.Error(), "no task") {
		t.Errorf("the editors' task by its full ID, for bob: %v", err)
	}
	as, _ := alice.State(ctx, p)
	if tk, err := ResolveTask(as, alice.Me().ID, secret.ID().String()[:8]); err != nil || tk.ID != secret.ID() {
		t.Errorf("the editors' task for alice: %v, %v", tk, err)
	}
}

// titlesOf lists ts's titles, comma-separated.
func titlesOf(ts []*state.Task) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Title)
	}
	return strings.Join(out, ",")
}

// TestVisibleTasksNeverStale: VisibleTasks keeps, per state and member,
// the tasks the member may see (State.Memo); every change that makes a
// new state shows in the next answer: the member's own write, an event of
// another member synced in, a role taken away and given back. The state
// before each change still answers as it did.
func TestVisibleTasksNeverStale(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	do(t, alice, p, &state.TaskCreate{Title: "Root", VisibleTo: []string{"researcher"}})
	copyAll(t, alice, bob, p)
	me := bob.Me().ID
	stateOf := func() *state.State {
		t.Helper()
		s, err := bob.State(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// (The titles are compared sorted; the order is compared with a walk
	// of the state below.)
	check := func(s *state.State, want, what string) {
		t.Helper()
		for range 2 { // computed, then kept
			got := strings.Split(titlesOf(VisibleTasks(s, me, nil)), ",")
			slices.Sort(got)
			if got := strings.Join(got, ","); got != want {
				t.Fatalf("%s: bob sees %q, want %q", what, got, want)
			}
		}
		// And what a walk of s from scratch finds, in the same order.
		var fresh []*state.Task
		for _, tk := range TreeOrder(s.Tasks()) {
			if s.CanSee(me, tk) {
				fresh = append(fresh, tk)
			}
		}
		if got := titlesOf(VisibleTasks(s, me, nil)); got != titlesOf(fresh) {
			t.Fatalf("%s: bob sees %q, a walk of the state %q", what, got, titlesOf(fresh))
		}
	}
	s0 := stateOf()
	check(s0, "Root", "at first")
	do(t, bob, p, &state.TaskCreate{Title: "Own", VisibleTo: []string{"researcher"}})
	s1 := stateOf()
	check(s1, "Own,Root", "after bob's own write")
	copyAll(t, bob, alice, p)
	do(t, alice, p, &state.TaskCreate{Title: "Synced", VisibleTo: []string{"researcher"}})
	copyAll(t, alice, bob, p)
	s2 := stateOf()
	check(s2, "Own,Root,Synced", "after alice's event synced in")
	do(t, alice, p, &state.RoleRevoke{Member: me, Role: "researcher"})
	copyAll(t, alice, bob, p)
	s3 := stateOf()
	check(s3, "Own", "with bob's role taken away (his own task only)")
	do(t, alice, p, &state.RoleAssign{Member: me, Role: "researcher"})
	copyAll(t, alice, bob, p)
	check(stateOf(), "Own,Root,Synced", "with the role given back")
	check(s0, "Root", "the first state, again")
	check(s2, "Own,Root,Synced", "the state before the revoke, again")
	// A caller changing what it was given changes nothing kept.
	got := VisibleTasks(s2, me, nil)
	got[0] = nil
	check(s2, "Own,Root,Synced", "after a caller wrote over its copy")
}

// TestVisibleTasksKept: asking a state again for a member's tasks costs
// a copy of the kept list, not the tree order and visibility of every
// task again (issue 15: every request and served command asked).
// Allocations, not time, so load cannot break it.
func TestVisibleTasksKept(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	for i := range 30 {
		do(t, alice, p, &state.TaskCreate{Title: fmt.Sprintf("t%d", i), VisibleTo: []string{"researcher"}})
	}
	copyAll(t, alice, bob, p)
	s, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	me := bob.Me().ID
	if n := len(VisibleTasks(s, me, nil)); n != 30 {
		t.Fatalf("bob sees %d tasks, want 30", n)
	}
	if a := testing.AllocsPerRun(20, func() { VisibleTasks(s, me, nil) }); a > 2 {
		t.Errorf("VisibleTasks on a state already asked: %.0f allocations, want at most 2 (the memo's key, the copy)", a)
	}
	if a := testing.AllocsPerRun(20, func() { s.Tasks() }); a > 1 {
		t.Errorf("State.Tasks on a state already asked: %.0f allocations, want at most 1 (the copy)", a)
	}
}

// TestPropertyTreeOrder: TreeOrder orders any tasks as the plain walk of
// a map of children does (treeOrderModel): parents missing or zero make
// roots, tasks in a cycle no root reaches are left out, siblings keep the
// order given.
func TestPropertyTreeOrder(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(0, 40).Draw(rt, "tasks")
		tasks := make([]*state.Task, n)
		for i := range tasks {
			tasks[i] = &state.Task{ID: event.ID{byte(i + 1)}, Title: fmt.Sprint(i)}
		}
		for _, tk := range tasks {
			switch rapid.IntRange(0, 3).Draw(rt, "parent") {
			case 0: // a root
			case 1: // a parent not among them
				tk.Parent = event.ID{200}
			default: // any of them, itself and cycles included
				tk.Parent = tasks[rapid.IntRange(0, n-1).Draw(rt, "of")].ID
			}
		}
		if got, want := titlesOf(TreeOrder(tasks)), titlesOf(treeOrderModel(tasks)); got != want {
			rt.Fatalf("TreeOrder %q, the walk of a map of children %q", got, want)
		}
	})
}

// treeOrderModel is TreeOrder as a walk of a map of children.
func treeOrderModel(tasks []*state.Task) []*state.Task {
	known := map[event.ID]bool{}
	for _, t := range tasks {
		known[t.ID] = true
	}
	children := map[event.ID][]*state.Task{}
	for _, t := range tasks {
		p := t.Parent
		if !known[p] {
			p = event.ID{}
		}
		children[p] = append(children[p], t)
	}
	var out []*state.Task
	var walk func(event.ID)
	walk = func(id event.ID) {
		for _, c := range children[id] {
			out = append(out, c)
			walk(c.ID)
		}
	}
	walk(event.ID{})
	return out
}
