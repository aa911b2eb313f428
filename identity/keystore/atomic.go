package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// testHookAfterWrite, when set by a test, runs after the data is written to
// the temporary file and before it is synced and put in place; an error from
// it aborts the write as a crash would.
var testHookAfterWrite func(tmp *os.File) error

// writeAtomic writes data to dir/name with mode 0600 so that, whatever
// instant the process dies at, dir/name holds either its old contents (or
// nothing) or all of data. It writes a temporary file ".NAME.tmp-*" in dir,
// syncs it, then puts it in place and syncs dir.
//
// With replace false, an existing dir/name is never replaced: the temporary
// file is hard-linked into place, which fails atomically when the name
// exists, and the error then wraps fs.ErrExist. With replace true the
// temporary file is renamed over dir/name.
//
// A temporary file is removed on every error return; one left by a crash is
// harmless, as readers only ever open dir/name.
func writeAtomic(dir, name string, data []byte, replace bool) (err error) {
	final := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if testHookAfterWrite != nil {
		if err := testHookAfterWrite(tmp); err != nil {
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if replace {
		if err := os.Rename(tmpName, final); err != nil {
			return err
		}
	} else {
		if err := linkNoReplace(tmpName, final); err != nil {
			return err
		}
		// The data is in place under its final name; the temporary name is
		// only clutter now, and failing to remove it is not an error.
		os.Remove(tmpName)
	}
	return syncDir(dir)
}

// linkNoReplace makes newname a hard link to oldname, failing with an error
// wrapping fs.ErrExist if newname exists. On file systems without hard links
// it falls back to checking and renaming, which is not atomic against a
// concurrent creator but still never replaces a file that existed before.
func linkNoReplace(oldname, newname string) error {
	err := os.Link(oldname, newname)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, statErr := os.Lstat(newname); statErr == nil {
		return fmt.Errorf("%s: %w", newname, fs.ErrExist)
	} else if !errors.Is(statErr, fs.ErrNotExist) {
		return statErr
	}
	return os.Rename(oldname, newname)
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// WriteFileAtomic writes data to dir/name (mode 0600), replacing what was
// there, so that a crash at any instant leaves either the old contents or
// all of data.
func WriteFileAtomic(dir, name string, data []byte) error {
	return writeAtomic(dir, name, data, true)
}
