package state

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// A state opened from a checkpoint (OpenCheckpoint) answers its readers
// of members, tasks, relays and keys from the checkpoint's view, without
// its events: a command that lists tasks costs the checkpoint's size,
// not the log's. Its per-event part — the nodes, the verdicts, the pass
// state's records — is loaded the first time anything needs it (Extend,
// Log, Entry, Check, Hash, ...), once, by the loader the caller gave
// (which reads the events from its store: Builder.FinishFrom). See
// docs/fold.md, "The checkpoint on disk".

// lazyNodes is the part of a state opened from a checkpoint that is
// loaded when first needed.
type lazyNodes struct {
	// v is what the readers answer from until the nodes are loaded; nil
	// from then on (the fold answers, and the view is let go).
	v    atomic.Pointer[ckState]
	once sync.Once
	load func() (*State, error)
	b    *builder
	err  error // the load's: every reader that needs the events panics with it
}

// ckState is what a checkpoint holds of a state's readers: the authority
// state's charter, members, former members, relay list and key
// generations (auth has only those set), the tasks, the relays the log
// removed and the node addresses in force.
type ckState struct {
	pursuance event.ID
	n         int
	auth      *authState
	tasks     layered[event.ID, *Task] // a base only: never written
	order     []*Task                  // every task, in Tasks' order (sealed ones included)
	removed   []string
	nodes     []NodeAddressInfo
}

// b returns the fold of s: for a state opened from a checkpoint, its
// nodes loaded on the first call (by every goroutine at once: the others
// wait for it). A loader's error is not one a reader can answer: it
// panics, as a store that cannot be read would make any fold fail (each
// reader that needs the events, not the first only).
func (s *State) b() *builder {
	if s.folded != nil {
		return s.folded
	}
	l := s.lazy
	l.do()
	if l.err != nil {
		panic(fmt.Sprintf("state: loading the events of a state opened from a checkpoint: %v", l.err))
	}
	return l.b
}

// do loads the nodes, once.
func (l *lazyNodes) do() {
	l.once.Do(func() {
		full, err := l.load()
		l.load = nil // and the verdicts it holds (CheckpointVerdicts)
		if err != nil {
			l.err = err
			return
		}
		l.b = full.b()
		l.v.Store(nil)
	})
}

// Load loads the events of a state opened from a checkpoint, as the first
// reader needing them would, and returns the loader's error instead of
// panicking with it: a caller that can answer an error (a write, an
// extension) calls it before such a reader. It returns nil at once for a
// state folded, extended or loaded already.
func (s *State) Load() error {
	if s.folded != nil {
		return nil
	}
	s.lazy.do()
	if s.lazy.err != nil {
		return fmt.Errorf("state: loading the events of a state opened from a checkpoint: %w", s.lazy.err)
	}
	return nil
}

// view returns the view s answers its readers from, or nil when s has
// its fold in memory.
func (s *State) view() *ckState {
	if s.lazy == nil {
		return nil
	}
	return s.lazy.v.Load()
}

// Loaded reports whether s has its events in memory: always for a state
// folded or extended, for one opened from a checkpoint once something
// needed them (docs/fold.md).
func (s *State) Loaded() bool { return s.view() == nil }

// auth returns the authority state the view's readers (Members, Relays,
// Charter, ...) answer from: the view's while the nodes are not loaded.
// Only what the view holds may be read from it.
func (s *State) auth() *authState {
	if v := s.view(); v != nil {
		return v.auth
	}
	return s.b().auth
}

// tasks returns the tasks by ID.
func (s *State) tasks() *layered[event.ID, *Task] {
	if v := s.view(); v != nil {
		return &v.tasks
	}
	return &s.b().tasks
}

// RemovedRelays returns the relays that accepted relays events of the log
// removed and no later one added back, sorted: the relays an invite code
// named that a sync must no longer count on (app's relay list). Found
// once per state (Memo) or kept in a checkpoint's view.
func (s *State) RemovedRelays() []string {
	if v := s.view(); v != nil {
		return slices.Clone(v.removed)
	}
	v, _ := s.Memo(removedRelaysKey{}, func() (any, error) {
		removed := map[string]bool{}
		for _, n := range s.b().nodes {
			if n.e.Kind != event.KindRelays || !n.accepted {
				continue
			}
			if r, ok := n.op.(*Relays); ok {
				for _, u := range r.Remove {
					removed[u] = true
				}
				for _, u := range r.Add {
					delete(removed, u)
				}
			}
		}
		return slices.Sorted(maps.Keys(removed)), nil
	})
	return slices.Clone(v.([]string))
}

