package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/atrest"
)

// chainTips caches the highest stored seq of each chain (pid, aid), so that
// Put looks up by ID only events that could be stored already. Like
// keyRows, what a transaction raises is kept only once it commits. Its user
// holds wmu.
type chainTips struct {
	find             *stmt
	committed, fresh map[[2]int64]uint64
}

// get returns the chain's highest seq, as of this transaction.
func (c *chainTips) get(pid, aid int64) (uint64, error) {
	k := [2]int64{pid, aid}
	if s, ok := c.fresh[k]; ok {
		return s, nil
	}
	if s, ok := c.committed[k]; ok {
		return s, nil
	}
	var s int64
	if err := c.find.QueryRowContext(context.Background(), pid, aid).Scan(&s); err != nil {
		return 0, fmt.Errorf("find chain tip: %w", err)
	}
	c.committed[k] = uint64(s)
	return uint64(s), nil
}

// raise records that the transaction stores seq in the chain.
func (c *chainTips) raise(pid, aid int64, seq uint64) {
	k := [2]int64{pid, aid}
	cur, ok := c.fresh[k]
	if !ok {
		cur = c.committed[k]
	}
	if seq > cur {
		c.fresh[k] = seq
	}
}

// end ends a transaction, keeping what it raised if it committed.
func (c *chainTips) end(committed bool) {
	if committed {
		maps.Copy(c.committed, c.fresh)
	}
	clear(c.fresh)
}

// storedRow is what Put needs to know of an event already stored.
type storedRow struct {
	n        int64 // its row in events
	bodyless bool
}

// existingRows finds which of the events at indexes maybe are stored
// already, in queries of up to 256 IDs. It runs inside Put's transaction.
// A stored event's blob is opened only to learn whether it has its body,
// and only for the events asked for: a row that merely shares a blinded ID
// prefix with one of them is skipped.
func (s *SQLite) existingRows(events []*event.Event, sealed []sealedEvent, maybe []int) (map[event.ID]storedRow, error) {
	out := make(map[event.ID]storedRow)
	want := make(map[atrest.Blinded]event.ID, len(maybe))
	for _, i := range maybe {
		want[sealed[i].bid] = events[i].ID()
	}
	args := make([]any, 0, refBatch[len(refBatch)-1])
	var scratch []byte
	for len(maybe) > 0 {
		k := len(refBatch) - 1
		for refBatch[k] > len(maybe) {
			k--
		}
		args = args[:0]
		for _, i := range maybe[:refBatch[k]] {
			args = append(args, sealed[i].bid[:])
		}
		maybe = maybe[refBatch[k]:]
		rows, err := s.ws.existing[k].QueryContext(context.Background(), args...)
		if err != nil {
			return nil, fmt.Errorf("look up events: %w", err)
		}
		for rows.Next() {
			var bid, blob sql.RawBytes
			var row storedRow
			if err := rows.Scan(&bid, &row.n, &blob); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up events: %w", err)
			}
			if len(bid) != atrest.BlindSize {
				continue
			}
			id, ok := want[atrest.Blinded(bid)]
			if !ok {
				continue
			}
			var e *event.Event
			e, scratch, err = s.se.openEvent(bid, blob, scratch)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up events: %w", err)
			}
			if e.ID() != id {
				rows.Close()
				return nil, fmt.Errorf("stored event %s holds event %s: the database is corrupt", id.Short(), e.ID().Short())
			}
			row.bodyless = !e.HasBody()
			out[id] = row
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("look up events: %w", err)
		}
	}
	return out, nil
}

// keyRows maps 32-byte keys (pursuance IDs, author keys) to the integer
// IDs of their rows, adding rows as needed, and caches the mapping. Rows
// are found by the key blinded, and hold it sealed (seal gives both). Rows
// added by a transaction are cached only once it commits. Its user holds
// wmu.
type keyRows struct {
	what         string
	find, insert *stmt
	seal         func([32]byte) (atrest.Blinded, []byte)
	committed    map[[32]byte]int64
	fresh        map[[32]byte]int64 // added by the transaction in progress
}

func newKeyRows(what string, find, insert *stmt, seal func([32]byte) (atrest.Blinded, []byte)) keyRows {
	return keyRows{what: what, find: find, insert: insert, seal: seal,
		committed: make(map[[32]byte]int64), fresh: make(map[[32]byte]int64)}
}

// get returns key's row ID, adding its row if there is none. It must be
// called inside a transaction.
func (k *keyRows) get(key [32]byte) (int64, error) {
	if id, ok := k.committed[key]; ok {
		return id, nil
	}
	if id, ok := k.fresh[key]; ok {
		return id, nil
	}
	var id int64
	blinded, box := k.seal(key)
	err := k.find.QueryRowContext(context.Background(), blinded[:]).Scan(&id)
	switch {
	case err == nil:
		k.committed[key] = id // committed before this transaction began
		return id, nil
	case !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("find %s %x: %w", k.what, key[:6], err)
	}
	res, err := k.insert.ExecContext(context.Background(), blinded[:], box)
	if err == nil {
		id, err = res.LastInsertId()
	}
	if err != nil {
		return 0, fmt.Errorf("add %s %x: %w", k.what, key[:6], err)
	}
	k.fresh[key] = id
	return id, nil
}

// end ends a transaction, caching the rows it added if it committed.
func (k *keyRows) end(committed bool) {
	if committed {
		maps.Copy(k.committed, k.fresh)
	}
	clear(k.fresh)
}
