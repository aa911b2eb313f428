package state_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/ingest"
	"github.com/pursuance/pursuance/internal/bench"
	"github.com/pursuance/pursuance/state"
	"github.com/pursuance/pursuance/store"
)

// benchMembers is how many members join the benchmark pursuance besides its
// founder.
const benchMembers = 20

// TestGenerateStateLog checks the rules-engine workload: the log is
// deterministic, valid at the event layer (ingest accepts every event),
// in log order, has the mix it claims, and the fold accepts all but the
// events that strong removal invalidates, so BenchmarkRebuild measures a
// working fold over a realistic log.
func TestGenerateStateLog(t *testing.T) {
	const n = 2000
	evs, pid, err := bench.GenerateStateLog(n, 12, 7)
	if err != nil {
		t.Fatal(err)
	}
	again, pid2, err := bench.GenerateStateLog(n, 12, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != n || len(again) != n || pid != pid2 {
		t.Fatalf("%d and %d events, pursuances %s and %s", len(evs), len(again), pid.Short(), pid2.Short())
	}
	kinds := map[event.Kind]int{}
	concurrent := 0
	wire := make([][]byte, n)
	for i, e := range evs {
		if e.ID() != again[i].ID() {
			t.Fatalf("event %d differs between runs", i)
		}
		if i > 0 && cmp.Or(cmp.Compare(evs[i-1].Lamport, e.Lamport), evs[i-1].ID().Compare(e.ID())) >= 0 {
			t.Fatalf("event %d out of log order", i)
		}
		if e.PursuanceID() != pid {
			t.Fatalf("event %d in another pursuance", i)
		}
		kinds[e.Kind]++
		if len(e.Parents) > 1 {
			concurrent++
		}
		wire[i] = e.Encode()
	}
	res, err := ingest.New(store.NewMemory(), ingest.Options{}).Ingest(context.Background(), wire)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) > 0 || len(res.Accepted) != n {
		t.Fatalf("ingest accepted %d of %d events; first rejection: %v", len(res.Accepted), n, res.Rejected)
	}
	var mix []string
	for k := event.KindGenesis; k.Known(); k++ {
		if kinds[k] > 0 {
			mix = append(mix, fmt.Sprintf("%s %.1f%%", k, 100*float64(kinds[k])/n))
		}
	}
	t.Logf("mix: %s; %d merges of concurrent branches", strings.Join(mix, ", "), concurrent)
	share := func(k event.Kind) float64 { return float64(kinds[k]) / n }
	if share(event.KindTaskCreate) < 0.10 || share(event.KindTaskCreate) > 0.20 ||
		share(event.KindTaskComment) < 0.33 || share(event.KindTaskComment) > 0.47 {
		t.Errorf("mix off: %s", strings.Join(mix, ", "))
	}
	for _, k := range []event.Kind{event.KindTaskStatus, event.KindTaskEdit, event.KindTaskAssign, event.KindTaskUnassign,
		event.KindTaskMove, event.KindRemove, event.KindRoleAssign, event.KindRoleRevoke, event.KindInvite, event.KindJoin} {
		if kinds[k] == 0 {
			t.Errorf("no %s events", k)
		}
	}
	if concurrent < n/50 {
		t.Errorf("only %d merges: too little concurrency", concurrent)
	}

	s, err := state.Build(pid, evs, nil)
	if err != nil {
		t.Fatal(err)
	}
	accepted, invalidated := checkRebuilt(t, s, n)
	t.Logf("%d of %d accepted, %d invalidated by strong removal, %d tasks, %d members", accepted, n, invalidated, len(s.Tasks()), len(s.Members()))
	if accepted < n*9/10 {
		t.Errorf("only %d of %d events accepted", accepted, n)
	}
	if invalidated < 2 {
		t.Errorf("%d events invalidated by strong removal, want at least 2", invalidated)
	}
	// The generator plans every event within its author's rights: the fold
	// must reject nothing but what concurrent removals invalidate. Both
	// ways of invalidating must occur: an event after the restriction in
	// log order, and one before it, which takes the fold a second pass.
	pos := map[string]int{}
	for i, e := range evs {
		pos[e.ID().Short()] = i
	}
	before, after := 0, 0
	for i, en := range s.Log() {
		if en.Accepted {
			continue
		}
		m := invalidatedBy.FindStringSubmatch(en.Reason)
		if m == nil {
			t.Errorf("%s %s by %s rejected: %s", en.Kind, en.ID.Short(), s.NameOf(en.Author), en.Reason)
			continue
		}
		if p, ok := pos[m[1]]; ok && p > i {
			before++
		} else {
			after++
		}
	}
	t.Logf("invalidated: %d before the restriction in log order, %d after", before, after)
	if before == 0 || after == 0 {
		t.Errorf("invalidated: %d before the restriction in log order, %d after; want both", before, after)
	}
}

