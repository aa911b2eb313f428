// Package heapprobe is what the memory benchmarks share: the heap held
// after a collection, and a heap profile written where
// PURSUANCE_HEAP_PROFILE says (docs/benchmarks.md, "Smaller folds").
package heapprobe

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

// ProfileEnv names the variable that, set to a file, makes WriteProfile
// write the heap profile there.
const ProfileEnv = "PURSUANCE_HEAP_PROFILE"

// Held returns the bytes of heap in use after two collections (the second
// frees what finalizers of the first kept).
func Held() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// WriteProfile writes a heap profile to the file ProfileEnv names, if it
// names one.
func WriteProfile(tb testing.TB) {
	tb.Helper()
	f := os.Getenv(ProfileEnv)
	if f == "" {
		return
	}
	out, err := os.Create(f)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	if err := pprof.WriteHeapProfile(out); err != nil {
		tb.Fatal(err)
	}
}
