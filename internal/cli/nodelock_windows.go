//go:build windows

package cli

import (
	"errors"
	"os"
	"syscall"
)

// errorSharingViolation is ERROR_SHARING_VIOLATION: another handle's
// sharing mode forbids this open.
const errorSharingViolation syscall.Errno = 32

// tryLock opens the file at path (creating it) without waiting: for an
// exclusive lock, sharing it with nobody; for a shared one, with readers
// and writers, which only tells whether someone holds it exclusively. It
// returns errLocked when the lock is held. Windows closes the handle, and
// so releases the lock, when the process dies, however it dies.
func tryLock(path string, exclusive bool) (*os.File, error) {
	p, err := syscall.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	access, share := uint32(syscall.GENERIC_READ|syscall.GENERIC_WRITE), uint32(0)
	if !exclusive {
		access, share = syscall.GENERIC_READ, syscall.FILE_SHARE_READ|syscall.FILE_SHARE_WRITE
	}
	h, err := syscall.CreateFile(p, access, share, nil, syscall.OPEN_ALWAYS, syscall.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		if errors.Is(err, errorSharingViolation) {
			return nil, errLocked
		}
		return nil, err
	}
	return os.NewFile(uintptr(h), path), nil
}
