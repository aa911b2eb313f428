package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// folds counts the folds of a log from the store (Node.State,
// LinkedState) in this process: what a command, a sync round or a web
// request costs grows with the log through them (issue 15).
var folds, foldsHolding atomic.Int64

// Folds returns how many logs this process has folded from its stores so
// far. Tests and benchmarks read it before and after an operation.
func Folds() int64 { return folds.Load() }

// FoldsHoldingHome returns how many of Folds were done by a node holding
// its home's lock, which every other process opening the home (a web UI
// request, a command) waits for meanwhile.
func FoldsHoldingHome() int64 { return foldsHolding.Load() }

// Prepare folds p's state with the home left to others meanwhile, and
// keeps it: what the node does next under the home's lock finds it
// folded (a node's round prepares each pursuance before it asks the
// state for its peers, then syncs). Folding only reads the store.
func (n *Node) Prepare(ctx context.Context, p event.ID) error {
	if err := n.holdsHome(); err != nil {
		return err
	}
	home := n.releaseHome()
	_, err := n.State(ctx, p)
	if e := home.reclaim(ctx); e != nil {
		return e
	}
	return err
}

// A Node keeps the last state it folded of each pursuance, with what it
// was folded from (foldKey): State returns it again while the store holds
// the same log and the member the same secrets, so that the steps of one
// command, sync round or web request share one fold instead of each
// folding the log again. The cache is the home's in this process (kept):
// every Node opened on the home shares it, and a state kept is extended
// with the events stored since rather than folded again (extend).
type foldCache struct {
	mu sync.Mutex
	by map[event.ID]*folded
	// ckpt is, per pursuance, how many events its checkpoint on disk
	// covers, as far as this process knows (checkpoint.go).
	ckpt map[event.ID]int
	// flights are the folds under way, per pursuance (share).
	flights map[event.ID]*flight
	// folding is, per pursuance, closed when the whole-log fold (or
	// checkpoint load) under way ends: one at a time, so that callers
	// arriving meanwhile (up's first round and first web request) take
	// its state instead of folding the log beside it, each holding a
	// state's worth of memory (docs/fold.md).
	folding map[event.ID]chan struct{}
	// marks are what complete pushes to relays found, and epochs count,
	// per relay, the times sync.db forgot some of its holdings
	// (pushmark.go).
	marks  map[pushKey]*pushMark
	epochs map[string]uint64
}

