package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/internal/atrest"
)

// queryEvents runs a query selecting the columns bid and blob, and calls
// fn with each event opened and rebuilt, in the order of the rows. The
// blob opens only in the row it was sealed for, and a row whose event's
// ID does not blind to the row's bid is reported as corrupt, never
// returned as a different event.
func (s *SQLite) queryEvents(ctx context.Context, st *stmt, fn func(*event.Event) error, args ...any) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var scratch []byte
	for rows.Next() {
		var bid, blob sql.RawBytes
		if err := rows.Scan(&bid, &blob); err != nil {
			return err
		}
		var e *event.Event
		if e, scratch, err = s.openRow(bid, blob, scratch); err != nil {
			return err
		}
		// Check ctx before handing the event on: the driver notices
		// cancellation only between rows, and not always at once.
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return errStop{err}
		}
	}
	return rows.Err()
}

// openRow opens an event's row and checks that the event is the row's.
func (s *SQLite) openRow(bid, blob, scratch []byte) (*event.Event, []byte, error) {
	e, scratch, err := s.se.openEvent(bid, blob, scratch)
	if err != nil {
		return nil, scratch, err
	}
	if b := s.se.id(e.ID()); string(b[:]) != string(bid) {
		return nil, scratch, fmt.Errorf("stored event %x holds event %s: the database is corrupt", bid[:min(len(bid), 6)], e.ID().Short())
	}
	return e, scratch, nil
}

// errStop carries an error returned by a caller's callback through
// queryEvents, so that it is returned unwrapped.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }

// Get implements Store.
func (s *SQLite) Get(ctx context.Context, id event.ID) (*event.Event, error) {
	if err := s.begin(ctx, "get"); err != nil {
		return nil, err
	}
	var found *event.Event
	b := s.se.id(id)
	err := s.queryEvents(ctx, s.rs.get, func(e *event.Event) error { found = e; return nil }, b[:])
	if err != nil {
		return nil, s.fail("get "+id.Short(), err)
	}
	if found == nil {
		return nil, fmt.Errorf("store: get %s: %w", id.Short(), ErrNotFound)
	}
	return found, nil
}

