package app

import (
	"context"
	"sync"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/state"
)

// TestConcurrentFoldsShareOne: callers that need a pursuance's state at
// once, with none kept (up starting: its first round and its first web
// request), fold the log once between them, not once each, which would
// hold a state's worth of memory per caller at the peak (docs/fold.md).
func TestConcurrentFoldsShareOne(t *testing.T) {
	ctx := context.Background()
	alice := newMember(t, "Alice")
	c, _ := charter.Template("desk")
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Fill(ctx, p, 2000, 1); err != nil {
		t.Fatal(err)
	}
	ForgetStates()
	before := Folds()
	start := make(chan struct{})
	states := make([]*state.State, 4)
	var wg sync.WaitGroup
	for i := range states {
		wg.Go(func() {
			<-start
			s, err := alice.State(ctx, p)
			if err != nil {
				t.Error(err)
			}
			states[i] = s
		})
	}
	close(start)
	wg.Wait()
	if n := Folds() - before; n != 1 {
		t.Errorf("%d callers at once folded the log %d times, want once", len(states), n)
	}
	for _, s := range states[1:] {
		if s != states[0] {
			t.Error("the callers got different states")
		}
	}
}
