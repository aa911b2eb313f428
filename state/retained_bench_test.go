package state_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/heapprobe"
	"github.com/pursuance/pursuance/state"
)

// BenchmarkRetained measures the heap a folded state holds, its events
// included (copies of the benchmark log's, held by nothing else once it is
// built, as a node's are), after a GC: "held-MiB" the state with what it
// keeps of its events, "events-MiB" the events as decoded, for scale. Reproduce with
//
//	go test ./state -run '^$' -bench Retained -benchtime 1x
//	PURSUANCE_HEAP_PROFILE=/tmp/heap.out go test ./state -run '^$' -bench 'Retained/events=100k' -benchtime 1x
//	go tool pprof -sample_index=inuse_space -top /tmp/heap.out
func BenchmarkRetained(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if os.Getenv("PURSUANCE_BENCH_1M") != "" {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run("events="+sizeLabel(n), func(b *testing.B) {
			l := logFor(b, n)
			for i := 0; i < b.N; i++ {
				// Copies of the events, held by nothing but the state once
				// built: what a node holding a state holds.
				evs := make([]*event.Event, len(l.events))
				before := heapprobe.Held()
				for i, e := range l.events {
					c, err := event.Decode(e.Encode()) // as a store reads it
					if err != nil {
						b.Fatal(err)
					}
					evs[i] = c
				}
				copies := heapprobe.Held()
				s, err := state.Build(l.pursuance, evs, nil)
				if err != nil {
					b.Fatal(err)
				}
				evs = nil
				after := heapprobe.Held()
				heapprobe.WriteProfile(b)
				if s.Hash() != l.hash {
					b.Fatal("state differs")
				}
				runtime.KeepAlive(s)
				b.ReportMetric(float64(after-before)/(1<<20), "held-MiB")
				b.ReportMetric(float64(copies-before)/(1<<20), "events-MiB")
			}
		})
	}
}