// Refs implements Store. It looks up to 256 IDs per query.
func (s *SQLite) Refs(ctx context.Context, ids []event.ID) (map[event.ID]event.Ref, error) {
	if err := s.begin(ctx, "refs"); err != nil {
		return nil, err
	}
	out := make(map[event.ID]event.Ref, len(ids))
	want := make(map[atrest.Blinded]event.ID, len(ids))
	args := make([]any, 0, refBatch[len(refBatch)-1])
	for len(ids) > 0 {
		k := len(refBatch) - 1
		for refBatch[k] > len(ids) {
			k--
		}
		n := refBatch[k]
		args = args[:0]
		for _, id := range ids[:n] {
			b := s.se.id(id)
			want[b] = id
			args = append(args, b[:])
		}
		if err := s.refs(ctx, s.rs.refs[k], args, want, out); err != nil {
			return nil, s.fail("refs", err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// refs runs one query of Refs, adding to out the refs of the events found
// whose blinded IDs are in want. (A query also finds any stored event that
// only shares a blinded ID prefix with one asked for; see rowOf.)
func (s *SQLite) refs(ctx context.Context, st *stmt, args []any, want map[atrest.Blinded]event.ID, out map[event.ID]event.Ref) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var bid, pbid, pbox, bkey, abox sql.RawBytes
		var pid, aid int64
		var r event.Ref
		if err := rows.Scan(&bid, &pid, &pbid, &pbox, &aid, &bkey, &abox, &r.Seq, &r.Lamport); err != nil {
			return err
		}
		if len(bid) != atrest.BlindSize {
			return fmt.Errorf("stored event %x has a malformed row: the database is corrupt", []byte(bid))
		}
		id, ok := want[atrest.Blinded(bid)]
		if !ok {
			continue
		}
		r.ID = id
		if r.Pursuance, err = s.names.pursuance(s.se, pid, pbid, pbox); err != nil {
			return err
		}
		if r.Author, err = s.names.author(s.se, aid, bkey, abox); err != nil {
			return err
		}
		out[r.ID] = r
	}
	return rows.Err()
}

// rowNames caches the pursuance ID and author key of each pursuance and
// author row, which readers would otherwise open from the row's box again
// and again. A row never changes once committed, and readers see only
// committed rows, so an entry never goes stale.
type rowNames struct {
	mu      sync.RWMutex
	pids    map[int64]event.ID
	authors map[int64]identity.PublicKey
}

func (c *rowNames) pursuance(se sealer, pid int64, bid, box []byte) (event.ID, error) {
	c.mu.RLock()
	id, ok := c.pids[pid]
	c.mu.RUnlock()
	if ok {
		return id, nil
	}
	v, err := se.openID(boxPursuance, bid, box)
	if err != nil {
		return event.ID{}, err
	}
	c.mu.Lock()
	if c.pids == nil {
		c.pids = make(map[int64]event.ID)
	}
	c.pids[pid] = v
	c.mu.Unlock()
	return v, nil
}

func (c *rowNames) author(se sealer, aid int64, bkey, box []byte) (identity.PublicKey, error) {
	c.mu.RLock()
	k, ok := c.authors[aid]
	c.mu.RUnlock()
	if ok {
		return k, nil
	}
	v, err := se.openID(boxAuthor, bkey, box)
	if err != nil {
		return identity.PublicKey{}, err
	}
	c.mu.Lock()
	if c.authors == nil {
		c.authors = make(map[int64]identity.PublicKey)
	}
	c.authors[aid] = v
	c.mu.Unlock()
	return v, nil
}

// BySeq implements Store.
func (s *SQLite) BySeq(ctx context.Context, pursuance event.ID, author identity.PublicKey, seq uint64) ([]*event.Event, error) {
	if err := s.begin(ctx, "by seq"); err != nil {
		return nil, err
	}
	if seq > 1<<63-1 {
		return nil, nil // Put never stores such a seq
	}
	var out []*event.Event
	p, a := s.se.id(pursuance), s.se.author(author)
	err := s.queryEvents(ctx, s.rs.bySeq, func(e *event.Event) error { out = append(out, e); return nil },
		p[:], a[:], int64(seq))
	if err != nil {
		return nil, s.fail("by seq", err)
	}
	slices.SortFunc(out, func(a, b *event.Event) int { return a.ID().Compare(b.ID()) })
	return out, nil
}

// Heads implements Store.
func (s *SQLite) Heads(ctx context.Context, pursuance event.ID) ([]event.ID, error) {
	if err := s.begin(ctx, "heads"); err != nil {
		return nil, err
	}
	p := s.se.id(pursuance)
	out, err := s.queryBoxes(ctx, s.rs.heads, boxHead, p[:])
	if err != nil {
		return nil, s.fail("heads", err)
	}
	ids := make([]event.ID, len(out))
	for i, v := range out {
		ids[i] = event.ID(v)
	}
	slices.SortFunc(ids, event.ID.Compare)
	return ids, nil
}

// queryBoxes runs a query selecting a row's blinded key and a box of 32
// bytes sealed for it in table, and returns what the boxes hold.
func (s *SQLite) queryBoxes(ctx context.Context, st *stmt, table string, args ...any) ([][32]byte, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][32]byte
	for rows.Next() {
		var k, box sql.RawBytes
		if err := rows.Scan(&k, &box); err != nil {
			return nil, err
		}
		v, err := s.se.openID(table, k, box)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// VersionVector implements Store. Its cost grows with the number of
// authors, not of events.
func (s *SQLite) VersionVector(ctx context.Context, pursuance event.ID) (map[identity.PublicKey]uint64, error) {
	if err := s.begin(ctx, "version vector"); err != nil {
		return nil, err
	}
	out := make(map[identity.PublicKey]uint64)
	err := func() error {
		p := s.se.id(pursuance)
		rows, err := s.rs.vv.QueryContext(ctx, p[:])
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var bkey, box sql.RawBytes
			var seq uint64
			if err := rows.Scan(&bkey, &box, &seq); err != nil {
				return err
			}
			k, err := s.se.openID(boxAuthor, bkey, box)
			if err != nil {
				return err
			}
			out[identity.PublicKey(k)] = seq
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, s.fail("version vector", err)
	}
	return out, nil
}

// Iterate implements Store. It streams: the events of one lamport clock
// are in memory at a time (sorted by ID there), read in a single read
// transaction, so it visits exactly the events committed when it began,
// whatever is put meanwhile. While it runs, fn may call the store's other
// methods, Put included (what fn puts is not visited), though a Put inside
// fn is not required of every Store. A long Iterate keeps the WAL from
// being checkpointed past its start, so the WAL file grows while many
// events are put during one.
func (s *SQLite) Iterate(ctx context.Context, pursuance event.ID, fn func(*event.Event) error) error {
	if err := s.begin(ctx, "iterate"); err != nil {
		return err
	}
	err := s.iterate(ctx, pursuance, fn)
	if stop, ok := err.(errStop); ok {
		return stop.err
	}
	if err != nil {
		return s.fail("iterate", err)
	}
	return nil
}

func (s *SQLite) iterate(ctx context.Context, pursuance event.ID, fn func(*event.Event) error) error {
	p := s.se.id(pursuance)
	rows, err := s.rs.iterate.QueryContext(ctx, p[:])
	if err != nil {
		return err
	}
	defer rows.Close()
	var tie []*event.Event // the events of the lamport clock being read
	var clock int64
	flush := func() error {
		slices.SortFunc(tie, func(a, b *event.Event) int { return a.ID().Compare(b.ID()) })
		for _, e := range tie {
			// Check ctx before handing an event on: the driver notices
			// cancellation only between rows, and not always at once.
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return errStop{err}
			}
		}
		clear(tie)
		tie = tie[:0]
		return nil
	}
	var scratch []byte
	for rows.Next() {
		var lamport int64
		var bid, blob sql.RawBytes
		if err := rows.Scan(&lamport, &bid, &blob); err != nil {
			return err
		}
		if lamport != clock {
			if err := flush(); err != nil {
				return err
			}
			clock = lamport
		}
		var e *event.Event
		if e, scratch, err = s.openRow(bid, blob, scratch); err != nil {
			return err
		}
		tie = append(tie, e)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}

// Evidence implements Store.
func (s *SQLite) Evidence(ctx context.Context, pursuance event.ID) ([]event.Equivocation, error) {
	if err := s.begin(ctx, "evidence"); err != nil {
		return nil, err
	}
	var out []event.Equivocation
	err := func() error {
		p := s.se.id(pursuance)
		rows, err := s.rs.evidence.QueryContext(ctx, p[:])
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k, box sql.RawBytes
			if err := rows.Scan(&k, &box); err != nil {
				return err
			}
			rec, err := s.se.openBox(boxEvidence, k, box)
			if err != nil {
				return err
			}
			q, err := parseEvidenceRecord(pursuance, rec)
			if err != nil {
				return err
			}
			out = append(out, q)
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, s.fail("evidence", err)
	}
	slices.SortFunc(out, compareEquivocation)
	return out, nil
}

// Pursuances implements Store.
func (s *SQLite) Pursuances(ctx context.Context) ([]event.ID, error) {
	if err := s.begin(ctx, "pursuances"); err != nil {
		return nil, err
	}
	out, err := s.queryBoxes(ctx, s.rs.pursuances, boxPursuance)
	if err != nil {
		return nil, s.fail("pursuances", err)
	}
	ids := make([]event.ID, len(out))
	for i, v := range out {
		ids[i] = event.ID(v)
	}
	slices.SortFunc(ids, event.ID.Compare)
	return ids, nil
}

// Count implements Store. It reads a counter Put maintains, so its cost
// does not grow with the log.
func (s *SQLite) Count(ctx context.Context, pursuance event.ID) (int, error) {
	if err := s.begin(ctx, "count"); err != nil {
		return 0, err
	}
	var n int
	p := s.se.id(pursuance)
	err := s.rs.count.QueryRowContext(ctx, p[:]).Scan(&n)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, s.fail("count", err)
	}
	return n, nil
}
