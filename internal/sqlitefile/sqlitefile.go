// Package sqlitefile opens the SQLite databases of a home (the event
// store, sync.db) and of a relay the same way: the file private to its
// user, connections that wait for another's lock instead of failing, and
// WAL mode checked rather than assumed. It also replaces a database with
// another one written beside it, crash-safely, scrubbing the one replaced
// (Replace, Recover): how a home's clear files become encrypted ones.
package sqlitefile

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// Open opens the database at path, creating it (mode 0600, its directory
// 0700) if needed. Every connection waits up to busy for a lock and runs
// pragmas, each as in PRAGMA name(value): "synchronous(FULL)".
func Open(path string, busy time.Duration, pragmas ...string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, err
	}
	// Create the file ourselves for its mode: SQLite would use 0644, and
	// gives the -wal and -shm files the database file's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	return sql.Open("sqlite", (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String())
}

// Querier is what WAL needs of a connection or database.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// WAL puts the database in WAL mode (it stays so) and fails if it did not
// take, as on a file system without shared memory.
func WAL(ctx context.Context, c Querier) error {
	var mode string
	if err := c.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, not WAL: is the file system local?", mode)
	}
	return nil
}
