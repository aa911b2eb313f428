//go:build unix

package sqlitefile

import (
	"fmt"
	"os"
)

// syncDir flushes a directory's entries (a rename, a removal) to stable
// storage.
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
