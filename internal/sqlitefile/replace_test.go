package sqlitefile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestReplace: the new file takes the old one's name, the old one is
// overwritten with zeros before it is deleted, and empty WAL and shared
// memory files go with it.
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	path, next := filepath.Join(dir, "x.db"), filepath.Join(dir, "x.db.new")
	writeFile(t, path, "the clear store")
	writeFile(t, path+walSuffix, "")
	writeFile(t, path+shmSuffix, "shared memory")
	writeFile(t, next, "the encrypted store")
	var steps []string
	err := Replace(path, next, func(step string) {
		steps = append(steps, step)
		if step == "zeroed" {
			b, err := os.ReadFile(path + oldSuffix)
			if err != nil || len(b) != len("the clear store") || !bytes.Equal(b, make([]byte, len(b))) {
				t.Errorf("before its removal, the old file holds %q, %v; want zeros", b, err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "the encrypted store" {
		t.Fatalf("%s holds %q", path, b)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"x.db"}) {
		t.Fatalf("the directory holds %v", got)
	}
	if want := []string{"wal-dropped", "linked", "renamed", "zeroed"}; !slices.Equal(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
}

// TestReplaceRefusesWAL: a database whose WAL holds frames is not
// replaced, since SQLite would apply that WAL to the new file.
func TestReplaceRefusesWAL(t *testing.T) {
	dir := t.TempDir()
	path, next := filepath.Join(dir, "x.db"), filepath.Join(dir, "x.db.new")
	writeFile(t, path, "old")
	writeFile(t, path+walSuffix, "frames")
	writeFile(t, next, "new")
	if err := Replace(path, next, nil); err == nil {
		t.Fatal("replaced a database with a WAL in use")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("%s holds %q", path, b)
	}
}

// TestRecover puts the files in each state a crash inside Replace (or
// inside the build of next) can leave, and checks that Recover leaves the
// old database or the new one at path, whole, and nothing else.
func TestRecover(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(path, next string)
		want  string // what path must hold afterwards
	}{
		{"half-built", func(path, next string) {
			writeFile(t, path, "old")
			writeFile(t, next, "half")
			writeFile(t, next+walSuffix, "frames")
			writeFile(t, next+shmSuffix, "shm")
		}, "old"},
		{"linked", func(path, next string) {
			writeFile(t, path, "old")
			writeFile(t, next, "new")
			if err := os.Link(path, path+oldSuffix); err != nil {
				t.Fatal(err)
			}
		}, "old"},
		{"renamed", func(path, next string) {
			writeFile(t, path, "new")
			writeFile(t, path+oldSuffix, "old")
		}, "new"},
		{"old only", func(path, next string) {
			writeFile(t, path+oldSuffix, "old")
		}, "old"},
		{"nothing to do", func(path, next string) {
			writeFile(t, path, "db")
		}, "db"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path, next := filepath.Join(dir, "x.db"), filepath.Join(dir, "x.db.new")
			c.setup(path, next)
			if err := Recover(path, next); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(path); string(b) != c.want {
				t.Fatalf("%s holds %q, %v; want %q", path, b, err, c.want)
			}
			if got := names(t, dir); !slices.Equal(got, []string{"x.db"}) {
				t.Fatalf("the directory holds %v", got)
			}
		})
	}
	// A directory that does not exist yet is no error.
	missing := filepath.Join(t.TempDir(), "a", "x.db")
	if err := Recover(missing, missing+".new"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Recover created the directory: %v", err)
	}
}
