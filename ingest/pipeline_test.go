package ingest_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/ingest"
	"github.com/pursuance/pursuance/internal/bench"
	"github.com/pursuance/pursuance/store"
)

// messyBatches delivers a generated log the way a hostile or broken relay
// might, in batches of random sizes: events a little out of order (so that
// some wait for predecessors of a later batch), some never delivered (so
// that their successors stay pending), repeated, first without their body,
// with a broken signature (alone, or endorsed by their successor), forked
// (the author signs a second event at a seq, and sometimes a child of it),
// lying about their lamport clock, by a weak key, or not events at all.
func messyBatches(t testing.TB, seed uint64) [][][]byte {
	t.Helper()
	const authors, logSeed = 6, 11
	log, err := bench.GenerateLog(1500, authors, logSeed, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[identity.PublicKey]*identity.SigningKey{}
	for a := range authors {
		var s [32]byte
		binary.BigEndian.PutUint64(s[:], logSeed)
		binary.BigEndian.PutUint64(s[8:], uint64(a))
		k, err := identity.SigningKeyFromSeed(s[:])
		if err != nil {
			t.Fatal(err)
		}
		keys[k.Public()] = k
	}
	r := rand.New(rand.NewPCG(seed, 2))
	sign := func(k *identity.SigningKey, d event.Draft) *event.Event {
		e, err := event.Sign(k, d)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	badSig := func(e *event.Event) *event.Event {
		sig := slices.Clone(e.Signature())
		sig[r.IntN(len(sig))] ^= 1 << r.IntN(8)
		b, err := event.FromParts(e.HeaderBytes(), sig, e.Body())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var weak identity.PublicKey
	weak[0] = 1
	var out [][]byte
	type deferred struct {
		at int
		w  []byte
	}
	var later []deferred // delivered a few batches later
	delay := func(w []byte) { later = append(later, deferred{len(out) + 100 + r.IntN(400), w}) }
	for i, w := range log.Events {
		e, err := event.Decode(w)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			out = append(out, w)
			continue
		}
		k := keys[e.Author]
		draft := event.Draft{Pursuance: e.Pursuance, Seq: e.Seq, Backlink: e.Backlink, Parents: e.Parents,
			Lamport: e.Lamport, Kind: e.Kind, Time: e.Time, Body: []byte(fmt.Sprint("fork ", i))}
		switch x := r.IntN(100); {
		case x < 2 && i > len(log.Events)*9/10: // never delivered (what follows waits)
			continue
		case x < 2: // delivered later
			delay(w)
			continue
		case x < 4: // a broken signature, the true event now or later
			out = append(out, badSig(e).Encode())
			if r.IntN(2) == 0 {
				delay(w)
				continue
			}
		case x < 6: // a fork, sometimes with a child
			f := sign(k, draft)
			out = append(out, f.Encode())
			if r.IntN(2) == 0 {
				ref := f.Ref()
				out = append(out, sign(k, event.Draft{Pursuance: e.Pursuance, Seq: e.Seq + 1, Backlink: f.ID(),
					Parents: []event.ID{f.ID()}, Lamport: ref.Lamport + 1, Kind: e.Kind, Time: e.Time, Body: []byte("child")}).Encode())
			}
		case x < 7: // a fork lying about its lamport clock
			draft.Lamport += 3
			out = append(out, sign(k, draft).Encode())
		case x < 9: // first without its body
			out = append(out, e.WithoutBody().Encode())
		case x < 11: // repeated, now or later
			if r.IntN(2) == 0 {
				out = append(out, w)
			} else {
				delay(w)
			}
		case x < 12: // garbage
			out = append(out, w[:len(w)/2])
		case x < 13: // a weak author
			d := event.Header{Version: event.Version, Pursuance: log.Pursuance, Author: weak, Seq: 1, Parents: []event.ID{log.Pursuance},
				Lamport: 2, Kind: event.KindTaskComment, PayloadHash: event.PayloadHash(nil)}
			sig := make([]byte, 64)
			sig[0] = 1
			f, err := event.FromParts(d.AppendEncode(nil), sig, []byte{})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, f.Encode())
		}
		out = append(out, w)
	}
	// An event with a broken signature that its author's next event
	// endorses, both delivered together.
	for i := len(log.Events) - 1; i > 0; i-- {
		e, _ := event.Decode(log.Events[i])
		if e.Seq < 2 {
			continue
		}
		k := keys[e.Author]
		fake := badSig(e)
		out = append(out, fake.Encode(), sign(k, event.Draft{Pursuance: e.Pursuance, Seq: e.Seq + 1, Backlink: fake.ID(),
			Parents: []event.ID{fake.ID()}, Lamport: fake.Lamport + 1, Kind: e.Kind, Time: e.Time, Body: []byte("endorses")}).Encode())
		break
	}
	for i := len(later) - 1; i >= 0; i-- {
		d := later[i]
		out = slices.Insert(out, min(d.at, len(out)), d.w)
	}
	// A little out of order.
	for i := range out {
		j := min(len(out)-1, i+r.IntN(60))
		out[i], out[j] = out[j], out[i]
	}
	var batches [][][]byte
	for len(out) > 0 {
		n := min(len(out), 1+r.IntN(120))
		batches = append(batches, out[:n])
		out = out[n:]
	}
	return batches
}

// snapshot is everything observable about an Ingester and its store.
type snapshot struct {
	results []string
	pending int
	missing []event.ID
	events  []string
	heads   []event.ID
	eq      []event.Equivocation
}

func resultString(res ingest.Result) string {
	s := fmt.Sprintf("accepted %v dup %d pending %d eq %v rejected", res.Accepted, res.Duplicates, res.Pending, res.Equivocations)
	for _, r := range res.Rejected {
		s += fmt.Sprintf(" [%d %s %v]", r.Index, r.ID.Short(), r.Err)
	}
	return s
}

func snap(t testing.TB, in *ingest.Ingester, st store.Store, pid event.ID, results []string) snapshot {
	t.Helper()
	ctx := context.Background()
	s := snapshot{results: results, pending: in.PendingCount(), missing: in.Missing()}
	err := st.Iterate(ctx, pid, func(e *event.Event) error {
		s.events = append(s.events, fmt.Sprintf("%s body=%v", e.ID().Short(), e.HasBody()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.heads, err = st.Heads(ctx, pid); err != nil {
		t.Fatal(err)
	}
	if s.eq, err = st.Evidence(ctx, pid); err != nil {
		t.Fatal(err)
	}
	return s
}

func sameSnapshot(t testing.TB, name string, want, got snapshot) {
	t.Helper()
	if len(want.results) != len(got.results) {
		t.Fatalf("%s: %d results, want %d", name, len(got.results), len(want.results))
	}
	for i := range want.results {
		if want.results[i] != got.results[i] {
			t.Fatalf("%s: batch %d:\n got %s\nwant %s", name, i, got.results[i], want.results[i])
		}
	}
	if want.pending != got.pending || !slices.Equal(want.missing, got.missing) {
		t.Fatalf("%s: pending %d missing %d, want %d and %d", name, got.pending, len(got.missing), want.pending, len(want.missing))
	}
	if !slices.Equal(want.events, got.events) || !slices.Equal(want.heads, got.heads) || !slices.Equal(want.eq, got.eq) {
		t.Fatalf("%s: stores differ: %d events, %d heads, %d records; want %d, %d, %d", name,
			len(got.events), len(got.heads), len(got.eq), len(want.events), len(want.heads), len(want.eq))
	}
}

// sequential ingests the batches one Ingest call at a time: the reference.
func sequential(t testing.TB, in *ingest.Ingester, batches [][][]byte) []string {
	t.Helper()
	var out []string
	for _, b := range batches {
		res, err := in.Ingest(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resultString(res))
	}
	return out
}

func pipelined(t testing.TB, in *ingest.Ingester, batches [][][]byte) []string {
	t.Helper()
	var out []string
	err := in.IngestBatches(context.Background(), batches, func(i int, res ingest.Result) error {
		if i != len(out) {
			t.Fatalf("result of batch %d reported after %d others", i, len(out))
		}
		out = append(out, resultString(res))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIngestBatchesSameAsIngest: checking each batch while the previous one
// is written changes no result, no pending event and nothing stored, on
// logs with forks, missing predecessors, bad signatures, duplicates and
// lies, with the ref cache of production and with one too small to hold a
// batch (so that links to the batch being written are found only in it),
// and with a pending set small enough to evict.
func TestIngestBatchesSameAsIngest(t *testing.T) {
	for seed := range uint64(6) {
		batches := messyBatches(t, seed)
		pid := mustDecode(t, batches).PursuanceID()
		for _, cfg := range []struct {
			name  string
			cache int
			opts  ingest.Options
		}{
			{"default", 0, ingest.Options{}},
			{"tiny cache", 4, ingest.Options{}},
			{"tiny cache, 1 worker, pending bound", 4, ingest.Options{Workers: 1, MaxPending: 60}},
		} {
			name := fmt.Sprintf("seed %d, %s", seed, cfg.name)
			newIn := func() (*ingest.Ingester, store.Store) {
				st := store.NewMemory()
				in := ingest.New(slowStore{st}, cfg.opts)
				if cfg.cache > 0 {
					ingest.SetRefCacheSize(in, cfg.cache)
				}
				return in, st
			}
			in, st := newIn()
			want := snap(t, in, st, pid, sequential(t, in, batches))
			if seed == 0 && cfg.cache == 0 {
				t.Logf("%s: %d batches, %d stored, %d pending, %d evidence records", name, len(batches), len(want.events), want.pending, len(want.eq))
			}
			if cfg.opts.MaxPending > 0 && want.pending != cfg.opts.MaxPending {
				t.Fatalf("%s: %d pending, want the bound %d", name, want.pending, cfg.opts.MaxPending)
			}
			if cfg.opts.MaxPending == 0 && (want.pending == 0 || len(want.eq) == 0 || len(want.events) < 1000) {
				t.Fatalf("%s: the workload lacks pending events or forks, or stores little: %d stored, %d pending, %d evidence records",
					name, len(want.events), want.pending, len(want.eq))
			}
			in, st = newIn()
			sameSnapshot(t, name, want, snap(t, in, st, pid, pipelined(t, in, batches)))
		}
	}
}

func mustDecode(t testing.TB, batches [][][]byte) *event.Event {
	t.Helper()
	for _, b := range batches {
		for _, w := range b {
			if e, err := event.Decode(w); err == nil && e.Kind == event.KindGenesis {
				return e
			}
		}
	}
	t.Fatal("no genesis")
	return nil
}

// slowStore takes a while over each Put before writing, so that the next
// batch is checked while the store does not hold this one yet. (The results
// must not depend on it; this only makes the tests reach that case.)
type slowStore struct{ store.Store }

func (s slowStore) Put(ctx context.Context, evs []*event.Event, eq []event.Equivocation) error {
	time.Sleep(2 * time.Millisecond)
	return s.Store.Put(ctx, evs, eq)
}

// flakyStore is slowStore, and fails the Put numbered failAt (from 1).
type flakyStore struct {
	store.Store
	puts, failAt int
}

func (f *flakyStore) Put(ctx context.Context, evs []*event.Event, eq []event.Equivocation) error {
	f.puts++
	time.Sleep(time.Millisecond) // as slowStore
	if f.puts == f.failAt {
		return errors.New("disk full")
	}
	return f.Store.Put(ctx, evs, eq)
}

// TestIngestBatchesStoreFailure: when a Put fails, IngestBatches returns the
// error having reported exactly the batches stored before it, the pending
// set is as they left it, and delivering the rest again ends where
// one-at-a-time ingest, failing at the same Put, ends.
func TestIngestBatchesStoreFailure(t *testing.T) {
	batches := messyBatches(t, 42)
	pid := mustDecode(t, batches).PursuanceID()
	for _, cfg := range []struct {
		cache int
		opts  ingest.Options
	}{{0, ingest.Options{}}, {4, ingest.Options{}}, {4, ingest.Options{MaxPending: 60}}, {0, ingest.Options{MaxPendingBytes: 40_000}}} {
		count := &flakyStore{Store: store.NewMemory()}
		sequential(t, ingest.New(count, cfg.opts), batches)
		for _, failAt := range []int{1, 2, count.puts / 2, count.puts} {
			name := fmt.Sprintf("fail at put %d of %d, cache %d, max pending %d, %d bytes", failAt, count.puts, cfg.cache, cfg.opts.MaxPending, cfg.opts.MaxPendingBytes)
			newIn := func() (*ingest.Ingester, *flakyStore) {
				st := &flakyStore{Store: store.NewMemory(), failAt: failAt}
				in := ingest.New(st, cfg.opts)
				if cfg.cache > 0 {
					ingest.SetRefCacheSize(in, cfg.cache)
				}
				return in, st
			}
			// The reference: one batch at a time, up to the failure.
			in, st := newIn()
			var want []string
			failed := -1
			for i, b := range batches {
				res, err := in.Ingest(context.Background(), b)
				if err != nil {
					failed = i
					break
				}
				want = append(want, resultString(res))
			}
			if failed < 0 {
				t.Fatalf("%s: no Put failed", name)
			}
			wantAtFailure := snap(t, in, st.Store, pid, want)
			want = append(want, sequential(t, in, batches[failed:])...)
			wantEnd := snap(t, in, st.Store, pid, want)

			in, st = newIn()
			var got []string
			err := in.IngestBatches(context.Background(), batches, func(i int, res ingest.Result) error {
				got = append(got, resultString(res))
				return nil
			})
			if err == nil {
				t.Fatalf("%s: IngestBatches succeeded over a failing store", name)
			}
			sameSnapshot(t, name+", at the failure", wantAtFailure, snap(t, in, st.Store, pid, got))
			got = append(got, pipelined(t, in, batches[failed:])...)
			sameSnapshot(t, name+", at the end", wantEnd, snap(t, in, st.Store, pid, got))
		}
	}
}

// TestIngestBatchesCallbackError: an error from fn stops IngestBatches at
// once; the batch checked meanwhile is neither stored nor left pending.
func TestIngestBatchesCallbackError(t *testing.T) {
	batches := messyBatches(t, 7)
	pid := mustDecode(t, batches).PursuanceID()
	stop := errors.New("stop")
	for _, at := range []int{0, 3, len(batches) - 1} {
		st := store.NewMemory()
		in := ingest.New(st, ingest.Options{})
		var got []string
		err := in.IngestBatches(context.Background(), batches, func(i int, res ingest.Result) error {
			got = append(got, resultString(res))
			if i == at {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Fatalf("stop at %d: err %v", at, err)
		}
		ref := store.NewMemory()
		rin := ingest.New(ref, ingest.Options{})
		want := snap(t, rin, ref, pid, sequential(t, rin, batches[:at+1]))
		sameSnapshot(t, fmt.Sprintf("stop at %d", at), want, snap(t, in, st, pid, got))
	}
}

// TestIngestBatchesNaive: the naive path takes batches one at a time, with
// the same results.
func TestIngestBatchesNaive(t *testing.T) {
	batches := messyBatches(t, 3)
	pid := mustDecode(t, batches).PursuanceID()
	st := store.NewMemory()
	in := ingest.New(st, ingest.Options{Naive: true})
	want := snap(t, in, st, pid, sequential(t, in, batches))
	st = store.NewMemory()
	in = ingest.New(st, ingest.Options{Naive: true})
	sameSnapshot(t, "naive", want, snap(t, in, st, pid, pipelined(t, in, batches)))
}
