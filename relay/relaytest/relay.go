package relaytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pursuance/pursuance/relay"
)

// Relay is a real relay (the SQLite store) behind an Adversary on
// loopback, whose data can be wiped or restored from a backup while its
// URL stays: the relay an operator lost, or rolled back.
type Relay struct {
	*Adversary
	URL string

	t    testing.TB
	dir  string
	mu   sync.Mutex
	st   *relay.SQLite
	path string // st's file
	gen  int    // data directories made so far
}

// Start runs a relay for the test; it stops when the test ends.
func Start(t testing.TB) *Relay {
	t.Helper()
	r := &Relay{t: t, dir: t.TempDir()}
	r.Adversary = New(nil)
	if err := r.open(r.newPath()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(r.Adversary)
	r.URL = ts.URL
	t.Cleanup(func() {
		ts.Close()
		r.mu.Lock()
		r.st.Close()
		r.mu.Unlock()
	})
	return r
}

func (r *Relay) newPath() string {
	r.gen++
	return filepath.Join(r.dir, fmt.Sprintf("data%d", r.gen), "relay.db")
}

// open serves the store at path from now on, closing the one before.
func (r *Relay) open(path string) error {
	st, err := relay.OpenSQLite(context.Background(), path)
	if err != nil {
		return err
	}
	srv := relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	r.mu.Lock()
	old := r.st
	r.st, r.path = st, path
	r.mu.Unlock()
	r.swap(srv.Handler())
	if old != nil {
		old.Close()
	}
	return nil
}

// Store returns the store the relay serves now.
func (r *Relay) Store() *relay.SQLite {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// Wipe replaces the relay's data with an empty store: a new instance, no
// topics, the same URL.
func (r *Relay) Wipe() {
	r.t.Helper()
	if err := r.open(r.newPath()); err != nil {
		r.t.Fatal(err)
	}
}

// Backup copies the relay's data as it is now (the store is closed and
// opened again around the copy) and returns the copy's path, for Restore.
func (r *Relay) Backup() string {
	r.t.Helper()
	r.mu.Lock()
	st, path := r.st, r.path
	r.mu.Unlock()
	err := st.Close() // the last connection's close folds the WAL in
	backup := r.newPath()
	if err == nil {
		err = copyDB(path, backup)
	}
	if err == nil {
		r.mu.Lock()
		r.st = nil // closed: open must not close it again
		r.mu.Unlock()
		err = r.open(path)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return backup
}

// Restore serves a copy of a backup from now on: the instance of the
// relay backed up, and what it held then.
func (r *Relay) Restore(backup string) {
	r.t.Helper()
	path := r.newPath()
	if err := copyDB(backup, path); err != nil {
		r.t.Fatal(err)
	}
	if err := r.open(path); err != nil {
		r.t.Fatal(err)
	}
}

// copyDB copies a closed SQLite database, with its WAL if one is left.
func copyDB(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(from + suffix)
		if suffix != "" && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(to+suffix, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
