package app

import (
	"context"
	"testing"
	"time"
)

// TestHomeHandedOver: a Node of this process waiting for its home (a web
// request while a round or another request holds it) takes it the moment
// the holder lets go, without polling the lock file (a poll found it up to
// lockPoll late: issue 15's requests during a round). Counted in tries at
// the lock file, not time, so load cannot break it: the waiter tries once,
// after the holder closed.
func TestHomeHandedOver(t *testing.T) {
	ctx := context.Background()
	a := newMember(t, "Alice")
	before := lockTries.Load()
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		b, err := Open(ctx, a.home, a.id, Options{})
		if err == nil {
			b.Close()
		}
		got <- err
	}()
	time.Sleep(3 * lockPoll) // the waiter waits meanwhile
	a.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if n := lockTries.Load() - before; n != 1 {
		t.Errorf("the waiting Node tried the lock file %d times, want 1: it polled instead of being handed the home", n)
	}
	// Once let go, the home opens at once, and a Node that gives up
	// waiting leaves no turn taken.
	b, err := Open(ctx, a.home, a.id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, lockPoll)
	defer cancel()
	if _, err := Open(short, a.home, a.id, Options{}); err == nil {
		t.Fatal("a second Node opened a home the first holds")
	}
	b.Close()
	c, err := Open(ctx, a.home, a.id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
