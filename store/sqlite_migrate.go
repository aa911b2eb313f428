package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/sqlitefile"
)

// migrateSuffix names the file a migration writes beside the store.
const migrateSuffix = ".new"

// migrateBatch is how many events migrateLegacy copies per Put.
const migrateBatch = 10_000

// migrateBatchSize is migrateBatch, unless a test lowered it.
var migrateBatchSize = migrateBatch

// migrateStep, when a test sets it, is called after each step of a
// migration, named, so that a test can crash the process there.
var migrateStep func(name string)

// migrateLegacy turns a store of a clear schema (versions 1 to 3) at path
// into an encrypted one under key. It cannot be done in place: SQLite
// leaves the pages a row used to occupy (the free list) and the WAL as
// they were, clear bytes and all. So it copies every event and record into
// a new file beside it (path + ".new"), in the encrypted schema, then puts
// the new file in the old one's place and scrubs the old one
// (sqlitefile.Replace). A crash at any instant leaves either the old store
// or the new one, and the next open finishes or starts again
// (sqlitefile.Recover, which openSQLite runs first).
//
// No other process may have the store open meanwhile: a home's node holds
// the home's lock while it opens its store.
func migrateLegacy(ctx context.Context, path string, key Key) error {
	next := path + migrateSuffix
	old, err := sqlitefile.Open(path, busyTimeout)
	if err != nil {
		return err
	}
	defer old.Close()
	c, err := old.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	version, err := readVersion(ctx, c)
	if err != nil {
		return err
	}
	if version < 1 || version > legacyVersion {
		return fmt.Errorf("schema version %d is not a clear store's", version)
	}
	step := func(name string) {
		if migrateStep != nil {
			migrateStep(name)
		}
	}
	if err := copyLegacy(ctx, c, next, key, step); err != nil {
		return fmt.Errorf("encrypt the store (schema version %d): %w", version, err)
	}
	// Fold the old store's WAL into it and leave it in rollback mode, so
	// that no WAL of it is left to be taken for the new file's.
	var busy, log, done int
	if err := c.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &done); err != nil {
		return err
	}
	if busy != 0 {
		return errors.New("another process has the store open; close it and try again")
	}
	var mode string
	if err := c.QueryRowContext(ctx, "PRAGMA journal_mode = DELETE").Scan(&mode); err != nil {
		return err
	}
	if err := c.Close(); err != nil {
		return err
	}
	if err := old.Close(); err != nil {
		return err
	}
	step("old-closed")
	if err := sqlitefile.Replace(path, next, step); err != nil {
		return fmt.Errorf("put the encrypted store in place: %w", err)
	}
	return nil
}

// copyLegacy copies every event and equivocation record of the clear
// store on c into a new encrypted store at next. Events are read in each
// pursuance's lamport order (by its index, so SQLite sorts nothing in a
// temporary file), which puts them after their links, as Put needs.
func copyLegacy(ctx context.Context, c *sql.Conn, next string, key Key, step func(string)) (err error) {
	nw, err := openSQLite(ctx, next, key)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			nw.Close()
		}
	}()
	var pids []int64
	rows, err := c.QueryContext(ctx, `SELECT pid FROM pursuances ORDER BY pid`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var pid int64
		if err := rows.Scan(&pid); err != nil {
			rows.Close()
			return err
		}
		pids = append(pids, pid)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	var batch []*event.Event
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := nw.Put(ctx, batch, nil)
		batch = batch[:0]
		step("batch")
		return err
	}
	for _, pid := range pids {
		rows, err := c.QueryContext(ctx, `SELECT id, header, sig, body, body IS NULL FROM events WHERE pid = ?1 ORDER BY lamport`, pid)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, header, sig, body []byte
			var noBody bool
			if err := rows.Scan(&id, &header, &sig, &body, &noBody); err != nil {
				rows.Close()
				return err
			}
			switch {
			case noBody:
				body = nil
			case body == nil:
				body = []byte{} // the driver reads an empty blob as nil
			}
			e, err := event.FromParts(header, sig, body)
			if err != nil {
				rows.Close()
				return fmt.Errorf("stored event %x: %w", id, err)
			}
			if want := e.ID(); string(id) != string(want[:]) {
				rows.Close()
				return fmt.Errorf("stored event %x rebuilds as %s: the database is corrupt", id, want)
			}
			batch = append(batch, e)
			if len(batch) >= migrateBatchSize {
				if err := flush(); err != nil {
					rows.Close()
					return err
				}
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	var evidence []event.Equivocation
	rows, err = c.QueryContext(ctx, `SELECT p.id, e.author, e.seq, e.a, e.b FROM evidence e JOIN pursuances p ON p.pid = e.pid`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var p, author, a, b []byte
		var q event.Equivocation
		if err := rows.Scan(&p, &author, &q.Seq, &a, &b); err != nil {
			rows.Close()
			return err
		}
		if len(p) != len(q.Pursuance) || len(author) != len(q.Author) || len(a) != len(q.A) || len(b) != len(q.B) {
			rows.Close()
			return errors.New("an evidence row is malformed: the database is corrupt")
		}
		copy(q.Pursuance[:], p)
		copy(q.Author[:], author)
		copy(q.A[:], a)
		copy(q.B[:], b)
		evidence = append(evidence, q)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	if err := nw.Put(ctx, nil, evidence); err != nil {
		return err
	}
	step("copied")
	// Close checkpoints the WAL into the file and deletes it.
	return nw.Close()
}