// removedRelaysKey names, in a State's memo, RemovedRelays' answer: found
// by a walk of the log, once per state.
type removedRelaysKey struct{}

// ckView is the view's part of a checkpoint (State.Checkpoint).
type ckView struct {
	Charter []byte              `cbor:"1,keyasint,omitempty"` // the charter's wire form
	Members []*Member           `cbor:"2,keyasint,omitempty"`
	Former  []*Member           `cbor:"3,keyasint,omitempty"`
	Tasks   []ckTask            `cbor:"4,keyasint,omitempty"` // in Tasks' order, sealed ones included
	Relays  []string            `cbor:"5,keyasint,omitempty"`
	Removed []string            `cbor:"6,keyasint,omitempty"`
	Keys    map[string][]KeyGen `cbor:"7,keyasint,omitempty"`
	Nodes   []NodeAddressInfo   `cbor:"8,keyasint,omitempty"`
}

// viewOf returns the view of a folded state.
func viewOf(s *State) ckView {
	b := s.b()
	v := ckView{Charter: b.auth.charterWire, Relays: s.Relays(), Removed: s.RemovedRelays(), Keys: b.auth.keys,
		Nodes: s.NodeAddresses()}
	byID := func(x, y *Member) int { return x.ID.Compare(y.ID) }
	v.Members = slices.SortedFunc(maps.Values(b.auth.members), byID)
	v.Former = slices.SortedFunc(maps.Values(b.auth.former), byID)
	ts := slices.Collect(b.tasks.values())
	slices.SortFunc(ts, func(x, y *Task) int { return int(b.taskPos(x)) - int(b.taskPos(y)) })
	v.Tasks = make([]ckTask, len(ts))
	for i, t := range ts {
		v.Tasks[i] = toCkTask(t)
	}
	return v
}

// ckTask is a Task in a checkpoint's view: its exported fields (what the
// readers read; the add-wins sets and such are the fold's), as an array,
// which is what most of a view is and decodes fastest.
type ckTask struct {
	_         struct{} `cbor:",toarray"`
	ID        event.ID
	Creator   identity.PublicKey
	Parent    event.ID
	Title     string
	Body      string
	Due       string
	Status    Status
	VisibleTo []string
	Assignees []ckAssignee
	Archived  bool
	Comments  []ckComment
	Files     []File
	Created   uint64
	Updated   uint64
	Sealed    bool
	Origin    *TaskOrigin
}

type ckAssignee struct {
	_      struct{} `cbor:",toarray"`
	Member identity.PublicKey
	Role   string
}

type ckComment struct {
	_      struct{} `cbor:",toarray"`
	ID     event.ID
	Author identity.PublicKey
	Text   string
	Time   uint64
}

func toCkTask(t *Task) ckTask {
	c := ckTask{ID: t.ID, Creator: t.Creator, Parent: t.Parent, Title: t.Title, Body: t.Body, Due: t.Due, Status: t.Status,
		VisibleTo: t.VisibleTo, Archived: t.Archived, Files: t.Files, Created: t.Created, Updated: t.Updated, Sealed: t.Sealed, Origin: t.Origin}
	if t.Assignees != nil {
		c.Assignees = make([]ckAssignee, len(t.Assignees))
		for i, a := range t.Assignees {
			c.Assignees[i] = ckAssignee{Member: a.Member, Role: a.Role}
		}
	}
	if t.Comments != nil {
		c.Comments = make([]ckComment, len(t.Comments))
		for i, m := range t.Comments {
			c.Comments[i] = ckComment{ID: m.ID, Author: m.Author, Text: m.Text, Time: m.Time}
		}
	}
	return c
}

func (c *ckTask) task() *Task {
	t := &Task{ID: c.ID, Creator: c.Creator, Parent: c.Parent, Title: c.Title, Body: c.Body, Due: c.Due, Status: c.Status,
		VisibleTo: c.VisibleTo, Archived: c.Archived, Files: c.Files, Created: c.Created, Updated: c.Updated, Sealed: c.Sealed, Origin: c.Origin}
	if c.Assignees != nil {
		t.Assignees = make([]Assignee, len(c.Assignees))
		for i, a := range c.Assignees {
			t.Assignees[i] = Assignee{Member: a.Member, Role: a.Role}
		}
	}
	if c.Comments != nil {
		t.Comments = make([]Comment, len(c.Comments))
		for i, m := range c.Comments {
			t.Comments[i] = Comment{ID: m.ID, Author: m.Author, Text: m.Text, Time: m.Time}
		}
	}
	return t
}

