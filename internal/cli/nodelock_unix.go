//go:build unix

package cli

import (
	"errors"
	"os"
	"syscall"
)

// tryLock opens the file at path (creating it, mode 0600) and takes a
// lock on it without waiting: an exclusive one, or a shared one, which
// only tells whether someone holds the exclusive one. It returns
// errLocked when the lock is held. The kernel releases the lock when the
// file is closed or the process dies, however it dies.
func tryLock(path string, exclusive bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	return f, nil
}
