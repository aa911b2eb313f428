//go:build unix

package store_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used, all threads, user and
// system. Benchmarks report it beside wall time: on a machine shared with
// other work, wall time says as much about the others as about the code.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
