package flock

import (
	"os"
	"path/filepath"
	"testing"
)

// TestTryLock: a second open of a locked file cannot lock it until the
// first is closed.
func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(), open()
	defer b.Close()
	if ok, err := TryLock(a); !ok || err != nil {
		t.Fatalf("first lock: %v, %v", ok, err)
	}
	if ok, err := TryLock(b); ok || err != nil {
		t.Fatalf("second lock while the first is held: %v, %v; want false, nil", ok, err)
	}
	a.Close()
	if ok, err := TryLock(b); !ok || err != nil {
		t.Fatalf("second lock after the first closed: %v, %v", ok, err)
	}
}

// TestTryLockShared: shared locks coexist; none is taken while an
// exclusive one is held, and no exclusive one while a shared one is.
func TestTryLockShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	ex, sh1, sh2 := open(), open(), open()
	if ok, err := TryLock(ex); !ok || err != nil {
		t.Fatalf("exclusive lock: %v, %v", ok, err)
	}
	if ok, err := TryLockShared(sh1); ok || err != nil {
		t.Fatalf("shared lock while an exclusive one is held: %v, %v; want false, nil", ok, err)
	}
	ex.Close()
	if ok, err := TryLockShared(sh1); !ok || err != nil {
		t.Fatalf("shared lock: %v, %v", ok, err)
	}
	if ok, err := TryLockShared(sh2); !ok || err != nil {
		t.Fatalf("a second shared lock: %v, %v", ok, err)
	}
	if ok, err := TryLock(open()); ok || err != nil {
		t.Fatalf("exclusive lock while shared ones are held: %v, %v; want false, nil", ok, err)
	}
}