// invalidatedBy matches a strong-removal reason and the first restriction
// it names.
var invalidatedBy = regexp.MustCompile(`^invalidated by concurrent removal or demotion of its author \(([0-9a-f]{12})`)

// checkRebuilt checks that a rebuilt state is sane, so that a benchmark
// cannot measure a broken fold: every event is there, nearly all are
// accepted, the tasks and members exist. It returns the accepted and
// invalidated counts.
func checkRebuilt(tb testing.TB, s *state.State, n int) (accepted, invalidated int) {
	tb.Helper()
	if s.Len() != n {
		tb.Fatalf("state holds %d of %d events", s.Len(), n)
	}
	for _, en := range s.Log() {
		switch {
		case en.Accepted:
			accepted++
		case strings.HasPrefix(en.Reason, "invalidated"):
			invalidated++
		}
	}
	if accepted < n*9/10 || invalidated == 0 {
		tb.Fatalf("%d of %d events accepted, %d invalidated: the fold is not doing what the log expects", accepted, n, invalidated)
	}
	if tasks := len(s.Tasks()); tasks < n/10 {
		tb.Fatalf("%d tasks from %d events", tasks, n)
	}
	if m := len(s.Members()); m < 3 {
		tb.Fatalf("%d members", m)
	}
	return accepted, invalidated
}

type rebuildLog struct {
	events    []*event.Event
	pursuance event.ID
	hash      [32]byte // the state's hash, from an untimed Build
}

var (
	rebuildMu   sync.Mutex
	rebuildLogs = map[int]*rebuildLog{}
)

