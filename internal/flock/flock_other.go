//go:build !unix && !windows

package flock

import "os"

// TryLock fails on this platform: it has no file locks.
func TryLock(f *os.File) (bool, error) { return false, ErrUnsupported }

// TryLockShared fails on this platform: it has no file locks.
func TryLockShared(f *os.File) (bool, error) { return false, ErrUnsupported }
