package ingest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pursuance/pursuance/ingest"
	"github.com/pursuance/pursuance/internal/bench"
	"github.com/pursuance/pursuance/store"
)

// BenchmarkIngest times ingest of a 20-author log into a fresh SQLite store,
// the naive path (every signature, one core) beside the real one, at
// several sizes. Each iteration ingests the whole log; compare ns/op of the
// two paths at one size for the ratio, and across sizes for growth.
//
//	go test ./ingest -run XXX -bench Ingest -benchtime 3x
//
// The fast path goes through IngestBatches, which checks each batch while
// the one before it is written; fast-unpipelined is the same path one
// Ingest call per batch, without that overlap.
//
// Set PURSUANCE_BENCH_1M=1 to include the 1M-event log (slow to generate).
func BenchmarkIngest(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if os.Getenv("PURSUANCE_BENCH_1M") != "" {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		log, err := bench.GenerateLog(n, 20, 1, 0)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range modes {
			b.Run(fmt.Sprintf("%s/events=%d", m.name, n), func(b *testing.B) {
				b.SetBytes(int64(log.Bytes))
				for i := 0; i < b.N; i++ {
					d, err := bench.TimeIngest(context.Background(), log, b.TempDir(), bench.DefaultBatch, m.opts)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(n)/d.Seconds(), "events/s")
				}
			})
		}
		// The real path without IngestBatches' overlap: one Ingest call
		// per batch, each checked only once the one before is stored.
		b.Run(fmt.Sprintf("fast-unpipelined/events=%d", n), func(b *testing.B) {
			b.SetBytes(int64(log.Bytes))
			for i := 0; i < b.N; i++ {
				st, err := store.OpenSQLite(filepath.Join(b.TempDir(), "ingest.db"), bench.Key())
				if err != nil {
					b.Fatal(err)
				}
				in := ingest.New(st, ingest.Options{})
				start := time.Now()
				for lo := 0; lo < n; lo += bench.DefaultBatch {
					res, err := in.Ingest(context.Background(), log.Events[lo:min(lo+bench.DefaultBatch, n)])
					if err != nil || len(res.Rejected) > 0 {
						b.Fatal(err, res.Rejected)
					}
				}
				if err := st.Close(); err != nil { // timed, as in bench.TimeIngest
					b.Fatal(err)
				}
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
			}
		})
	}
}

// BenchmarkCheckOnly is BenchmarkIngest into the in-memory store: the cost
// of checking alone, without the cost of durable writes.
func BenchmarkCheckOnly(b *testing.B) {
	log, err := bench.GenerateLog(100_000, 20, 1, 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				d, err := bench.TimeIngestMemory(context.Background(), log, bench.DefaultBatch, m.opts)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(log.Events))/d.Seconds(), "events/s")
			}
		})
	}
}