// lockFold waits until no whole-log fold of p runs in this process, then
// marks one as running; release ends it. It gives up when ctx ends.
func (c *foldCache) lockFold(ctx context.Context, p event.ID) (release func(), err error) {
	for {
		c.mu.Lock()
		ch, busy := c.folding[p]
		if !busy {
			if c.folding == nil {
				c.folding = map[event.ID]chan struct{}{}
			}
			ch = make(chan struct{})
			c.folding[p] = ch
			c.mu.Unlock()
			return func() {
				c.mu.Lock()
				delete(c.folding, p)
				c.mu.Unlock()
				close(ch)
			}, nil
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// folded is a state and what it was folded from.
type folded struct {
	s   *state.State
	key foldKey
	// own is set when the store has, since the fold, only this node's own
	// events of kinds that change neither the relay list, the keys, the
	// members nor the name (ownOnly): key is then the store's version
	// after them. Sync's plumbing (syncState) may use such a state; State
	// folds again.
	own bool
}

// foldKey is what a fold of a pursuance depends on: the store's log of
// it (its size and heads: the store only grows, and every new event
// either raises the count) and its equivocation evidence, the member's
// secrets file of it, and the member KEM keys this home holds (a device
// learns a new one from a revocation in the middle of a sync).
type foldKey struct {
	count    int
	heads    [32]byte
	evidence int
	secrets  [32]byte
	kems     [32]byte
}

// foldKey returns the current foldKey of p, and the evidence read on the
// way (a fold needs it).
func (n *Node) foldKey(ctx context.Context, p event.ID) (foldKey, []event.Equivocation, error) {
	var k foldKey
	ev, err := n.st.Evidence(ctx, p)
	if err != nil {
		return k, nil, err
	}
	k.evidence = len(ev)
	if k.count, err = n.st.Count(ctx, p); err != nil {
		return k, nil, err
	}
	hs, err := n.st.Heads(ctx, p)
	if err != nil {
		return k, nil, err
	}
	slices.SortFunc(hs, func(a, b event.ID) int { return bytesCompare(a[:], b[:]) })
	h := sha256.New()
	for _, id := range hs {
		h.Write(id[:])
	}
	h.Sum(k.heads[:0])
	if n.id != nil {
		b, err := os.ReadFile(filepath.Join(n.home, secretsDir, n.secretsName(p)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return k, nil, err
		}
		k.secrets = sha256.Sum256(b)
		kh := sha256.New()
		cur, retired := n.memberKEMs()
		for _, key := range append([]*identity.KEMPrivateKey{cur}, retired...) {
			if key != nil {
				kh.Write(key.Public().Bytes())
			}
		}
		kh.Sum(k.kems[:0])
	}
	return k, ev, nil
}

func bytesCompare(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return len(a) - len(b)
}

// cached returns the state of p folded from exactly key, if the node
// keeps one; with own, also one that lacks only this node's own plain
// writes (folded.own).
func (c *foldCache) cached(p event.ID, key foldKey, own bool) *state.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.by[p]
	if f == nil || f.key != key || (f.own && !own) {
		return nil
	}
	return f.s
}

// latest returns the state kept of p, whatever it was folded from, and
// its key.
func (c *foldCache) latest(p event.ID) (*state.State, foldKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.by[p]; f != nil {
		return f.s, f.key
	}
	return nil, foldKey{}
}

// keyOf returns the foldKey of the state kept of p, if any.
func (c *foldCache) keyOf(p event.ID) (foldKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.by[p]; f != nil {
		return f.key, true
	}
	return foldKey{}, false
}

// reset forgets every state kept: the keys the member holds changed, and
// a state opens what is sealed to them.
func (c *foldCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.by, c.ckpt = nil, nil
}

func (c *foldCache) keep(p event.ID, s *state.State, key foldKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[event.ID]*folded{}
	}
	c.by[p] = &folded{s: s, key: key}
}

// wrote records that this node stored its own event e of p, the store
// having been at before just before: a state folded at before stays good
// for syncState when e changes nothing Sync reads from it.
func (c *foldCache) wrote(p event.ID, before, after foldKey, e *event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.by[p]
	if f == nil || f.key != before {
		return
	}
	if !ownOnly(e) {
		delete(c.by, p)
		return
	}
	f.key, f.own = after, true
}

// ownOnly reports whether e, this member's own event, leaves what Sync
// reads from a state (relay list, key generations and holders, members,
// name) as it was: a task's events, which are sealed under the current
// generation and change no rule.
func ownOnly(e *event.Event) bool { return taskKind(e.Kind) }

// taskKind reports whether k is a kind of a task's events.
func taskKind(k event.Kind) bool {
	switch k {
	case event.KindTaskCreate, event.KindTaskEdit, event.KindTaskMove, event.KindTaskAssign,
		event.KindTaskUnassign, event.KindTaskStatus, event.KindTaskComment, event.KindTaskArchive,
		event.KindTaskSealed, event.KindTaskAttach:
		return true
	}
	return false
}

// fold folds p's log from the store, or returns the state already folded
// from the same log and secrets (own: or lacking only this node's plain
// writes since), or that state extended with the events stored since
// (docs/fold.md). Nodes sharing the cache that need p's state at the same
// key at once (a round and a web request of one node) share one fold.
func (n *Node) fold(ctx context.Context, p event.ID, own bool) (*state.State, error) {
	key, ev, err := n.foldKey(ctx, p)
	if err != nil {
		return nil, err
	}
	if s := n.folds.cached(p, key, own); s != nil {
		return s, nil
	}
	return n.folds.share(ctx, p, key, func() (*state.State, error) { return n.foldAt(ctx, p, key, ev, own) })
}

// A flight is a fold of a pursuance at a key under way, which others
// needing the same state wait for (foldCache.share).
type flight struct {
	key     foldKey
	done    chan struct{}
	s       *state.State
	waiters atomic.Int32 // for tests
}

// share returns what fold returns for p at key: when another fold of p
// at key is under way, its state once it ends (or, when it failed, one
// of this caller's own); else fold's, which others arriving meanwhile
// share. A fold of p at another key goes on alone.
func (c *foldCache) share(ctx context.Context, p event.ID, key foldKey, fold func() (*state.State, error)) (*state.State, error) {
	c.mu.Lock()
	if f := c.flights[p]; f != nil && f.key == key {
		c.mu.Unlock()
		f.waiters.Add(1)
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.s != nil {
			return f.s, nil
		}
		return fold()
	}
	f := &flight{key: key, done: make(chan struct{})}
	if c.flights == nil {
		c.flights = map[event.ID]*flight{}
	}
	lead := c.flights[p] == nil
	if lead {
		c.flights[p] = f
	}
	c.mu.Unlock()
	s, err := fold()
	if lead {
		c.mu.Lock()
		delete(c.flights, p)
		c.mu.Unlock()
		f.s = s
		close(f.done)
	}
	return s, err
}

// foldAt is fold of p at key, ev the evidence read with it.
func (n *Node) foldAt(ctx context.Context, p event.ID, key foldKey, ev []event.Equivocation, own bool) (*state.State, error) {
	if s, err := n.extend(ctx, p, key); err != nil || s != nil {
		if s != nil {
			n.maybeCheckpoint(p, s, key, 0)
		}
		return s, err
	}
	// One whole-log fold of p at a time: a caller that waited for another
	// takes its state (or extends it) as above.
	release, err := n.folds.lockFold(ctx, p)
	if err != nil {
		return nil, err
	}
	defer release()
	if s := n.folds.cached(p, key, own); s != nil {
		return s, nil
	}
	if s, err := n.extend(ctx, p, key); err != nil || s != nil {
		if s != nil {
			n.maybeCheckpoint(p, s, key, 0)
		}
		return s, err
	}
	if s, err := n.loadCheckpoint(ctx, p, key, ev); err != nil {
		return nil, err
	} else if s != nil {
		n.folds.keep(p, s, key)
		n.maybeCheckpoint(p, s, key, 0)
		return s, nil
	}
	start := time.Now()
	folds.Add(1)
	if n.owner().holding.Load() {
		foldsHolding.Add(1)
	}
	b := state.NewBuilder(p, ev)
	if n.id != nil {
		sec, err := n.stateSecrets(p)
		if err != nil {
			return nil, err
		}
		b.SetSecrets(sec)
	}
	if err := n.st.Iterate(ctx, p, b.Add); err != nil {
		return nil, err
	}
	s, err := b.Finish()
	if err != nil {
		return nil, err
	}
	n.folds.keep(p, s, key)
	n.maybeCheckpoint(p, s, key, time.Since(start))
	return s, nil
}

// extend returns the state kept of p extended with the events stored
// since it was folded, when the log is all that changed (the evidence, the
// member's secrets and KEM keys are those it was folded with) and the new
// events are few enough to read one by one; nil when a full fold is due.
func (n *Node) extend(ctx context.Context, p event.ID, key foldKey) (*state.State, error) {
	base, bkey := n.folds.latest(p)
	if base == nil || bkey.evidence != key.evidence || bkey.secrets != key.secrets || bkey.kems != key.kems ||
		key.count <= base.Len() || key.count-base.Len() > maxExtend {
		return nil, nil
	}
	if err := base.Load(); err != nil {
		// Opened from a checkpoint, and its events did not load: fold.
		n.warn("the state kept does not load its events; folding the log instead", "pursuance", p.Short(), "err", err)
		return nil, nil
	}
	evs, err := n.storedSince(ctx, p, base, key.count-base.Len())
	if err != nil || evs == nil {
		return nil, err
	}
	s, err := base.Extend(evs)
	if errors.Is(err, state.ErrRefold) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	extends.Add(1)
	n.folds.keep(p, s, key)
	return s, nil
}

// maxExtend bounds the events a state is extended with, read one by one
// from the store; past it, a full fold (one streaming read of the log) is
// cheaper.
const maxExtend = 20_000

// extends counts the states extended instead of folded (Extends).
var extends atomic.Int64

// Extends returns how many times this process extended a state it kept
// with the events stored since, instead of folding the log again.
func Extends() int64 { return extends.Load() }

// storedSince returns the events of p the store holds that s lacks, want
// of them, found from the store's heads back through the links to what s
// has; nil when the store does not hold exactly want such events (then a
// full fold is due).
func (n *Node) storedSince(ctx context.Context, p event.ID, s *state.State, want int) ([]*event.Event, error) {
	heads, err := n.st.Heads(ctx, p)
	if err != nil {
		return nil, err
	}
	var out []*event.Event
	seen := map[event.ID]bool{}
	stack := heads
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if id.IsZero() || seen[id] {
			continue
		}
		seen[id] = true
		if _, ok := s.Entry(id); ok {
			continue
		}
		if len(out) == want {
			return nil, nil
		}
		e, err := n.st.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		stack = append(stack, e.Parents...)
		stack = append(stack, e.Backlink)
	}
	if len(out) != want {
		return nil, nil
	}
	return out, nil
}

// kept holds, per home, the fold cache every Node of that home opened by
// this process shares: a node that keeps running (`pursuance up`) serves
// its web requests, each opening its own Node, from the states kept, and
// extends them with what is stored meanwhile instead of folding again.
var kept struct {
	sync.Mutex
	by    map[string]*foldCache
	order []string // homes, least recently opened first
}

// maxKeptHomes bounds the homes whose states a process keeps (tests open
// many).
const maxKeptHomes = 4

// keptFor returns the fold cache of home, shared by the process.
func keptFor(home string) *foldCache {
	if abs, err := filepath.Abs(home); err == nil {
		home = abs
	}
	kept.Lock()
	defer kept.Unlock()
	if kept.by == nil {
		kept.by = map[string]*foldCache{}
	}
	kept.order = slices.DeleteFunc(kept.order, func(h string) bool { return h == home })
	kept.order = append(kept.order, home)
	c := kept.by[home]
	if c == nil {
		c = new(foldCache)
		kept.by[home] = c
	}
	for len(kept.order) > maxKeptHomes {
		delete(kept.by, kept.order[0])
		kept.order = kept.order[1:]
	}
	return c
}

// ForgetStates forgets every state this process keeps, as a new process
// starts with none: tests of what one command costs (each command being a
// process of its own) call it first.
func ForgetStates() {
	kept.Lock()
	defer kept.Unlock()
	for _, c := range kept.by {
		c.reset()
	}
}

// syncState is State for Sync's plumbing (relay list, key generations,
// healing): it may be a state that lacks only this node's own task events
// written since it was folded (ownOnly), which change nothing it reads.
func (n *Node) syncState(ctx context.Context, p event.ID) (*state.State, error) {
	s, err := n.fold(ctx, p, true)
	if err != nil {
		return nil, err
	}
	if n.dev != nil {
		// As in State: a new member KEM key from another device opens
		// what is sealed to it.
		if learned, err := n.learnMemberKEMs(s); err != nil {
			return nil, err
		} else if learned {
			return n.fold(ctx, p, true)
		}
	}
	return s, nil
}
