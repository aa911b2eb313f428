package sqlitefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Suffixes of the files beside a database file: SQLite's WAL and shared
// memory index, and Replace's hard link to the file being replaced.
const (
	walSuffix = "-wal"
	shmSuffix = "-shm"
	oldSuffix = ".old"
)

// scrubChunk is how much of a file scrub overwrites per write.
const scrubChunk = 1 << 20

// Replace puts the database at next in the place of the one at path, and
// scrubs the one it replaces: overwrites it with zeros, syncs and deletes
// it, so that what it held in the clear is not left in its blocks (as far
// as the file system overwrites in place: a copy-on-write file system or
// an SSD's wear levelling may keep old blocks anyway).
//
// Both databases must be closed by every connection, and fully
// checkpointed: Replace refuses to run while either has a WAL with frames
// in it, since SQLite would apply a stray WAL to whatever file then bears
// its name. A crash at any instant leaves either the old database at path
// or the new one; Recover, run before path is next opened, finishes or
// undoes what the crash interrupted. step, if not nil, is called after each
// step, named, for tests that crash there.
func Replace(path, next string, step func(name string)) error {
	if step == nil {
		step = func(string) {}
	}
	for _, p := range []string{path, next} {
		if err := dropEmptyWAL(p); err != nil {
			return err
		}
	}
	step("wal-dropped")
	if err := syncFile(next); err != nil {
		return err
	}
	old := path + oldSuffix
	if err := os.Remove(old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// The link keeps the replaced file's blocks reachable, to be scrubbed
	// once the new file is in place.
	if err := os.Link(path, old); err != nil {
		return fmt.Errorf("keep %s to scrub it: %w", filepath.Base(path), err)
	}
	step("linked")
	if err := os.Rename(next, path); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	step("renamed")
	return scrub(old, step)
}

// Recover finishes or undoes a Replace(path, next) that a crash
// interrupted, and removes what a crashed build of next left. Run it
// before opening path. Afterwards path holds the old database or the new
// one, whole, and neither next nor path's hard link remains.
func Recover(path, next string) error {
	old := path + oldSuffix
	oi, err := os.Stat(old)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		pi, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Not something Replace leaves; put the old file back
			// rather than lose it.
			if err := os.Rename(old, path); err != nil {
				return err
			}
		case err != nil:
			return err
		case os.SameFile(pi, oi):
			// Linked, not yet replaced: path is the old file, whole.
			if err := os.Remove(old); err != nil {
				return err
			}
		default:
			// Replaced, not yet scrubbed.
			if err := scrub(old, nil); err != nil {
				return err
			}
		}
	}
	// A build of next holds only what it was given to hold (encrypted):
	// removing it is enough.
	removed := false
	for _, p := range []string{next, next + walSuffix, next + shmSuffix, next + "-journal"} {
		switch err := os.Remove(p); {
		case err == nil:
			removed = true
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	if removed {
		return syncDir(filepath.Dir(path))
	}
	return nil
}

// dropEmptyWAL removes a closed database's WAL and shared memory files,
// after checking that the WAL holds no frames.
func dropEmptyWAL(path string) error {
	fi, err := os.Stat(path + walSuffix)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case fi.Size() > 0:
		return fmt.Errorf("%s has a WAL of %d bytes: it was not checkpointed and closed", filepath.Base(path), fi.Size())
	default:
		if err := os.Remove(path + walSuffix); err != nil {
			return err
		}
	}
	if err := os.Remove(path + shmSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// scrub overwrites the file at path with zeros, syncs it, and removes it.
func scrub(path string, step func(string)) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		zeros := make([]byte, min(fi.Size(), scrubChunk))
		for left := fi.Size(); left > 0 && err == nil; {
			var n int
			n, err = f.Write(zeros[:min(left, int64(len(zeros)))])
			left -= int64(n)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("scrub %s: %w", filepath.Base(path), err)
	}
	if step != nil {
		step("zeroed")
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncFile flushes the file at path to stable storage.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
