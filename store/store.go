// Package store keeps a member's events durably: every event of every
// pursuance on this home, the heads of each log, each author's high-water
// mark and the evidence of equivocations.
//
// Two implementations pass one conformance suite (storetest): SQLite for
// real use, and memory for tests. The store trusts its caller: events must
// already be checked (the ingest package does that) and must be put after
// the events they link to (backlink and parents), which is the causal order
// ingest produces.
package store

import (
	"context"
	"errors"
	"io/fs"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// ErrNotFound is returned (wrapped) when an event is not in the store. It
// is fs.ErrNotExist, so errors.Is(err, fs.ErrNotExist) also holds.
var ErrNotFound = fs.ErrNotExist

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("store: closed")

// Store is a durable set of events. All methods are safe for concurrent
// use. Events returned are shared and must not be modified.
type Store interface {
	// Put stores events and equivocation records in one atomic
	// transaction: after Put returns nil, all of them survive a crash; if
	// it returns an error, none of them were stored. Putting an event
	// that is already stored is not an error and changes nothing (if the
	// stored copy has no body and the new one has, the body is added).
	// Every event's backlink and parents must be stored already or come
	// earlier in events.
	Put(ctx context.Context, events []*event.Event, evidence []event.Equivocation) error

	// Get returns the event with the given ID, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, id event.ID) (*event.Event, error)

	// Refs returns the Ref of each stored event among ids, keyed by ID;
	// IDs not stored are absent from the map. It is the cheap lookup the
	// ingest path uses to check links.
	Refs(ctx context.Context, ids []event.ID) (map[event.ID]event.Ref, error)

	// BySeq returns the author's events at seq in the pursuance: none, one,
	// or more than one if the author equivocated. Ordered by ID.
	BySeq(ctx context.Context, pursuance event.ID, author identity.PublicKey, seq uint64) ([]*event.Event, error)

	// Heads returns the IDs of the pursuance's events that no stored event
	// names as a parent, in ascending order.
	Heads(ctx context.Context, pursuance event.ID) ([]event.ID, error)

	// VersionVector returns, for every author with events in the
	// pursuance, the highest seq stored.
	VersionVector(ctx context.Context, pursuance event.ID) (map[identity.PublicKey]uint64, error)

	// Iterate calls fn for each of the pursuance's events in causal order:
	// ascending (lamport, ID), which puts every event after its parents
	// and backlink, and is the same on every replica holding the same
	// events. It stops at the first error fn returns and returns it.
	// fn may call the store's other read methods, but not Close; whether
	// it may call Put is up to the implementation (Memory and SQLite both
	// allow it, and do not visit what it puts).
	Iterate(ctx context.Context, pursuance event.ID, fn func(*event.Event) error) error

	// Evidence returns the pursuance's equivocation records, ordered by
	// (author, seq, A, B).
	Evidence(ctx context.Context, pursuance event.ID) ([]event.Equivocation, error)

	// Pursuances returns the IDs of every pursuance with events here
	// (those whose genesis event is stored), ascending.
	Pursuances(ctx context.Context) ([]event.ID, error)

	// Count returns the number of the pursuance's stored events.
	Count(ctx context.Context, pursuance event.ID) (int, error)

	// Close releases the store. Calls after Close return ErrClosed.
	Close() error
}
