package sqlitefile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOpen: the file and its directory are created private, the pragmas
// apply to every connection, and WAL takes.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "x.db")
	db, err := Open(path, 3*time.Second, "synchronous(FULL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := WAL(ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := os.FileMode(0o600); fi.IsDir() {
			want = 0o700 | os.ModeDir
			if fi.Mode() != want {
				t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
			}
		} else if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	db.SetMaxOpenConns(2)
	for range 2 { // two connections, each with the pragmas
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var busy, sync int
		if err := c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if busy != 3000 || sync != 2 {
			t.Errorf("busy_timeout %d, synchronous %d; want 3000, 2 (FULL)", busy, sync)
		}
	}
}
