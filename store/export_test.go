package store

import (
	"context"
	"fmt"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/sqlitefile"
)

// SetMergeThreshold lowers the size at which s moves ID prefixes from
// prefixes_recent to prefixes, so that tests exercise both tiers of the ID
// index.
func SetMergeThreshold(s *SQLite, n int) { s.mergeAt = n }

// SetCheckpointing lowers how many frames s writes to the WAL between two
// background checkpoints, and the WAL length (in frames) past which Put
// finishes a checkpoint itself, so that tests exercise both often.
func SetCheckpointing(s *SQLite, every int, capFrames int64) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.ck.every, s.ck.capFrames = every, capFrames
}

// SetRunsPerLevel lowers the number of runs at which the ID index's main
// tier merges a level, so that tests exercise merges of runs.
func SetRunsPerLevel(s *SQLite, n int) { s.fanout = n }

// MoveTime is the time s has spent moving IDs from the recent tier of the
// ID index to the main one, merges of runs included.
func MoveTime(s *SQLite) time.Duration {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.moveTime
}

// BlindID returns the blinded form of id under s's key: what the ID index
// and the events table hold instead of the ID.
func BlindID(s *SQLite, id event.ID) []byte {
	b := s.se.id(id)
	return b[:]
}

// SetMigrateStep sets the function a migration calls after each of its
// steps, so that a test can crash the process there.
func SetMigrateStep(fn func(name string)) { migrateStep = fn }

// WriteLegacy writes a store of the clear schema version (1 to 3) at
// path, as this package's earlier versions did, holding events (in causal
// order) and evidence: a file to migrate.
func WriteLegacy(path string, version int, events []*event.Event, evidence []event.Equivocation) (err error) {
	if version < 1 || version > legacyVersion {
		return fmt.Errorf("no legacy version %d", version)
	}
	db, err := sqlitefile.Open(path, busyTimeout)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := sqlitefile.WAL(ctx, c); err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			c.ExecContext(ctx, "ROLLBACK")
		}
	}()
	if _, err := c.ExecContext(ctx, legacyMigrations[0]); err != nil {
		return err
	}
	rows := map[string]int64{} // table and key: row
	rowOf := func(table, col string, key [32]byte) (int64, error) {
		if n, ok := rows[table+string(key[:])]; ok {
			return n, nil
		}
		res, err := c.ExecContext(ctx, "INSERT INTO "+table+" ("+col+") VALUES (?1)", key[:])
		if err != nil {
			return 0, err
		}
		n, err := res.LastInsertId()
		rows[table+string(key[:])] = n
		return n, err
	}
	insert, err := c.PrepareContext(ctx, `INSERT INTO events (n, id, pid, aid, seq, lamport, header, sig, body)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, CASE WHEN ?9 THEN ifnull(?10, x'') END)`)
	if err != nil {
		return err
	}
	defer insert.Close()
	count, err := c.PrepareContext(ctx, `UPDATE pursuances SET n = n + 1 WHERE pid = ?1`)
	if err != nil {
		return err
	}
	defer count.Close()
	newHeads, _ := headChanges(events)
	for i, e := range events {
		pid, err := rowOf("pursuances", "id", e.PursuanceID())
		if err != nil {
			return err
		}
		aid, err := rowOf("authors", "key", e.Author)
		if err != nil {
			return err
		}
		id := e.ID()
		if _, err := insert.ExecContext(ctx, i+1, id[:], pid, aid, int64(e.Seq), int64(e.Lamport),
			e.HeaderBytes(), e.Signature(), e.HasBody(), e.Body()); err != nil {
			return err
		}
		if _, err := count.ExecContext(ctx, pid); err != nil {
			return err
		}
		// Half the IDs in each tier of version 1's index.
		tier := "ids"
		if i%2 == 1 {
			tier = "ids_recent"
		}
		if _, err := c.ExecContext(ctx, "INSERT INTO "+tier+" (id, n) VALUES (?1, ?2)", id[:], i+1); err != nil {
			return err
		}
	}
	for _, e := range newHeads {
		pid, err := rowOf("pursuances", "id", e.PursuanceID())
		if err != nil {
			return err
		}
		id := e.ID()
		if _, err := c.ExecContext(ctx, `INSERT INTO heads (pid, id) VALUES (?1, ?2)`, pid, id[:]); err != nil {
			return err
		}
	}
	for _, q := range evidence {
		pid, err := rowOf("pursuances", "id", q.Pursuance)
		if err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, `INSERT INTO evidence (pid, author, seq, a, b) VALUES (?1, ?2, ?3, ?4, ?5)`,
			pid, q.Author[:], int64(q.Seq), q.A[:], q.B[:]); err != nil {
			return err
		}
	}
	for _, m := range legacyMigrations[1:version] {
		if _, err := c.ExecContext(ctx, m); err != nil {
			return err
		}
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, version)); err != nil {
		return err
	}
	_, err = c.ExecContext(ctx, "COMMIT")
	return err
}

// SetMigrateBatch sets how many events a migration copies per Put, so that
// a test's small store still takes several.
func SetMigrateBatch(n int) { migrateBatchSize = n }
