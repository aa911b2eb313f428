// Package flock takes advisory, exclusive locks on open files, the one
// way on every platform: flock(2) on Unix, LockFileEx on Windows. A lock
// lasts until the file is closed (or its process ends, a crash included),
// so a lock file left behind by a dead process never blocks anyone.
package flock

import "errors"

// ErrUnsupported is returned by TryLock on a platform without file locks.
var ErrUnsupported = errors.New("flock: file locks are not supported on this platform")
