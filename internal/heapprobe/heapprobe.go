// Package heapprobe is what the memory benchmarks share: the heap held
// after a collection, and a heap profile written where
// PURSUANCE_HEAP_PROFILE says (docs/benchmarks.md, "Smaller folds").
package heapprobe

import (
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"
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

// Peak samples the bytes of heap objects (live and not yet collected)
// every interval until the function it returns is called, which returns
// the highest sample. runtime/metrics reads it without stopping the world.
func Peak(interval time.Duration) func() uint64 {
	const name = "/memory/classes/heap/objects:bytes"
	var peak atomic.Uint64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		s := []metrics.Sample{{Name: name}}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}
