package app

import (
	"context"
	"os"
	"runtime"
	"testing"

	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/internal/heapprobe"
)

// benchHomeVar names a home already filled (`pursuance bench fill`,
// passphrase "pw", pursuance "Bench") that BenchmarkHomeRetained folds.
// The fold may write a checkpoint into it: give it a copy.
const benchHomeVar = "PURSUANCE_BENCH_HOME"

// BenchmarkHomeRetained measures the heap a node holds for the state of a
// filled home's pursuance, as `pursuance up` keeps it (docs/benchmarks.md,
// "Smaller folds"): the state folded from the store (or loaded from its
// checkpoint) and kept in the node's fold cache, after a GC. It writes a
// heap profile to PURSUANCE_HEAP_PROFILE when set.
//
//	cp -a HOME /tmp/copy
//	PURSUANCE_BENCH_HOME=/tmp/copy PURSUANCE_HEAP_PROFILE=/tmp/heap.out go test ./app -run '^$' -bench HomeRetained -benchtime 1x
//	go tool pprof -sample_index=inuse_space -top /tmp/heap.out
func BenchmarkHomeRetained(b *testing.B) {
	home := os.Getenv(benchHomeVar)
	if home == "" {
		b.Skip(benchHomeVar + " names no filled home")
	}
	id, err := keystore.Open(home, []byte("pw"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		ForgetStates()
		before := heapprobe.Held()
		n, err := Open(ctx, home, id, Options{})
		if err != nil {
			b.Fatal(err)
		}
		p, err := n.Resolve(ctx, "Bench")
		if err != nil {
			b.Fatal(err)
		}
		s, err := n.State(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		after := heapprobe.Held()
		heapprobe.WriteProfile(b)
		b.ReportMetric(float64(after-before)/(1<<20), "held-MiB")
		b.ReportMetric(float64(after-before)/float64(s.Len()), "B/event")
		n.Close()
		runtime.KeepAlive(s)
	}
}
