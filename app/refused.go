package app

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
)

// refusalsSchema is sync.db's record of events a sync refused to store
// (admit.go): where each was, so that it can be fetched if it is ever
// needed. Made on first use. As the rest of sync.db (syncDB): relay,
// topic and id are blinded, for lookups; place holds the relay's URL and
// the topic, sealed to the row.
const refusalsSchema = `CREATE TABLE IF NOT EXISTS refusals (relay BLOB NOT NULL, topic BLOB NOT NULL, cursor INTEGER NOT NULL, id BLOB NOT NULL, place BLOB NOT NULL, PRIMARY KEY (relay, topic, cursor)); -- place sealed
CREATE INDEX IF NOT EXISTS refusals_id ON refusals (id);`

// clearRefusedTable is the table homes kept the same record in, in the
// clear (relay URL, topic and event ID), until it was found: its rows are
// moved into refusals, blinded and sealed, and it is dropped with its
// pages overwritten.
const clearRefusedTable = "refused"

// maxRefusedPlaces bounds how many refused events one sync fetches again.
const maxRefusedPlaces = 1000

type refusedPlace struct {
	relay  string
	topic  keys.Topic
	cursor uint64
}

// refusals makes the table, once per syncDB, moving a clear table's rows
// into it.
func (s *syncDB) refusals(ctx context.Context) error {
	s.refusedOnce.Do(func() { s.refusedErr = s.makeRefusals(ctx) })
	return s.refusedErr
}

func (s *syncDB) makeRefusals(ctx context.Context) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sync.db: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sync.db: %w", err)
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if _, err := conn.ExecContext(ctx, refusalsSchema); err != nil {
		return fmt.Errorf("sync.db: %w", err)
	}
	var clear int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?", clearRefusedTable).Scan(&clear); err != nil {
		return fmt.Errorf("sync.db: %w", err)
	}
	if clear > 0 {
		if err := s.moveClearRefused(ctx, conn); err != nil {
			return fmt.Errorf("sync.db: moving the record of refused events: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("sync.db: %w", err)
	}
	if clear > 0 {
		// The dropped pages were zeroed in the WAL; the frames that held
		// them before go with it.
		if _, err := conn.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			return fmt.Errorf("sync.db: %w", err)
		}
	}
	return nil
}

// moveClearRefused copies the clear table's rows into refusals and drops
// it, overwriting what it held (secure_delete), in conn's transaction.
func (s *syncDB) moveClearRefused(ctx context.Context, conn *sql.Conn) error {
	rows, err := conn.QueryContext(ctx, "SELECT relay, topic, cursor, id FROM "+clearRefusedTable)
	if err != nil {
		return err
	}
	type row struct {
		pl refusedPlace
		id event.ID
	}
	var all []row
	for rows.Next() {
		var r row
		var topic, id []byte
		if err := rows.Scan(&r.pl.relay, &topic, &r.pl.cursor, &id); err != nil {
			rows.Close()
			return err
		}
		copy(r.pl.topic[:], topic)
		copy(r.id[:], id)
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range all {
		if err := s.insertRefused(ctx, conn, r.pl, r.id); err != nil {
			return err
		}
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "DELETE FROM "+clearRefusedTable); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "DROP TABLE "+clearRefusedTable)
	return err
}

// refusedKey is the blinded key of a place's row.
func (s *syncDB) refusedKey(pl refusedPlace) (relay, topic, cursor []byte) {
	return s.relay(pl.relay), s.topic(pl.topic), binary.BigEndian.AppendUint64(nil, pl.cursor)
}

func (s *syncDB) insertRefused(ctx context.Context, db execer, pl refusedPlace, id event.ID) error {
	relay, topic, cursor := s.refusedKey(pl)
	place := append(pl.topic[:len(pl.topic):len(pl.topic)], pl.relay...)
	_, err := db.ExecContext(ctx, `INSERT OR IGNORE INTO refusals (relay, topic, cursor, id, place) VALUES (?, ?, ?, ?, ?)`,
		relay, topic, pl.cursor, s.id(id), s.seal(place, "refusals", relay, topic, cursor))
	return err
}

func (s *syncDB) noteRefused(ctx context.Context, relay string, t keys.Topic, cursor uint64, id event.ID) error {
	if err := s.refusals(ctx); err != nil {
		return err
	}
	return s.insertRefused(ctx, s.db, refusedPlace{relay: relay, topic: t, cursor: cursor}, id)
}

// refusedPlaces returns where the events ids were refused, if they were.
func (s *syncDB) refusedPlaces(ctx context.Context, ids []event.ID) ([]refusedPlace, error) {
	if err := s.refusals(ctx); err != nil {
		return nil, err
	}
	var out []refusedPlace
	for _, id := range ids {
		rows, err := s.db.QueryContext(ctx, `SELECT relay, topic, cursor, place FROM refusals WHERE id = ?`, s.id(id))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var relay, topic, box []byte
			var cursor uint64
			if err := rows.Scan(&relay, &topic, &cursor, &box); err != nil {
				rows.Close()
				return nil, err
			}
			place, err := s.open(box, "refusals", relay, topic, binary.BigEndian.AppendUint64(nil, cursor))
			if err == nil && len(place) < len(keys.Topic{}) {
				err = errors.New("sync.db: a refused event's place is cut short")
			}
			if err != nil {
				rows.Close()
				return nil, err
			}
			var pl refusedPlace
			copy(pl.topic[:], place)
			pl.relay, pl.cursor = string(place[len(pl.topic):]), cursor
			out = append(out, pl)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(out) >= maxRefusedPlaces {
			break
		}
	}
	return out, nil
}
