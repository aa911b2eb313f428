package state

import (
	"errors"
	"sync"
	"testing"
)

// TestMemo: a view is computed once per State and key and kept with that
// State only; an error is not kept; past maxMemo keys a view is computed
// each time rather than kept; concurrent askers get one value.
func TestMemo(t *testing.T) {
	s1, s2 := new(State), new(State)
	calls := 0
	count := func(v int) func() (any, error) {
		return func() (any, error) { calls++; return v, nil }
	}
	if v, _ := s1.Memo("k", count(1)); v != 1 {
		t.Fatalf("first: %v", v)
	}
	if v, _ := s1.Memo("k", count(2)); v != 1 || calls != 1 {
		t.Fatalf("kept: %v after %d computations, want 1 after 1", v, calls)
	}
	if v, _ := s2.Memo("k", count(3)); v != 3 {
		t.Fatalf("another state answered %v: views are per state", v)
	}
	boom := errors.New("boom")
	if _, err := s1.Memo("e", func() (any, error) { return nil, boom }); err != boom {
		t.Fatalf("error: %v", err)
	}
	if v, err := s1.Memo("e", count(4)); err != nil || v != 4 {
		t.Fatalf("after an error: %v, %v (an error is not kept)", v, err)
	}
	for i := range maxMemo {
		s2.Memo(i, count(i))
	}
	before := calls
	s2.Memo("past", count(0))
	s2.Memo("past", count(0))
	if calls-before != 2 {
		t.Fatalf("past maxMemo: %d computations for 2 asks, want 2 (not kept)", calls-before)
	}
	s3 := new(State)
	var wg sync.WaitGroup
	got := make([]any, 8)
	for i := range got {
		wg.Go(func() { got[i], _ = s3.Memo("c", func() (any, error) { return new(int), nil }) })
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] {
			t.Fatal("concurrent askers got different values")
		}
	}
}
