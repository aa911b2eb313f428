// Package bench builds workloads and times them, for the `pursuance bench`
// commands and the benchmark functions in the tests. Each measurement runs a
// baseline beside the real thing in the same process, so results are read as
// ratios on whatever machine runs them.
package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/ingest"
	"github.com/pursuance/pursuance/store"
)

// Log is a generated, signed log of one pursuance.
type Log struct {
	Pursuance event.ID
	Authors   int
	// Events are the wire forms in causal order, genesis first.
	Events [][]byte
	// Bytes is the total size of Events.
	Bytes int
}

// GenerateLog builds a valid log of n events (n ≥ 1) by the given number of
// authors, deterministically from seed. Authors take turns in waves: in each
// wave every author signs one event whose parents are its neighbour's event
// of the previous wave, so the log is a braided DAG with every chain
// interleaved, as a busy pursuance's would be. Signing is spread over
// workers goroutines (0 means GOMAXPROCS).
func GenerateLog(n, authors int, seed uint64, workers int) (*Log, error) {
	if n < 1 || authors < 1 {
		return nil, fmt.Errorf("bench: need at least 1 event and 1 author, got %d and %d", n, authors)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	chains := make([]*event.Chain, authors)
	for a := range chains {
		var s [32]byte
		binary.BigEndian.PutUint64(s[:], seed)
		binary.BigEndian.PutUint64(s[8:], uint64(a))
		k, err := identity.SigningKeyFromSeed(s[:])
		if err != nil {
			return nil, err
		}
		chains[a] = &event.Chain{Key: k}
	}
	const t0 = 1_790_000_000_000 // a fixed claimed time, Unix ms
	g, err := chains[0].Genesis(t0, body(seed, 0))
	if err != nil {
		return nil, err
	}
	log := &Log{Pursuance: g.ID(), Authors: authors, Events: make([][]byte, 0, n)}
	log.add(g)
	for a := 1; a < authors; a++ {
		chains[a].Pursuance = g.ID()
	}
	prev := make([]event.Ref, authors) // each author's event in the previous wave
	for a := range prev {
		prev[a] = g.Ref()
	}
	wave := make([]*event.Event, authors)
	errs := make([]error, authors)
	for len(log.Events) < n {
		m := min(authors, n-len(log.Events))
		var wg sync.WaitGroup
		per := (m + workers - 1) / workers
		for w := 0; w < m; w += per {
			wg.Add(1)
			go func(lo, hi int) {
				defer wg.Done()
				for a := lo; a < hi; a++ {
					i := uint64(len(log.Events) + a)
					wave[a], errs[a] = chains[a].Next(event.KindTaskComment, []event.Ref{prev[(a+1)%authors]}, t0+i, body(seed, i))
				}
			}(w, min(w+per, m))
		}
		wg.Wait()
		for a := 0; a < m; a++ {
			if errs[a] != nil {
				return nil, errs[a]
			}
			log.add(wave[a])
			prev[a] = wave[a].Ref()
		}
	}
	return log, nil
}

func (l *Log) add(e *event.Event) {
	b := e.Encode()
	l.Events = append(l.Events, b)
	l.Bytes += len(b)
}

// body returns a 160-byte pseudo-random body, about the size of a sealed
// comment.
func body(seed, i uint64) []byte {
	var in [16]byte
	binary.BigEndian.PutUint64(in[:], seed)
	binary.BigEndian.PutUint64(in[8:], i)
	out := make([]byte, 0, 160)
	for len(out) < 160 {
		h := sha256.Sum256(append(in[:], byte(len(out))))
		out = append(out, h[:]...)
	}
	return out[:160]
}

// DefaultBatch is how many events a catch-up delivers to ingest at once:
// about 4.5 MB of typical events. Larger batches amortise the store's
// random-key index writes; on the reference machine, a 1M-event log ingests
// at about 35k events/s in batches of 2,000 and 60k in batches of 10,000
// (docs/benchmarks.md).
const DefaultBatch = 10_000

// TimeIngest ingests log into a fresh SQLite store in dir, batch events at a
// time, and returns the time taken from the first batch until the store is
// closed: the last commit, then the checkpoint of what the WAL still holds.
// (Timing to the last commit left a smaller log's last checkpoint out, a
// larger share of its work: 10k events looked faster than 100k, and 100k
// than 1M.) It fails unless every event is accepted.
func TimeIngest(ctx context.Context, log *Log, dir string, batch int, opts ingest.Options) (time.Duration, error) {
	if batch <= 0 {
		batch = DefaultBatch
	}
	name := "ingest.db"
	if opts.Naive {
		name = "naive.db"
	}
	path := filepath.Join(dir, name)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	st, err := store.OpenSQLite(path, Key())
	if err != nil {
		return 0, err
	}
	return timeInto(ctx, st, log, batch, opts)
}

// Key returns a random key for a benchmark's store: stores are encrypted
// at rest (docs/store.md), and what is timed includes the encryption.
func Key() store.Key {
	var k store.Key
	rand.Read(k[:])
	return k
}

// TimeIngestMemory is TimeIngest into an in-memory store, which isolates
// the cost of checking from the cost of writing.
func TimeIngestMemory(ctx context.Context, log *Log, batch int, opts ingest.Options) (time.Duration, error) {
	if batch <= 0 {
		batch = DefaultBatch
	}
	return timeInto(ctx, store.NewMemory(), log, batch, opts)
}

// timeInto times the ingest of log into st and closes st, timing the close
// too.
func timeInto(ctx context.Context, st store.Store, log *Log, batch int, opts ingest.Options) (_ time.Duration, err error) {
	closed := false
	defer func() {
		if !closed {
			st.Close()
		}
	}()
	in := ingest.New(st, opts)
	var batches [][][]byte
	for lo := 0; lo < len(log.Events); lo += batch {
		batches = append(batches, log.Events[lo:min(lo+batch, len(log.Events))])
	}
	start := time.Now()
	accepted := 0
	// The real path checks each batch while the one before it is written;
	// the naive one (ingest.Options.Naive) takes one batch at a time.
	err = in.IngestBatches(ctx, batches, func(i int, res ingest.Result) error {
		if len(res.Rejected) > 0 {
			return fmt.Errorf("bench: event %d rejected: %v", i*batch+res.Rejected[0].Index, res.Rejected[0].Err)
		}
		accepted += len(res.Accepted)
		return nil
	})
	if err != nil {
		return 0, err
	}
	n, err := st.Count(ctx, log.Pursuance)
	if err != nil {
		return 0, err
	}
	closed = true
	if err := st.Close(); err != nil {
		return 0, err
	}
	d := time.Since(start)
	if accepted != len(log.Events) {
		return 0, fmt.Errorf("bench: %d of %d events accepted", accepted, len(log.Events))
	}
	if n != len(log.Events) {
		return 0, fmt.Errorf("bench: store holds %d of %d events", n, len(log.Events))
	}
	return d, nil
}

// IngestReport is the result of `pursuance bench ingest`.
type IngestReport struct {
	Events     int     `json:"events"`
	Authors    int     `json:"authors"`
	Batch      int     `json:"batch"`
	Bytes      int     `json:"bytes"`
	Cores      int     `json:"cores"`
	GenerateS  float64 `json:"generate_s"`
	NaiveS     float64 `json:"naive_s"`
	IngestS    float64 `json:"ingest_s"`
	NaivePerS  float64 `json:"naive_events_per_s"`
	IngestPerS float64 `json:"ingest_events_per_s"`
	Ratio      float64 `json:"ratio"`
}

// RunIngest generates a log of n events by authors authors and times the
// naive and the real ingest path over it, each into its own fresh SQLite
// store under dir. progress, if not nil, is told what phase starts.
func RunIngest(ctx context.Context, n, authors, batch int, dir string, progress func(string)) (*IngestReport, error) {
	if batch <= 0 {
		batch = DefaultBatch
	}
	say := func(f string, a ...any) {
		if progress != nil {
			progress(fmt.Sprintf(f, a...))
		}
	}
	rep := &IngestReport{Events: n, Authors: authors, Batch: batch, Cores: runtime.GOMAXPROCS(0)}
	say("generating a signed log of %d events by %d authors", n, authors)
	start := time.Now()
	log, err := GenerateLog(n, authors, 1, 0)
	if err != nil {
		return nil, err
	}
	rep.GenerateS = time.Since(start).Seconds()
	rep.Bytes = log.Bytes
	say("naive path: every signature verified, one core")
	naive, err := TimeIngest(ctx, log, dir, batch, ingest.Options{Naive: true})
	if err != nil {
		return nil, fmt.Errorf("naive path: %w", err)
	}
	say("real path: one signature per chain segment, all cores")
	real, err := TimeIngest(ctx, log, dir, batch, ingest.Options{})
	if err != nil {
		return nil, fmt.Errorf("real path: %w", err)
	}
	rep.NaiveS, rep.IngestS = naive.Seconds(), real.Seconds()
	rep.NaivePerS = float64(n) / rep.NaiveS
	rep.IngestPerS = float64(n) / rep.IngestS
	rep.Ratio = rep.NaiveS / rep.IngestS
	return rep, nil
}
