package app

import (
	"context"
	"strings"
	"testing"

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
