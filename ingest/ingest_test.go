package ingest_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/ingest"
	"github.com/pursuance/pursuance/internal/bench"
	"github.com/pursuance/pursuance/store"
)

var modes = []struct {
	name string
	opts ingest.Options
}{
	{"fast", ingest.Options{}},
	{"naive", ingest.Options{Naive: true}},
}

func genLog(t testing.TB, n, authors int) *bench.Log {
	t.Helper()
	log, err := bench.GenerateLog(n, authors, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

func ingestAll(t testing.TB, in *ingest.Ingester, batch [][]byte) ingest.Result {
	t.Helper()
	res, err := in.Ingest(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestIngestWholeLog(t *testing.T) {
	log := genLog(t, 3000, 7)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			st := store.NewMemory()
			in := ingest.New(st, m.opts)
			total := 0
			for lo := 0; lo < len(log.Events); lo += 500 {
				res := ingestAll(t, in, log.Events[lo:min(lo+500, len(log.Events))])
				if len(res.Rejected) > 0 || res.Pending > 0 {
					t.Fatalf("batch at %d: %d rejected (first: %v), %d pending", lo, len(res.Rejected), firstErr(res), res.Pending)
				}
				total += len(res.Accepted)
			}
			if total != len(log.Events) {
				t.Fatalf("accepted %d of %d", total, len(log.Events))
			}
			if n, _ := st.Count(context.Background(), log.Pursuance); n != len(log.Events) {
				t.Fatalf("store holds %d of %d", n, len(log.Events))
			}
			// Ingesting it all again changes nothing.
			res := ingestAll(t, in, log.Events)
			if len(res.Accepted) != 0 || res.Duplicates != len(log.Events) {
				t.Fatalf("re-ingest: accepted %d, duplicates %d", len(res.Accepted), res.Duplicates)
			}
		})
	}
}

func firstErr(res ingest.Result) error {
	if len(res.Rejected) == 0 {
		return nil
	}
	return res.Rejected[0].Err
}

// TestCorruptedEventInSegment flips one bit in an event of a long chain
// segment: exactly that event is rejected, the good prefix is stored, the
// rest waits for the true event, and delivering it completes the chain.
func TestCorruptedEventInSegment(t *testing.T) {
	log := genLog(t, 1001, 1) // genesis + a 1,000-event segment
	positions := []int{1, 500, 999, 1000}
	for _, m := range modes {
		for _, pos := range positions {
			orig := log.Events[pos]
			for _, bit := range []int{8 * 10, 8 * 60, 8*(len(orig)-200) + 3, 8*(len(orig)-5) + 1} {
				st := store.NewMemory()
				in := ingest.New(st, m.opts)
				batch := slices.Clone(log.Events)
				bad := slices.Clone(orig)
				bad[bit/8] ^= 1 << (bit % 8)
				batch[pos] = bad
				res := ingestAll(t, in, batch)
				if len(res.Rejected) != 1 || res.Rejected[0].Index != pos {
					t.Fatalf("%s pos %d bit %d: rejected %+v, want exactly event %d", m.name, pos, bit, res.Rejected, pos)
				}
				if len(res.Accepted) != pos {
					t.Fatalf("%s pos %d bit %d: accepted %d, want the %d before it", m.name, pos, bit, len(res.Accepted), pos)
				}
				if want := len(log.Events) - pos - 1; res.Pending != want {
					t.Fatalf("%s pos %d bit %d: %d pending, want %d", m.name, pos, bit, res.Pending, want)
				}
				if want := len(log.Events) - pos - 1; want > 0 {
					origEv, _ := event.Decode(orig)
					if miss := in.Missing(); len(miss) != 1 || miss[0] != origEv.ID() {
						t.Fatalf("%s pos %d: missing %v, want the true event %s", m.name, pos, miss, origEv.ID().Short())
					}
				}
				res = ingestAll(t, in, [][]byte{orig})
				if len(res.Rejected) != 0 || len(res.Accepted) != len(log.Events)-pos {
					t.Fatalf("%s pos %d: after repair accepted %d rejected %v", m.name, pos, len(res.Accepted), res.Rejected)
				}
				if in.PendingCount() != 0 {
					t.Fatalf("%s: %d still pending", m.name, in.PendingCount())
				}
			}
		}
	}
}

// TestDeliveryOrderDoesNotMatter delivers a log shuffled, in random
// batches: everything ends up accepted and nothing is left pending.
func TestDeliveryOrderDoesNotMatter(t *testing.T) {
	log := genLog(t, 600, 5)
	for seed := range uint64(16) {
		rt := t
		r := rand.New(rand.NewPCG(seed, 1))
		evs := slices.Clone(log.Events)
		r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		m := modes[r.IntN(2)]
		st := store.NewMemory()
		in := ingest.New(st, m.opts)
		total := 0
		for len(evs) > 0 {
			n := 1 + r.IntN(min(len(evs), 200))
			res, err := in.Ingest(context.Background(), evs[:n])
			if err != nil {
				rt.Fatal(err)
			}
			if len(res.Rejected) > 0 {
				rt.Fatalf("%s: rejected %v", m.name, res.Rejected[0].Err)
			}
			total += len(res.Accepted)
			evs = evs[n:]
		}
		if total != len(log.Events) || in.PendingCount() != 0 {
			rt.Fatalf("%s: accepted %d of %d, %d pending", m.name, total, len(log.Events), in.PendingCount())
		}
		heads, _ := st.Heads(context.Background(), log.Pursuance)
		if len(heads) == 0 {
			rt.Fatal("no heads")
		}
	}
}

type fixture struct {
	key *identity.SigningKey
	g   *event.Event
	c   *event.Chain
}

func newFixture(t *testing.T, seed byte) *fixture {
	t.Helper()
	k, err := identity.SigningKeyFromSeed(slices.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	c := &event.Chain{Key: k}
	g, err := c.Genesis(1, []byte("genesis"))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{key: k, g: g, c: c}
}

func (f *fixture) next(t *testing.T, body string) *event.Event {
	t.Helper()
	e, err := f.c.Next(event.KindTaskComment, []event.Ref{*f.c.Last}, 2, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func wire(evs ...*event.Event) [][]byte {
	out := make([][]byte, len(evs))
	for i, e := range evs {
		out[i] = e.Encode()
	}
	return out
}

// TestEndorsedBadSignature: an author who publishes its own event with a
// broken signature and then validly signs a successor naming it has vouched
// for it. Whether the two arrive together or apart, in either order, and
// whichever path checks them, the result is the same: both accepted.
func TestEndorsedBadSignature(t *testing.T) {
	f := newFixture(t, 1)
	good := f.next(t, "one")
	sig := slices.Clone(good.Signature())
	sig[0] ^= 0xff
	forged, err := event.FromParts(good.HeaderBytes(), sig, good.Body())
	if err != nil {
		t.Fatal(err)
	}
	if forged.VerifySignature() == nil {
		t.Fatal("forged signature verifies")
	}
	succ, err := event.Sign(f.key, event.Draft{
		Pursuance: f.g.ID(), Seq: 3, Backlink: forged.ID(), Parents: []event.ID{forged.ID()},
		Lamport: forged.Lamport + 1, Kind: event.KindTaskComment, Time: 3, Body: []byte("two"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range modes {
		// Together.
		in := ingest.New(store.NewMemory(), m.opts)
		res := ingestAll(t, in, wire(f.g, succ, forged))
		if len(res.Accepted) != 3 {
			t.Fatalf("%s together: accepted %d, rejected %v", m.name, len(res.Accepted), res.Rejected)
		}
		// Apart, the forged one first: rejected, then the successor waits,
		// then the forged one again completes both.
		in = ingest.New(store.NewMemory(), m.opts)
		ingestAll(t, in, wire(f.g))
		res = ingestAll(t, in, wire(forged))
		if len(res.Rejected) != 1 || !errors.Is(res.Rejected[0].Err, event.ErrBadSignature) {
			t.Fatalf("%s alone: got %+v, want bad signature", m.name, res.Rejected)
		}
		res = ingestAll(t, in, wire(succ))
		if res.Pending != 1 {
			t.Fatalf("%s: successor not pending: %+v", m.name, res)
		}
		res = ingestAll(t, in, wire(forged))
		if len(res.Accepted) != 2 {
			t.Fatalf("%s: redelivery accepted %d, rejected %v", m.name, len(res.Accepted), res.Rejected)
		}
	}
}

func TestEquivocation(t *testing.T) {
	f := newFixture(t, 2)
	e1 := f.next(t, "a")
	back := *f.c
	f.c.Last = &event.Ref{ID: f.g.ID(), Pursuance: f.g.ID(), Author: f.key.Public(), Seq: 1, Lamport: 1}
	e1b := f.next(t, "b") // same seq 2, different body
	*f.c = back
	e2 := f.next(t, "c")
	for _, m := range modes {
		for _, together := range []bool{true, false} {
			st := store.NewMemory()
			in := ingest.New(st, m.opts)
			var eq []event.Equivocation
			if together {
				res := ingestAll(t, in, wire(f.g, e1, e1b, e2))
				if len(res.Accepted) != 4 {
					t.Fatalf("accepted %d: %v", len(res.Accepted), res.Rejected)
				}
				eq = res.Equivocations
			} else {
				ingestAll(t, in, wire(f.g, e1, e2))
				res := ingestAll(t, in, wire(e1b))
				if len(res.Accepted) != 1 {
					t.Fatalf("late fork: accepted %d: %v", len(res.Accepted), res.Rejected)
				}
				eq = res.Equivocations
			}
			if len(eq) != 1 || eq[0].Seq != 2 || !eq[0].Author.Equal(f.key.Public()) {
				t.Fatalf("%s together=%v: equivocations %+v", m.name, together, eq)
			}
			ev, err := st.Evidence(context.Background(), f.g.ID())
			if err != nil || len(ev) != 1 || ev[0] != eq[0] {
				t.Fatalf("stored evidence %+v, %v", ev, err)
			}
			both, _ := st.BySeq(context.Background(), f.g.ID(), f.key.Public(), 2)
			if len(both) != 2 {
				t.Fatalf("BySeq holds %d events, want both", len(both))
			}
		}
	}
}

// TestLamportLieTaintsDescendants: an event lying about its lamport clock
// is rejected, and so is what builds on it in the same batch.
func TestLamportLieTaintsDescendants(t *testing.T) {
	f := newFixture(t, 3)
	liar, err := event.Sign(f.key, event.Draft{
		Pursuance: f.g.ID(), Seq: 2, Backlink: f.g.ID(), Parents: []event.ID{f.g.ID()},
		Lamport: 5, Kind: event.KindTaskComment, Time: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.c.Last = func() *event.Ref { r := liar.Ref(); return &r }()
	child := f.next(t, "child")
	for _, m := range modes {
		in := ingest.New(store.NewMemory(), m.opts)
		res := ingestAll(t, in, wire(f.g, liar, child))
		if len(res.Accepted) != 1 || len(res.Rejected) != 2 {
			t.Fatalf("%s: accepted %d rejected %+v", m.name, len(res.Accepted), res.Rejected)
		}
		if !errors.Is(res.Rejected[0].Err, event.ErrLamport) || !errors.Is(res.Rejected[1].Err, ingest.ErrDependsOnRejected) {
			t.Fatalf("%s: reasons %v / %v", m.name, res.Rejected[0].Err, res.Rejected[1].Err)
		}
	}
}

func TestPendingIsBounded(t *testing.T) {
	log := genLog(t, 600, 3)
	in := ingest.New(store.NewMemory(), ingest.Options{MaxPending: 100})
	res := ingestAll(t, in, log.Events[1:]) // everything but genesis: all orphans
	if len(res.Accepted) != 0 {
		t.Fatalf("accepted %d orphans", len(res.Accepted))
	}
	if n := in.PendingCount(); n != 100 {
		t.Fatalf("pending %d, want the bound 100", n)
	}
}

func TestMalformedInput(t *testing.T) {
	in := ingest.New(store.NewMemory(), ingest.Options{})
	res := ingestAll(t, in, [][]byte{nil, {0x83}, []byte("garbage"), make([]byte, event.MaxEventSize+1)})
	if len(res.Rejected) != 4 {
		t.Fatalf("rejected %d of 4", len(res.Rejected))
	}
	for i, r := range res.Rejected {
		if r.Index != i || r.Err == nil {
			t.Fatalf("rejection %d: %+v", i, r)
		}
	}
}

// failingStore fails every Put.
type failingStore struct{ store.Store }

func (failingStore) Put(context.Context, []*event.Event, []event.Equivocation) error {
	return errors.New("disk full")
}

func TestStoreFailureLeavesNoTrace(t *testing.T) {
	log := genLog(t, 50, 2)
	mem := store.NewMemory()
	in := ingest.New(failingStore{mem}, ingest.Options{})
	ingestAll(t, ingest.New(mem, ingest.Options{}), log.Events[:1])
	if _, err := in.Ingest(context.Background(), log.Events[1:]); err == nil {
		t.Fatal("Ingest succeeded over a failing store")
	}
	if in.PendingCount() != 0 {
		t.Fatal("failed batch left events pending")
	}
	if n, _ := mem.Count(context.Background(), log.Pursuance); n != 1 {
		t.Fatalf("store holds %d events", n)
	}
}

// TestWeakAuthorRejected: an event "signed" by a small-order key, for which
// one signature verifies for any message, is rejected before anything else.
func TestWeakAuthorRejected(t *testing.T) {
	f := newFixture(t, 4)
	var weak identity.PublicKey
	weak[0] = 1 // the neutral element
	sig := make([]byte, 64)
	sig[0] = 1 // R = neutral element, S = 0
	d := event.Header{Version: event.Version, Pursuance: f.g.ID(), Author: weak, Seq: 1, Parents: []event.ID{f.g.ID()},
		Lamport: 2, Kind: event.KindTaskComment, PayloadHash: event.PayloadHash(nil)}
	forged, err := event.FromParts(d.AppendEncode(nil), sig, []byte{})
	if err != nil {
		t.Fatal(err)
	}
	if err := forged.VerifySignature(); err != nil {
		t.Fatalf("the forgery no longer verifies (%v): this test no longer shows anything", err)
	}
	for _, m := range modes {
		in := ingest.New(store.NewMemory(), m.opts)
		res := ingestAll(t, in, wire(f.g, forged))
		if len(res.Accepted) != 1 || len(res.Rejected) != 1 || !errors.Is(res.Rejected[0].Err, identity.ErrWeakKey) {
			t.Fatalf("%s: accepted %d, rejected %+v", m.name, len(res.Accepted), res.Rejected)
		}
	}
}

// TestVouchingDoesNotDependOnOrder is the case where a validly signed event
// W, whose backlink c has a broken signature, would break a rule once
// checked (its lamport clock is below a parent's): W must wait for c, not
// be rejected, so that it vouches for c in every delivery order.
func TestVouchingDoesNotDependOnOrder(t *testing.T) {
	f := newFixture(t, 5)
	good := f.next(t, "c")
	sig := slices.Clone(good.Signature())
	sig[5] ^= 1
	c, err := event.FromParts(good.HeaderBytes(), sig, good.Body())
	if err != nil {
		t.Fatal(err)
	}
	other, err := identity.SigningKeyFromSeed(slices.Repeat([]byte{6}, 32))
	if err != nil {
		t.Fatal(err)
	}
	var nowhere event.ID
	nowhere[0] = 0xee
	y, err := event.Sign(other, event.Draft{Pursuance: f.g.ID(), Seq: 1, Parents: []event.ID{nowhere},
		Lamport: 100, Kind: event.KindTaskComment, Time: 9})
	if err != nil {
		t.Fatal(err)
	}
	w, err := event.Sign(f.key, event.Draft{Pursuance: f.g.ID(), Seq: 3, Backlink: c.ID(), Parents: []event.ID{c.ID(), y.ID()},
		Lamport: 3, Kind: event.KindTaskComment, Time: 10})
	if err != nil {
		t.Fatal(err)
	}
	orders := map[string][][]*event.Event{
		"[G][W,Y][c]":  {{f.g}, {w, y}, {c}},
		"[G][W,Y,c]":   {{f.g}, {w, y, c}},
		"[G][W][c][Y]": {{f.g}, {w}, {c}, {y}},
	}
	for _, m := range modes {
		for name, batches := range orders {
			st := store.NewMemory()
			in := ingest.New(st, m.opts)
			for _, b := range batches {
				ingestAll(t, in, wire(b...))
			}
			if _, err := st.Get(context.Background(), c.ID()); err != nil {
				t.Errorf("%s %s: c not accepted: %v", m.name, name, err)
			}
		}
	}
}

// TestBodyArrivesLater: a body delivered after a body-less copy of its
// event (stored or pending) is kept.
func TestBodyArrivesLater(t *testing.T) {
	f := newFixture(t, 7)
	e2 := f.next(t, "two")
	e3 := f.next(t, "three")
	for _, m := range modes {
		st := store.NewMemory()
		in := ingest.New(st, m.opts)
		ingestAll(t, in, wire(f.g, e2.WithoutBody()))
		ingestAll(t, in, wire(e3.WithoutBody())) // stored body-less
		res := ingestAll(t, in, wire(e2, e3))
		if len(res.Accepted) != 0 || res.Duplicates != 2 {
			t.Fatalf("%s: %+v", m.name, res)
		}
		for _, e := range []*event.Event{e2, e3} {
			got, err := st.Get(context.Background(), e.ID())
			if err != nil || !got.HasBody() {
				t.Fatalf("%s: stored %s has no body (%v)", m.name, e.ID().Short(), err)
			}
		}
		// Pending: e3 waits body-less, then comes with its body, then its
		// predecessor arrives.
		st = store.NewMemory()
		in = ingest.New(st, m.opts)
		ingestAll(t, in, wire(f.g))
		ingestAll(t, in, wire(e3.WithoutBody()))
		ingestAll(t, in, wire(e3))
		ingestAll(t, in, wire(e2))
		if got, err := st.Get(context.Background(), e3.ID()); err != nil || !got.HasBody() {
			t.Fatalf("%s: pending event lost the body delivered later (%v)", m.name, err)
		}
	}
}

// TestManyForksLinearEvidence: an author signing n different events at one
// seq yields n-1 evidence records, not n(n-1)/2.
func TestManyForksLinearEvidence(t *testing.T) {
	f := newFixture(t, 8)
	var forks []*event.Event
	for i := range 40 {
		e, err := event.Sign(f.key, event.Draft{Pursuance: f.g.ID(), Seq: 2, Backlink: f.g.ID(), Parents: []event.ID{f.g.ID()},
			Lamport: 2, Kind: event.KindTaskComment, Time: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		forks = append(forks, e)
	}
	st := store.NewMemory()
	in := ingest.New(st, ingest.Options{})
	ingestAll(t, in, wire(f.g))
	ingestAll(t, in, wire(forks[:25]...))
	ingestAll(t, in, wire(forks[25:]...))
	ev, err := st.Evidence(context.Background(), f.g.ID())
	if err != nil || len(ev) != 39 {
		t.Fatalf("%d evidence records (%v), want 39", len(ev), err)
	}
	if from := event.ForkedFrom(ev); from[f.key.Public()] != 2 {
		t.Fatalf("ForkedFrom = %v", from)
	}
}

// countingStore counts VersionVector calls.
type countingStore struct {
	store.Store
	vv int
}

func (c *countingStore) VersionVector(ctx context.Context, p event.ID) (map[identity.PublicKey]uint64, error) {
	c.vv++
	return c.Store.VersionVector(ctx, p)
}

// TestNewPursuanceLooksUpTipsOnce: a batch founding a pursuance asks the
// store for its chain tips once, not once per event.
func TestNewPursuanceLooksUpTipsOnce(t *testing.T) {
	log := genLog(t, 500, 4)
	st := &countingStore{Store: store.NewMemory()}
	in := ingest.New(st, ingest.Options{})
	ingestAll(t, in, log.Events[:300])
	ingestAll(t, in, log.Events[300:])
	if st.vv > 1 {
		t.Fatalf("VersionVector called %d times", st.vv)
	}
}

// Two writers of one store (two processes taking turns with a home): an
// event at a seq the other writer stored is an equivocation once the
// Ingester reloads its chain tips, as the app does each time it takes the
// home back.
func TestReloadSeesAnotherWriter(t *testing.T) {
	f := newFixture(t, 4)
	e1 := f.next(t, "a")
	f.c.Last = &event.Ref{ID: f.g.ID(), Pursuance: f.g.ID(), Author: f.key.Public(), Seq: 1, Lamport: 1}
	e1b := f.next(t, "b") // seq 2 too
	st := store.NewMemory()
	mine, other := ingest.New(st, ingest.Options{}), ingest.New(st, ingest.Options{})
	ingestAll(t, mine, wire(f.g)) // mine knows the chain's tip: 1
	ingestAll(t, other, wire(e1))
	mine.Reload()
	res := ingestAll(t, mine, wire(e1b))
	if len(res.Equivocations) != 1 {
		t.Fatalf("the fork with the other writer's event went unnoticed: %+v", res)
	}
}
