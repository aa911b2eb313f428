package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// Memory is a Store held in memory, for tests and for tools that need no
// durability. It passes the same conformance suite as SQLite; "durable"
// there means only "until Close". It is safe for concurrent use: one mutex
// guards everything, so it does not scale with cores, which is not its job.
type Memory struct {
	mu     sync.Mutex
	closed bool
	events map[event.ID]*event.Event // every event, by ID
	logs   map[event.ID]*memLog      // per pursuance
}

var _ Store = (*Memory)(nil)

// memLog is the index of one pursuance's events.
type memLog struct {
	order    []event.ID // every event; in (lamport, ID) order when sorted
	sorted   bool
	heads    map[event.ID]struct{}
	vv       map[identity.PublicKey]uint64
	bySeq    map[memPos][]event.ID // ascending
	evidence map[event.Equivocation]struct{}
}

type memPos struct {
	author identity.PublicKey
	seq    uint64
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		events: make(map[event.ID]*event.Event),
		logs:   make(map[event.ID]*memLog),
	}
}

// lock takes the mutex for a call named op, or returns why the call cannot
// proceed. On success the caller must unlock.
func (m *Memory) lock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

func (m *Memory) log(pid event.ID) *memLog {
	l := m.logs[pid]
	if l == nil {
		l = &memLog{
			sorted:   true,
			heads:    make(map[event.ID]struct{}),
			vv:       make(map[identity.PublicKey]uint64),
			bySeq:    make(map[memPos][]event.ID),
			evidence: make(map[event.Equivocation]struct{}),
		}
		m.logs[pid] = l
	}
	return l
}

// Put implements Store. It is atomic because it checks everything that can
// fail before it changes anything.
func (m *Memory) Put(ctx context.Context, events []*event.Event, evidence []event.Equivocation) error {
	if err := checkBatch(events, evidence); err != nil {
		return fmt.Errorf("store: put: %w", err)
	}
	if err := m.lock(ctx, "put"); err != nil {
		return err
	}
	defer m.mu.Unlock()

	var added []*event.Event
	for _, e := range events {
		id := e.ID()
		if old, ok := m.events[id]; ok {
			if !old.HasBody() && e.HasBody() {
				m.events[id] = e
			}
			continue
		}
		m.events[id] = e
		added = append(added, e)
		l := m.log(e.PursuanceID())
		if n := len(l.order); n > 0 && l.sorted && compareCausal(m.events[l.order[n-1]], e) > 0 {
			l.sorted = false
		}
		l.order = append(l.order, id)
		pos := memPos{e.Author, e.Seq}
		at := l.bySeq[pos]
		i, _ := slices.BinarySearchFunc(at, id, event.ID.Compare)
		l.bySeq[pos] = slices.Insert(at, i, id)
		if e.Seq > l.vv[e.Author] {
			l.vv[e.Author] = e.Seq
		}
	}
	newHeads, named := headChanges(added)
	for p, pid := range named {
		if l := m.logs[pid]; l != nil {
			delete(l.heads, p)
		}
	}
	for _, e := range newHeads {
		m.log(e.PursuanceID()).heads[e.ID()] = struct{}{}
	}
	for _, q := range evidence {
		m.log(q.Pursuance).evidence[q] = struct{}{}
	}
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id event.ID) (*event.Event, error) {
	if err := m.lock(ctx, "get"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e, ok := m.events[id]
	if !ok {
		return nil, fmt.Errorf("store: get %s: %w", id.Short(), ErrNotFound)
	}
	return e, nil
}

// Refs implements Store.
func (m *Memory) Refs(ctx context.Context, ids []event.ID) (map[event.ID]event.Ref, error) {
	if err := m.lock(ctx, "refs"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make(map[event.ID]event.Ref, len(ids))
	for _, id := range ids {
		if e, ok := m.events[id]; ok {
			out[id] = e.Ref()
		}
	}
	return out, nil
}

// BySeq implements Store.
func (m *Memory) BySeq(ctx context.Context, pursuance event.ID, author identity.PublicKey, seq uint64) ([]*event.Event, error) {
	if err := m.lock(ctx, "by seq"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	l := m.logs[pursuance]
	if l == nil {
		return nil, nil
	}
	var out []*event.Event
	for _, id := range l.bySeq[memPos{author, seq}] {
		out = append(out, m.events[id])
	}
	return out, nil
}

// Heads implements Store.
func (m *Memory) Heads(ctx context.Context, pursuance event.ID) ([]event.ID, error) {
	if err := m.lock(ctx, "heads"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	l := m.logs[pursuance]
	if l == nil {
		return nil, nil
	}
	return slices.SortedFunc(maps.Keys(l.heads), event.ID.Compare), nil
}

// VersionVector implements Store.
func (m *Memory) VersionVector(ctx context.Context, pursuance event.ID) (map[identity.PublicKey]uint64, error) {
	if err := m.lock(ctx, "version vector"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make(map[identity.PublicKey]uint64)
	if l := m.logs[pursuance]; l != nil {
		maps.Copy(out, l.vv)
	}
	return out, nil
}

// Iterate implements Store. It visits the events stored when it starts;
// the mutex is not held while fn runs, so fn may call the store, Put
// included, and events it puts are not visited.
func (m *Memory) Iterate(ctx context.Context, pursuance event.ID, fn func(*event.Event) error) error {
	if err := m.lock(ctx, "iterate"); err != nil {
		return err
	}
	var snap []*event.Event
	if l := m.logs[pursuance]; l != nil {
		if !l.sorted {
			slices.SortFunc(l.order, func(a, b event.ID) int { return compareCausal(m.events[a], m.events[b]) })
			l.sorted = true
		}
		snap = make([]*event.Event, len(l.order))
		for i, id := range l.order {
			snap[i] = m.events[id]
		}
	}
	m.mu.Unlock()
	for _, e := range snap {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: iterate: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Evidence implements Store.
func (m *Memory) Evidence(ctx context.Context, pursuance event.ID) ([]event.Equivocation, error) {
	if err := m.lock(ctx, "evidence"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	l := m.logs[pursuance]
	if l == nil || len(l.evidence) == 0 {
		return nil, nil
	}
	return slices.SortedFunc(maps.Keys(l.evidence), compareEquivocation), nil
}

// Pursuances implements Store.
func (m *Memory) Pursuances(ctx context.Context) ([]event.ID, error) {
	if err := m.lock(ctx, "pursuances"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []event.ID
	for pid := range m.logs {
		if _, ok := m.events[pid]; ok {
			out = append(out, pid)
		}
	}
	slices.SortFunc(out, event.ID.Compare)
	return out, nil
}

// Count implements Store.
func (m *Memory) Count(ctx context.Context, pursuance event.ID) (int, error) {
	if err := m.lock(ctx, "count"); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	if l := m.logs[pursuance]; l != nil {
		return len(l.order), nil
	}
	return 0, nil
}

// Close implements Store. It drops every event; a second Close returns
// ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.closed = true
	m.events, m.logs = nil, nil
	return nil
}
