package app

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// TestFoldShared: two Nodes of one process needing a pursuance's state at
// the same key at once (a round of up and a web request, both finding a
// late event to extend their kept state with) fold once, and both get
// that fold's state (issue 15: the same second-long Extend ran twice, each
// holding up the other's CPU). A fold at another key is not shared, and a
// fold that failed leaves the waiter to fold itself.
func TestFoldShared(t *testing.T) {
	ctx := context.Background()
	var c foldCache
	p := event.ID{1}
	k1, k2 := foldKey{count: 1}, foldKey{count: 2}
	want := new(state.State)
	var calls atomic.Int32
	release := make(chan struct{})
	slow := func() (*state.State, error) {
		calls.Add(1)
		<-release
		return want, nil
	}
	got := make(chan *state.State, 2)
	go func() {
		s, _ := c.share(ctx, p, k1, slow)
		got <- s
	}()
	f := waitFlight(t, &c, p)
	go func() {
		s, _ := c.share(ctx, p, k1, slow)
		got <- s
	}()
	waitWaiter(t, f)
	// Another key folds alone, at once.
	other := new(state.State)
	if s, _ := c.share(ctx, p, k2, func() (*state.State, error) { return other, nil }); s != other {
		t.Fatal("a fold at another key was given the first one's state")
	}
	close(release)
	if a, b := <-got, <-got; a != want || b != want {
		t.Fatalf("the two callers got %p and %p, want both %p", a, b, want)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d folds for two callers at one key, want 1", n)
	}
	// A failed fold: the waiter folds itself.
	fail := make(chan struct{})
	go c.share(ctx, p, k1, func() (*state.State, error) { <-fail; return nil, errors.New("boom") })
	f = waitFlight(t, &c, p)
	res := make(chan *state.State, 1)
	go func() {
		s, _ := c.share(ctx, p, k1, func() (*state.State, error) { return want, nil })
		res <- s
	}()
	waitWaiter(t, f)
	close(fail)
	if s := <-res; s != want {
		t.Fatal("after the fold it waited for failed, the waiter got no state of its own")
	}
}

// waitFlight waits until a fold of p is under way in c and returns it.
func waitFlight(t *testing.T, c *foldCache, p event.ID) *flight {
	t.Helper()
	for range 10000 {
		c.mu.Lock()
		f := c.flights[p]
		c.mu.Unlock()
		if f != nil {
			return f
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no fold under way")
	return nil
}

// waitWaiter waits until a caller waits for f.
func waitWaiter(t *testing.T, f *flight) {
	t.Helper()
	for range 10000 {
		if f.waiters.Load() > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the second caller did not wait for the fold under way")
}
