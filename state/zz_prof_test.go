package state_test

import (
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/bench"
	"github.com/pursuance/pursuance/state"
)

func TestZZProf(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ZZN"))
	if n == 0 {
		t.Skip()
	}
	evs, pid, err := bench.CachedStateLog(n, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	if p := os.Getenv("ZZPROF"); p != "" {
		f, _ := os.Create(p)
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	for range 2 {
		runtime.GC()
		start := time.Now()
		x := state.NewBuilder(pid, nil)
		for _, e := range evs {
			if err := x.Add(e); err != nil {
				t.Fatal(err)
			}
		}
		add := time.Since(start)
		s, err := x.Finish()
		if err != nil {
			t.Fatal(err)
		}
		all := time.Since(start)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("n=%d add %v finish %v total %v (%.0f ev/s) heap %d MB numgc %d", n, add, all-add, all, float64(n)/all.Seconds(), ms.HeapAlloc>>20, ms.NumGC)
		_ = s
	}
}
