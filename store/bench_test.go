package store_test

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/store"
)

// Reproduce with:
//
//	go test ./store -run '^$' -bench . -benchtime 3x
//	go test ./store -run '^$' -bench 'Put/.*events=1000000' -benchtime 1x -store.events 1000000
var benchSizes = flag.String("store.events", "10000,100000", "comma-separated log sizes for the store benchmarks")

func sizes(b *testing.B) []int {
	var out []int
	for _, f := range strings.Split(*benchSizes, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n < 1 {
			b.Fatalf("bad -store.events %q", *benchSizes)
		}
		out = append(out, n)
	}
	return out
}

var (
	benchMu   sync.Mutex
	benchLogs = map[int][]*event.Event{}
)

// benchLog returns a log of n events by 16 authors, genesis first, the
// same for every benchmark in a run.
func benchLog(n int) []*event.Event {
	benchMu.Lock()
	defer benchMu.Unlock()
	if evs, ok := benchLogs[n]; ok {
		return evs
	}
	l, g := newFastLog(42, 16)
	evs := append([]*event.Event{g}, l.batch(n-1)...)
	benchLogs[n] = evs
	return evs
}

// BenchmarkPut writes a whole log into a fresh store in batches of 2,000
// events, as a catch-up does, and reports the cost per event; the memory
// store is the baseline beside it. move-µs/event is the part of the SQLite
// cost spent moving IDs from the recent tier of the ID index to its runs.
func BenchmarkPut(b *testing.B) {
	const batch = 2000
	for _, n := range sizes(b) {
		evs := benchLog(n)
		for _, kind := range []string{"sqlite", "memory"} {
			b.Run(fmt.Sprintf("%s/events=%d/batch=%d", kind, n, batch), func(b *testing.B) {
				var took, cpu, moving time.Duration
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					var s store.Store = store.NewMemory()
					if kind == "sqlite" {
						s = openSQLite(b, filepath.Join(b.TempDir(), fmt.Sprint("put", i, ".db")))
					}
					b.StartTimer()
					start, cpu0 := time.Now(), cpuTime()
					putAll(b, s, evs, batch)
					took += time.Since(start)
					cpu += cpuTime() - cpu0
					b.StopTimer()
					if sq, ok := s.(*store.SQLite); ok {
						moving += store.MoveTime(sq)
					}
					s.Close()
					b.StartTimer()
				}
				b.ReportMetric(float64(took.Nanoseconds())/1e3/float64(b.N*n), "µs/event")
				b.ReportMetric(float64(b.N*n)/took.Seconds(), "events/s")
				b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N*n), "cpu-µs/event")
				if kind == "sqlite" {
					// The part spent moving IDs out of the recent tier of
					// the ID index: constant per event when it is linear.
					b.ReportMetric(float64(moving.Nanoseconds())/1e3/float64(b.N*n), "move-µs/event")
				}
			})
		}
	}
}

// openBenchStore returns a SQLite store holding the log of n events.
func openBenchStore(b *testing.B, n int) (*store.SQLite, []*event.Event) {
	b.Helper()
	evs := benchLog(n)
	s := openSQLite(b, filepath.Join(b.TempDir(), "bench.db"))
	b.Cleanup(func() { s.Close() })
	putAll(b, s, evs, 5000)
	return s, evs
}

// BenchmarkRefs looks up 100 scattered IDs, as ingest does for the links
// of a batch that point outside it.
func BenchmarkRefs(b *testing.B) {
	ctx := context.Background()
	for _, n := range sizes(b) {
		b.Run(fmt.Sprintf("events=%d/ids=100", n), func(b *testing.B) {
			s, evs := openBenchStore(b, n)
			ids := make([]event.ID, 100)
			for i := range ids {
				ids[i] = evs[(i*7919)%len(evs)].ID()
			}
			b.ResetTimer()
			for b.Loop() {
				refs, err := s.Refs(ctx, ids)
				if err != nil || len(refs) != len(ids) {
					b.Fatal(len(refs), err)
				}
			}
		})
	}
}

// BenchmarkIterate streams the whole log.
func BenchmarkIterate(b *testing.B) {
	ctx := context.Background()
	for _, n := range sizes(b) {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			s, evs := openBenchStore(b, n)
			pid := evs[0].ID()
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				seen := 0
				if err := s.Iterate(ctx, pid, func(*event.Event) error { seen++; return nil }); err != nil || seen != n {
					b.Fatal(seen, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N*n), "µs/event")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1e3/float64(b.N*n), "cpu-µs/event")
		})
	}
}

// BenchmarkVersionVector reads the version vector of a log of 16 authors,
// which ingest does once per pursuance.
func BenchmarkVersionVector(b *testing.B) {
	ctx := context.Background()
	for _, n := range sizes(b) {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			s, evs := openBenchStore(b, n)
			pid := evs[0].ID()
			b.ResetTimer()
			for b.Loop() {
				if vv, err := s.VersionVector(ctx, pid); err != nil || len(vv) != 16 {
					b.Fatal(len(vv), err)
				}
			}
		})
	}
}
