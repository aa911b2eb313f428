package app

import (
	"context"
	"errors"
	"time"
)

// A Node holds the home's lock (lockHome) for its whole life, except while
// Sync talks to relays: Sync lets go of it before its first network call
// or fold of the log and takes it only around the work that needs it
// (storing what came in, re-keying), never across a network call. So a relay that hangs never
// holds the home, and other commands and the web UI (which open their
// own Node) go on meanwhile.

// Lock waits, and the share of the home Sync leaves to others.
const (
	// lockBack bounds how long Sync waits to take the home back at its
	// end, whatever its own deadline was: the caller goes on to use the
	// node.
	lockBack = 30 * time.Second
	// lockTurn is how long Sync may hold the home, over several takes,
	// before it waits lockGap before taking it again: a process waiting
	// for the home polls every lockPoll, and a sync taking it back at once
	// after every page would leave it no turn.
	lockTurn = time.Second
	lockGap  = 2 * lockPoll
)

// errHomeLost is returned by a node that could not take its home back
// after a sync (another process held it for longer than lockBack).
var errHomeLost = errors.New("app: another pursuance process kept this home busy; run the command again")

// homeTurns lends the home, released by Sync, to Sync's goroutines one at
// a time.
type homeTurns struct {
	n    *Node
	held time.Duration // held since the last gap
}

// owner returns the node that holds the lock covering n's home.
func (n *Node) owner() *Node {
	if n.lockOf != nil {
		return n.lockOf.owner()
	}
	return n
}

// releaseHome lets other processes use the home; the homeTurns returned
// take it back for a while (with) or for good (reclaim).
func (n *Node) releaseHome() *homeTurns {
	if o := n.owner(); o.lock != nil {
		o.lock.Close()
		o.lock = nil
		o.holding.Store(false)
	}
	return &homeTurns{n: n}
}

// with runs fn holding the home: the Node's turn mutex, then the lock.
// Another process may have written to the store since this one last held
// it, so the ingester reloads its chain tips first. fn must do no network
// I/O.
func (h *homeTurns) with(ctx context.Context, fn func() error) error {
	n, o := h.n, h.n.owner()
	o.turn.Lock()
	defer o.turn.Unlock()
	if h.held > lockTurn {
		h.held = 0
		select {
		case <-time.After(lockGap):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f, err := lockHome(ctx, o.home)
	if err != nil {
		return err
	}
	start := time.Now()
	o.lock = f // the node holds its home during fn (holdsHome)
	o.holding.Store(true)
	defer func() {
		o.lock = nil
		o.holding.Store(false)
		f.Close()
		h.held += time.Since(start)
	}()
	n.in.Reload()
	return fn()
}

// reclaim takes the home back for the Node when Sync ends, waiting up to
// lockBack even if ctx has ended. On failure the node refuses to write
// (errHomeLost).
func (h *homeTurns) reclaim(ctx context.Context) error {
	n, o := h.n, h.n.owner()
	o.turn.Lock()
	defer o.turn.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockBack)
	defer cancel()
	f, err := lockHome(ctx, o.home)
	if err != nil {
		return errHomeLost
	}
	o.lock = f
	o.holding.Store(true)
	n.in.Reload()
	o.in.Reload()
	return nil
}

// holdsHome fails with errHomeLost when the node no longer holds its home.
func (n *Node) holdsHome() error {
	if n.owner().lock == nil {
		return errHomeLost
	}
	return nil
}