// OpenCheckpoint returns the state a checkpoint (State.Checkpoint) was
// made of, without its events: its readers of members, tasks, relays and
// keys answer from the checkpoint, and the first that needs the events
// (Extend, Log, Check, Hash, ...) has load called, once, for the state
// folded from them: Builder.FinishFrom over the same data and events,
// which checks the state's hash. The checkpoint must be of pursuance, and
// folded with a member's secrets or not as secrets says; other misfits
// (another version, corrupt) are errors wrapping ErrCheckpoint. Nothing
// here checks the view against the events: the caller vouches for the
// data (the home seals its checkpoints, docs/fold.md).
func OpenCheckpoint(data []byte, pursuance event.ID, secrets bool, load func() (*State, error)) (*State, error) {
	ck, err := decodeCheckpoint(data)
	if err != nil {
		return nil, err
	}
	switch {
	case ck.Pursuance != pursuance:
		return nil, fmt.Errorf("%w: another pursuance", ErrCheckpoint)
	case ck.Secrets != secrets:
		return nil, fmt.Errorf("%w: folded with other secrets", ErrCheckpoint)
	case ck.Len <= 0:
		return nil, fmt.Errorf("%w: no events", ErrCheckpoint)
	}
	var cv ckView
	if err := ckDec().Unmarshal(ck.View, &cv); err != nil {
		return nil, fmt.Errorf("%w: its view: %v", ErrCheckpoint, err)
	}
	a := &authState{charterWire: cv.Charter, members: make(map[identity.PublicKey]*Member, len(cv.Members)),
		former: make(map[identity.PublicKey]*Member, len(cv.Former)), relays: make(map[string]bool, len(cv.Relays)), keys: cv.Keys}
	if len(cv.Charter) > 0 {
		if a.charter, err = charter.Unmarshal(cv.Charter); err != nil {
			return nil, fmt.Errorf("%w: its charter: %v", ErrCheckpoint, err)
		}
	}
	if a.keys == nil {
		a.keys = map[string][]KeyGen{}
	}
	for _, m := range cv.Members {
		a.members[m.ID] = m
	}
	for _, m := range cv.Former {
		a.former[m.ID] = m
	}
	for _, r := range cv.Relays {
		a.relays[r] = true
	}
	v := &ckState{pursuance: pursuance, n: ck.Len, auth: a, tasks: layered[event.ID, *Task]{base: make(map[event.ID]*Task, len(cv.Tasks)), n: len(cv.Tasks)}, order: make([]*Task, len(cv.Tasks)), removed: cv.Removed,
		nodes: cv.Nodes}
	for i := range cv.Tasks {
		t := cv.Tasks[i].task()
		v.order[i] = t
		v.tasks.base[t.ID] = t
	}
	l := &lazyNodes{load: load}
	l.v.Store(v)
	return &State{lazy: l}, nil
}

// Reuse makes the Builder take, for the text of the task ops it decodes
// and opens (titles, bodies, comments), the equal strings of s's view
// when s is a state opened from a checkpoint and not loaded: the loader
// of s's events builds beside a view that holds the same text, and at a
// million events the two copies were ~100 MB of the load's peak (docs/
// fold.md, "Memory of up"). Finish and FinishFrom let the view go.
func (x *Builder) Reuse(s *State) {
	if v := s.view(); v != nil {
		x.b.reuse = v
	}
}

// reuseStrings replaces the strings of n's task op by the reused view's
// equal ones (Reuse).
func (b *builder) reuseStrings(n *node) {
	v := b.reuse
	if v == nil {
		return
	}
	same := func(s *string, view string) {
		if *s == view {
			*s = view
		}
	}
	switch o := n.op.(type) {
	case *TaskCreate:
		if t := v.tasks.base[n.e.ID()]; t != nil {
			same(&o.Title, t.Title)
			same(&o.Body, t.Body)
		}
	case *TaskEdit:
		if t := v.tasks.base[o.Task]; t != nil {
			if o.Title != nil {
				same(o.Title, t.Title)
			}
			if o.Body != nil {
				same(o.Body, t.Body)
			}
		}
	case *TaskComment:
		if t := v.tasks.base[o.Task]; t != nil {
			id := n.e.ID()
			for i := range t.Comments {
				if t.Comments[i].ID == id {
					same(&o.Text, t.Comments[i].Text)
					break
				}
			}
		}
	}
}
