package state

import (
	"cmp"
	"slices"
	"sync"
)

// maxMemo bounds the views one State keeps (Memo): a view per member
// asking, a few of each kind; past it, a view is computed and not kept.
const maxMemo = 64

// memo holds the views derived from a State and kept with it. A State
// never changes once built (Extend returns a new one), so a view derived
// from it never goes stale: a write, a synced event or a role change
// makes a new State, whose memo starts empty.
type memo struct {
	mu sync.Mutex
	m  map[any]any
	// tasks is Tasks' order, computed once.
	tasksOnce sync.Once
	tasks     []*Task
}

// Memo returns the view of s named key: what fn returned the first time
// Memo was asked for key on s. fn must compute it from s alone (and what
// key names, such as a member), never from the clock, the store or
// anything else that changes while s does not; the value is shared by
// every caller and must not be modified. An error is not kept: the next
// call computes again. Two callers asking at once may both compute it.
func (s *State) Memo(key any, fn func() (any, error)) (any, error) {
	s.memo.mu.Lock()
	v, ok := s.memo.m[key]
	s.memo.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := fn()
	if err != nil {
		return nil, err
	}
	s.memo.mu.Lock()
	defer s.memo.mu.Unlock()
	if old, ok := s.memo.m[key]; ok {
		return old, nil
	}
	if s.memo.m == nil {
		s.memo.m = map[any]any{}
	}
	if len(s.memo.m) < maxMemo {
		s.memo.m[key] = v
	}
	return v, nil
}

// orderedTasks is Tasks' list, computed once per State and shared: the
// callers copy it.
func (s *State) orderedTasks() []*Task {
	if v := s.view(); v != nil {
		// Opened from a checkpoint and not loaded: the view keeps the
		// order. Not kept: once the events load, Task answers from them.
		return slices.DeleteFunc(slices.Clone(v.order), func(t *Task) bool { return t.Sealed && t.Title == "" })
	}
	s.memo.tasksOnce.Do(func() {
		b := s.b()
		type placed struct {
			pos int32
			t   *Task
		}
		ps := make([]placed, 0, b.tasks.len())
		for _, t := range b.tasks.all() {
			if !t.Sealed || t.Title != "" {
				ps = append(ps, placed{b.taskPos(t), t})
			}
		}
		slices.SortFunc(ps, func(x, y placed) int { return cmp.Compare(x.pos, y.pos) })
		out := make([]*Task, len(ps))
		for i, p := range ps {
			out[i] = p.t
		}
		s.memo.tasks = out
	})
	return s.memo.tasks
}
