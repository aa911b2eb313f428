package app

import (
	"context"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/state"
)

// TestRemovedRelaysKept: the relays a log removed (State.RemovedRelays,
// which the relay list reads) are found by a walk of the whole log once
// per state (State.Memo), and never stale: each relays
// event makes a new state that answers for itself, and an older state
// still answers as it did; asking a state again walks nothing.
func TestRemovedRelaysKept(t *testing.T) {
	ctx := context.Background()
	alice := newMember(t, "Alice")
	c, _ := charter.Template("desk")
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "http://127.0.0.1:1", "http://127.0.0.1:2"
	steps := []struct {
		add, remove []string
		want        string
	}{
		{[]string{a, b}, nil, ""},
		{nil, []string{a}, a},
		{[]string{a}, []string{b}, b},
		{nil, []string{a}, a + "," + b},
	}
	var states []*state.State
	check := func(s *state.State, want, what string) {
		t.Helper()
		for range 2 { // walked, then kept
			if g := strings.Join(s.RemovedRelays(), ","); g != want {
				t.Fatalf("%s: removed %q, want %q", what, g, want)
			}
		}
	}
	for i, st := range steps {
		if _, err := alice.SetRelays(ctx, p, st.add, st.remove, DoOptions{}); err != nil {
			t.Fatal(err)
		}
		s, err := alice.State(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, s)
		check(s, st.want, "after step "+string(rune('1'+i)))
	}
	for i, s := range states {
		check(s, steps[i].want, "the state of step "+string(rune('1'+i))+" again")
	}
	last := states[len(states)-1]
	if n := testing.AllocsPerRun(10, func() { last.RemovedRelays() }); n > 2 {
		t.Errorf("asking a state again for its removed relays: %.0f allocations, want at most 2 (no walk of the log)", n)
	}
}