// logFor returns the benchmark log of n events, generated once per process
// (and, from 50,000 events, cached on disk by bench.CachedStateLog), with
// the hash of its state, checked for sanity.
func logFor(b *testing.B, n int) *rebuildLog {
	rebuildMu.Lock()
	defer rebuildMu.Unlock()
	if l, ok := rebuildLogs[n]; ok {
		return l
	}
	start := time.Now()
	evs, pid, err := bench.CachedStateLog(n, benchMembers, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("log of %d events ready in %v", n, time.Since(start).Round(time.Millisecond))
	s, err := state.Build(pid, evs, nil)
	if err != nil {
		b.Fatal(err)
	}
	checkRebuilt(b, s, n)
	l := &rebuildLog{events: evs, pursuance: pid, hash: s.Hash()}
	rebuildLogs[n] = l
	return l
}

func sizeLabel(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// BenchmarkRebuild times rebuilding a pursuance's state from its log: a
// desk of 21 members working (bench.GenerateStateLog), 10k and 100k events
// (1M with PURSUANCE_BENCH_1M=1). ns/op is the rebuild alone; each run
// times its baseline beside it, on the same events:
//
//   - memory: state.Build over the decoded events, beside the floor of
//     decoding every event's body with state.DecodeOp (no rules);
//   - sqlite: Iterate over a SQLite store holding the log, feeding a
//     Builder, beside Iterate alone.
//
// Reproduce with
//
//	go test ./state -run '^$' -bench Rebuild -benchtime 1x -count 3
//	PURSUANCE_BENCH_1M=1 go test ./state -run '^$' -bench 'Rebuild/events=1M' -benchtime 1x -timeout 30m
func BenchmarkRebuild(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if os.Getenv("PURSUANCE_BENCH_1M") != "" {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run("events="+sizeLabel(n), func(b *testing.B) {
			l := logFor(b, n)
			b.Run("memory", func(b *testing.B) { benchRebuildMemory(b, l) })
			b.Run("sqlite", func(b *testing.B) { benchRebuildSQLite(b, l) })
		})
	}
}

var sinkOp state.Op

func benchRebuildMemory(b *testing.B, l *rebuildLog) {
	n := len(l.events)
	var decodeT, indexT, buildT time.Duration
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		start := time.Now()
		for _, e := range l.events {
			op, err := state.DecodeOp(e.Kind, e.Body())
			if err != nil {
				b.Fatal(err)
			}
			sinkOp = op
		}
		decodeT += time.Since(start)

		// The second baseline: the fold's bookkeeping alone, no rules and
		// no bodies: an ID-to-position map, each event's links looked up
		// in it, and a version vector per event as wide as the authors
		// seen so far. It shows what memory alone costs as the log grows.
		runtime.GC()
		start = time.Now()
		pos := make(map[event.ID]int32)
		authors := make(map[identity.PublicKey]int)
		vvs := make([][]uint64, 0, n)
		for j, e := range l.events {
			if _, ok := authors[e.Author]; !ok {
				authors[e.Author] = len(authors)
			}
			vv := make([]uint64, len(authors))
			for _, p := range e.Parents {
				for k, x := range vvs[pos[p]] {
					vv[k] = max(vv[k], x)
				}
			}
			vv[authors[e.Author]] = e.Seq
			vvs = append(vvs, vv)
			pos[e.ID()] = int32(j)
		}
		indexT += time.Since(start)
		sinkVVs = vvs

		runtime.GC()
		b.StartTimer()
		start = time.Now()
		s, err := state.Build(l.pursuance, l.events, nil)
		buildT += time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if s.Hash() != l.hash {
			b.Fatal("rebuilt state differs from the first build")
		}
	}
	b.ReportMetric(float64(b.N*n)/buildT.Seconds(), "events/s")
	b.ReportMetric(float64(b.N*n)/decodeT.Seconds(), "decode-events/s")
	b.ReportMetric(buildT.Seconds()/decodeT.Seconds(), "rebuild/decode")
	b.ReportMetric(float64(b.N*n)/indexT.Seconds(), "index-events/s")
	b.ReportMetric(buildT.Seconds()/indexT.Seconds(), "rebuild/index")
}

var sinkVVs [][]uint64

func benchRebuildSQLite(b *testing.B, l *rebuildLog) {
	ctx := context.Background()
	n := len(l.events)
	b.StopTimer()
	path := filepath.Join(b.TempDir(), "rebuild.db")
	key := bench.Key()
	st, err := store.OpenSQLite(path, key)
	if err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < n; lo += bench.DefaultBatch {
		if err := st.Put(ctx, l.events[lo:min(lo+bench.DefaultBatch, n)], nil); err != nil {
			b.Fatal(err)
		}
	}
	// Reopen, as a home does when it starts and rebuilds its state.
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if st, err = store.OpenSQLite(path, key); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	iterate := func() int {
		count := 0
		if err := st.Iterate(ctx, l.pursuance, func(*event.Event) error { count++; return nil }); err != nil {
			b.Fatal(err)
		}
		return count
	}
	if got := iterate(); got != n { // also warms the caches for both timings
		b.Fatalf("store holds %d of %d events", got, n)
	}
	var iterT, rebuildT time.Duration
	for i := 0; i < b.N; i++ {
		runtime.GC()
		start := time.Now()
		iterate()
		iterT += time.Since(start)

		runtime.GC()
		b.StartTimer()
		start = time.Now()
		evidence, err := st.Evidence(ctx, l.pursuance)
		if err != nil {
			b.Fatal(err)
		}
		x := state.NewBuilder(l.pursuance, evidence)
		if err := st.Iterate(ctx, l.pursuance, x.Add); err != nil {
			b.Fatal(err)
		}
		s, err := x.Finish()
		rebuildT += time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if s.Hash() != l.hash {
			b.Fatal("state rebuilt from the store differs from the one built in memory")
		}
	}
	b.ReportMetric(float64(b.N*n)/rebuildT.Seconds(), "events/s")
	b.ReportMetric(float64(b.N*n)/iterT.Seconds(), "iterate-events/s")
	b.ReportMetric(rebuildT.Seconds()/iterT.Seconds(), "rebuild/iterate")
}
