package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/store"
	"github.com/pursuance/pursuance/store/storetest"
)

// testKey is the key the tests' stores are encrypted under.
var testKey = store.Key{'t', 'e', 's', 't'}

func openSQLite(t testing.TB, path string) *store.SQLite {
	t.Helper()
	s, err := store.OpenSQLite(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openTemp(t *testing.T) store.Store {
	return openSQLite(t, filepath.Join(t.TempDir(), "store.db"))
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, openTemp)
}

// TestSQLiteTwoTierIndex runs the suite's cases with the ID index moving
// its recent tier to a new run every few events and merging every fourth
// run of a level, so that lookups, duplicates and bodies are checked across
// both tiers, across several runs and levels, and across merges; then
// holds such a store to the in-memory one and to the model over random
// deliveries (Equivalent, which also does what the suite's model test
// does, so that is not run a second time).
func TestSQLiteTwoTierIndex(t *testing.T) {
	open := func(t *testing.T) store.Store {
		s := openSQLite(t, filepath.Join(t.TempDir(), "store.db"))
		store.SetMergeThreshold(s, 3)
		store.SetRunsPerLevel(s, 4)
		return s
	}
	storetest.RunCases(t, open)
	storetest.Equivalent(t, func(*testing.T) store.Store { return store.NewMemory() }, open)
}

// TestSQLiteIndexRuns puts a log through the ID index with small runs that
// merge over several levels, and checks after every batch that each event
// stored is found by ID, that each entry of the main tier is in exactly one
// run of the size the runs table says, and that every level holds fewer
// runs than merge one.
func TestSQLiteIndexRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	l, g := newFastLog(6, 4)
	events := append([]*event.Event{g}, l.batch(1999)...)
	s := openSQLite(t, path)
	defer s.Close()
	store.SetMergeThreshold(s, 10)
	store.SetRunsPerLevel(s, 3)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	maxLevel := 0
	for lo := 0; lo < len(events); lo += 37 {
		hi := min(lo+37, len(events))
		putAll(t, s, events[lo:hi], 37)
		if lo%(37*18) == 0 || hi == len(events) {
			checkRefs(t, s, events[:hi], events[hi:])
		}
		rows, err := db.Query(`SELECT r.level, r.size, (SELECT count(*) FROM prefixes p WHERE p.run = r.run) FROM runs r`)
		if err != nil {
			t.Fatal(err)
		}
		perLevel := map[int]int{}
		total := 0
		for rows.Next() {
			var level, size, count int
			if err := rows.Scan(&level, &size, &count); err != nil {
				t.Fatal(err)
			}
			if size != count {
				t.Fatalf("after %d events: a run of level %d says %d entries and has %d", hi, level, size, count)
			}
			perLevel[level]++
			total += size
			maxLevel = max(maxLevel, level)
		}
		rows.Close()
		for level, n := range perLevel {
			if n >= 3 {
				t.Fatalf("after %d events: level %d holds %d runs", hi, level, n)
			}
		}
		var all, recent int
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM prefixes), (SELECT count(*) FROM prefixes_recent)`).Scan(&all, &recent); err != nil {
			t.Fatal(err)
		}
		if all != total || all+recent != hi {
			t.Fatalf("after %d events: %d entries in runs listed with %d, %d recent", hi, all, total, recent)
		}
	}
	if maxLevel < 3 {
		t.Fatalf("the runs reached level %d only; the test means to merge several levels", maxLevel)
	}
	if err := s.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// putAll puts events in batches of size n.
func putAll(t testing.TB, s store.Store, events []*event.Event, n int) {
	t.Helper()
	for lo := 0; lo < len(events); lo += n {
		if err := s.Put(context.Background(), events[lo:min(lo+n, len(events))], nil); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot is everything a store answers about one pursuance.
type snapshot struct {
	count int
	heads []event.ID
	vv    map[string]uint64
	order []event.ID
}

func snap(t testing.TB, s store.Store, pid event.ID) snapshot {
	t.Helper()
	ctx := context.Background()
	var sn snapshot
	var err error
	if sn.count, err = s.Count(ctx, pid); err != nil {
		t.Fatal(err)
	}
	if sn.heads, err = s.Heads(ctx, pid); err != nil {
		t.Fatal(err)
	}
	v, err := s.VersionVector(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	sn.vv = map[string]uint64{}
	for k, seq := range v {
		sn.vv[k.String()] = seq
	}
	if err := s.Iterate(ctx, pid, func(e *event.Event) error {
		sn.order = append(sn.order, e.ID())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return sn
}

func (a snapshot) equal(b snapshot) bool {
	if a.count != b.count || !slices.Equal(a.heads, b.heads) || !slices.Equal(a.order, b.order) || len(a.vv) != len(b.vv) {
		return false
	}
	for k, v := range a.vv {
		if b.vv[k] != v {
			return false
		}
	}
	return true
}

func TestSQLiteReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	l, g := newFastLog(1, 5)
	events := append([]*event.Event{g}, l.batch(4999)...)
	mem := store.NewMemory()
	defer mem.Close()
	s := openSQLite(t, path)
	putAll(t, s, events, 700)
	putAll(t, mem, events, 5000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSQLite(t, path)
	defer s.Close()
	if got, want := snap(t, s, l.pid), snap(t, mem, l.pid); !got.equal(want) {
		t.Fatalf("reopened store differs from memory: count %d vs %d, heads %d vs %d", got.count, want.count, len(got.heads), len(want.heads))
	}
	// Writing after a reopen finds the pursuance's existing row.
	more := l.batch(300)
	putAll(t, s, more, 100)
	putAll(t, mem, more, 100)
	if got, want := snap(t, s, l.pid), snap(t, mem, l.pid); !got.equal(want) {
		t.Fatal("store differs from memory after writing to the reopened store")
	}
	if err := s.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteTwoWriters: two handles on one file (two processes, say a node
// and a command run beside it) take turns writing, with overlapping
// batches and ID-index merges; each sees the other's commits, stores no
// duplicate, and ends equal to a single in-memory store.
func TestSQLiteTwoWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	a, b := openSQLite(t, path), openSQLite(t, path)
	defer a.Close()
	defer b.Close()
	store.SetMergeThreshold(a, 50)
	store.SetMergeThreshold(b, 70)
	mem := store.NewMemory()
	defer mem.Close()
	l, g := newFastLog(9, 4)
	events := append([]*event.Event{g}, l.batch(999)...)
	putAll(t, mem, events, 1000)
	for lo, turn := 0, 0; lo < len(events); turn++ {
		hi := min(lo+37, len(events))
		w := a
		if turn%2 == 1 {
			w = b
		}
		// Each batch repeats the last ten events of the one before.
		putAll(t, w, events[max(lo-10, 0):hi], 1000)
		lo = hi
	}
	for _, s := range []store.Store{a, b} {
		if got, want := snap(t, s, l.pid), snap(t, mem, l.pid); !got.equal(want) {
			t.Fatalf("count %d vs %d, heads %d vs %d", got.count, want.count, len(got.heads), len(want.heads))
		}
	}
	if err := a.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// tripCtx is a context that cancels itself on the n-th call of Err, so a
// test can cancel a Put at a chosen point of its work.
type tripCtx struct {
	context.Context
	mu    sync.Mutex
	calls int
	trip  int
	done  chan struct{}
}

func newTripCtx(trip int) *tripCtx {
	return &tripCtx{Context: context.Background(), trip: trip, done: make(chan struct{})}
}

func (c *tripCtx) Done() <-chan struct{} { return c.done }

func (c *tripCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls == c.trip {
		close(c.done)
	}
	if c.calls >= c.trip {
		return context.Canceled
	}
	return nil
}

// TestSQLiteCancelMidway cancels Puts part way through their transaction,
// after some events are written to it: none may be stored, and the writing
// connection must be left ready for the next Put.
func TestSQLiteCancelMidway(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "store.db"))
	defer s.Close()
	l, g := newFastLog(2, 3)
	putAll(t, s, []*event.Event{g}, 1)
	before := snap(t, s, l.pid)
	events := l.batch(1000)
	ev := event.Equivocation{Pursuance: l.pid, Author: g.Author, Seq: 9, A: events[0].ID(), B: events[1].ID()}
	// Count the checks a whole Put of this size makes, in another store,
	// so as to trip the last one too, just before the commit.
	other := openSQLite(t, filepath.Join(t.TempDir(), "other.db"))
	defer other.Close()
	counter := newTripCtx(1 << 30)
	if err := other.Put(counter, append([]*event.Event{g}, events[:999]...), []event.Equivocation{ev}); err != nil {
		t.Fatal(err)
	}
	for _, trip := range []int{2, 4, 10, 500, counter.calls} {
		ctx := newTripCtx(trip)
		err := s.Put(ctx, events, []event.Equivocation{ev})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put tripped at check %d: %v, want context.Canceled", trip, err)
		}
		if ctx.calls < trip {
			t.Fatalf("Put checked ctx %d times, fewer than the %d the test needs", ctx.calls, trip)
		}
		if got := snap(t, s, l.pid); !got.equal(before) {
			t.Fatalf("Put cancelled at check %d left %d events", trip, got.count-before.count)
		}
		if q, _ := s.Evidence(context.Background(), l.pid); len(q) != 0 {
			t.Fatalf("Put cancelled at check %d left evidence", trip)
		}
	}
	putAll(t, s, events, 1000)
	if n := snap(t, s, l.pid).count; n != 1001 {
		t.Fatalf("Count = %d after the uncancelled Put, want 1001", n)
	}
}

func TestSQLiteFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "store.db")
	s := openSQLite(t, path)
	defer s.Close()
	_, g := newFastLog(3, 1)
	putAll(t, s, []*event.Event{g}, 1)
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{filepath.Dir(dir), 0o700}, {dir, 0o700}, {path, 0o600}, {path + "-wal", 0o600}, {path + "-shm", 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.mode {
			t.Errorf("%s has mode %v, want %v", c.path, got, c.mode)
		}
	}
}

func TestSQLiteOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir#1?x=%20", "store 100%.db")
	s := openSQLite(t, path)
	_, g := newFastLog(4, 1)
	putAll(t, s, []*event.Event{g}, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
	s = openSQLite(t, path)
	defer s.Close()
	if _, err := s.Get(context.Background(), g.ID()); err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteRefusesOtherDatabases(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, setup, want string
	}{
		{"newer.db", "", "newer"},
		{"other-app.db", "PRAGMA application_id = 42", "not a pursuance store"},
		{"other-tables.db", "CREATE TABLE events (x)", "already exists"},
	} {
		path := filepath.Join(dir, c.name)
		if c.setup == "" {
			s := openSQLite(t, path)
			s.Close()
			c.setup = "PRAGMA user_version = 99"
		}
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(c.setup); err != nil {
			t.Fatal(err)
		}
		db.Close()
		s, err := store.OpenSQLite(path, testKey)
		if err == nil {
			s.Close()
			t.Errorf("%s: opened, want an error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

// TestSQLitePutDuringIterate checks that an Iterate holds no lock a Put
// needs: a Put from inside the callback, and one from another goroutine
// while the callback waits, both finish, and neither's events are visited.
func TestSQLitePutDuringIterate(t *testing.T) {
	ctx := context.Background()
	s := openSQLite(t, filepath.Join(t.TempDir(), "store.db"))
	defer s.Close()
	l, g := newFastLog(5, 2)
	first := append([]*event.Event{g}, l.batch(99)...)
	putAll(t, s, first, 100)
	inside, outside := l.batch(10), l.batch(10)
	var visited []event.ID
	err := s.Iterate(ctx, l.pid, func(e *event.Event) error {
		visited = append(visited, e.ID())
		if len(visited) != 50 {
			return nil
		}
		if err := s.Put(ctx, inside, nil); err != nil {
			return err
		}
		done := make(chan error)
		go func() { done <- s.Put(ctx, outside, nil) }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("a Put from another goroutine waited for Iterate")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(visited) != 100 {
		t.Errorf("Iterate visited %d events, want the 100 stored when it began", len(visited))
	}
	if n := snap(t, s, l.pid).count; n != 120 {
		t.Errorf("Count = %d, want 120", n)
	}
}

// TestSQLiteCancelRace cancels many small Puts at random moments, some
// landing between a statement's success and the driver's return: each
// must store all or nothing, and the next Put must work.
func TestSQLiteCancelRace(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "store.db"))
	defer s.Close()
	l, g := newFastLog(6, 3)
	putAll(t, s, []*event.Event{g}, 1)
	rng := rand.New(rand.NewPCG(6, 6))
	want := 1
	cancelled := 0
	all := []*event.Event{g}
	for range 300 {
		events := l.batch(20)
		all = append(all, events...)
		want += len(events)
		ctx, cancel := context.WithCancel(context.Background())
		timer := time.AfterFunc(time.Duration(rng.IntN(300))*time.Microsecond, cancel)
		err := s.Put(ctx, events, nil)
		timer.Stop()
		cancel()
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Put: %v, want context.Canceled", err)
			}
			cancelled++
			// Neither the count nor any event of the batch may remain.
			if n, err := s.Count(context.Background(), l.pid); err != nil || n != want-len(events) {
				t.Fatalf("cancelled Put left the store with %d events (%v), want %d", n, err, want-len(events))
			}
			if refs := refsOf(t, s, events); len(refs) != 0 {
				t.Fatalf("cancelled Put left %d of its events", len(refs))
			}
			putAll(t, s, events, len(events)) // must not find a transaction still open
		}
	}
	mem := store.NewMemory()
	defer mem.Close()
	putAll(t, mem, all, len(all))
	if got, want := snap(t, s, l.pid), snap(t, mem, l.pid); !got.equal(want) {
		t.Fatalf("after the Puts, the store holds %d events, %d heads; want %d, %d", got.count, len(got.heads), want.count, len(want.heads))
	}
	t.Logf("%d of 300 Puts cancelled", cancelled)
}

// refsOf returns the refs s finds of events.
func refsOf(t *testing.T, s store.Store, events []*event.Event) map[event.ID]event.Ref {
	t.Helper()
	ids := make([]event.ID, len(events))
	for i, e := range events {
		ids[i] = e.ID()
	}
	refs, err := s.Refs(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	return refs
}

// checkRefs checks that s finds exactly the stored events among ids, each
// with its own ref.
func checkRefs(t *testing.T, s store.Store, stored, missing []*event.Event) {
	t.Helper()
	ctx := context.Background()
	var ids []event.ID
	for _, e := range slices.Concat(stored, missing) {
		ids = append(ids, e.ID())
	}
	refs, err := s.Refs(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != len(stored) {
		t.Fatalf("Refs found %d events, want %d", len(refs), len(stored))
	}
	for _, e := range stored {
		if refs[e.ID()] != e.Ref() {
			t.Fatalf("Refs(%s) = %+v, want %+v", e.ID().Short(), refs[e.ID()], e.Ref())
		}
		got, err := s.Get(ctx, e.ID())
		if err != nil || got.ID() != e.ID() {
			t.Fatalf("Get(%s) = %v, %v", e.ID().Short(), got, err)
		}
	}
	for _, e := range missing {
		if got, err := s.Get(ctx, e.ID()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(%s) of an event not stored = %v, %v", e.ID().Short(), got, err)
		}
	}
}

// TestSQLiteIDPrefixCollision: the ID index maps 8-byte ID prefixes to
// rows, so events can share a prefix (an author could grind for one). Fake
// index entries make each event yet to be stored share its prefix with a
// stored one, in both tiers; lookups must still find only the events asked
// for, and Put must store the new ones.
func TestSQLiteIDPrefixCollision(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	l, g := newFastLog(3, 3)
	events := append([]*event.Event{g}, l.batch(199)...)
	old, fresh := events[:100], events[100:]
	s := openSQLite(t, path)
	putAll(t, s, old, 30)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range fresh {
		b := store.BlindID(s, e.ID())
		// Rows 1 to 100 hold the old events.
		if _, err := db.Exec(`INSERT INTO prefixes_recent (p, n) VALUES (?1, ?2)`, b[:8], 1+i%100); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO prefixes (run, p, n) VALUES (1, ?1, ?2)`, b[:8], 1+(i+37)%100); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO runs (run, level, size) VALUES (1, 0, ?1)`, len(fresh)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = openSQLite(t, path)
	defer s.Close()
	store.SetMergeThreshold(s, 150) // the fake entries count too
	store.SetRunsPerLevel(s, 2)     // and are merged with a new run
	checkRefs(t, s, nil, fresh)
	checkRefs(t, s, old, fresh)
	putAll(t, s, fresh[:60], 60)
	checkRefs(t, s, events[:160], fresh[60:])
	// Again, with duplicates, which Put looks up by ID.
	putAll(t, s, events, 70)
	checkRefs(t, s, events, nil)
	mem := store.NewMemory()
	defer mem.Close()
	putAll(t, mem, events, 200)
	if got, want := snap(t, s, l.pid), snap(t, mem, l.pid); !got.equal(want) {
		t.Fatal("store differs from memory")
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteMigrateLegacy opens stores of each clear schema (versions 1
// to 3, written as this package's earlier versions did, with body-less
// events and evidence) under a key: each must become an encrypted store
// holding the same events, heads, version vector, counts and evidence,
// with nothing of the clear file left beside it, and no event ID, author
// key or header readable in any file of the directory.
func TestSQLiteMigrateLegacy(t *testing.T) {
	ctx := context.Background()
	for version := 1; version <= 3; version++ {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "store.db")
			l, g := newFastLog(uint64(40+version), 4)
			events := append([]*event.Event{g}, l.batch(599)...)
			// Some events stored without their bodies, as a member may
			// hold them.
			stored := slices.Clone(events)
			for i := 7; i < len(stored); i += 13 {
				stored[i] = stored[i].WithoutBody()
			}
			ev := []event.Equivocation{{Pursuance: l.pid, Author: g.Author, Seq: 3, A: events[1].ID(), B: events[2].ID()}}
			if err := store.WriteLegacy(path, version, stored, ev); err != nil {
				t.Fatal(err)
			}
			needles := storeNeedles(events)
			if hits := scanDir(t, dir, needles); len(hits) == 0 {
				t.Fatal("the legacy store shows nothing in the clear: the scan finds nothing")
			}
			s := openSQLite(t, path)
			defer s.Close()
			mem := store.NewMemory()
			defer mem.Close()
			putAll(t, mem, stored, 5000)
			if err := mem.Put(ctx, nil, ev); err != nil {
				t.Fatal(err)
			}
			if got, want := snap(t, s, l.pid), snap(t, mem, l.pid); !got.equal(want) {
				t.Fatalf("migrated store differs from memory: count %d vs %d, heads %d vs %d", got.count, want.count, len(got.heads), len(want.heads))
			}
			if got, err := s.Evidence(ctx, l.pid); err != nil || !slices.Equal(got, ev) {
				t.Fatalf("Evidence = %v, %v; want %v", got, err, ev)
			}
			for i, e := range stored {
				got, err := s.Get(ctx, e.ID())
				if err != nil || got.HasBody() != e.HasBody() {
					t.Fatalf("event %d: Get = %v, %v; want it with body %v", i, got, err, e.HasBody())
				}
			}
			checkRefs(t, s, events, nil)
			// Bodies arrive for the body-less copies; more events come.
			more := l.batch(100)
			putAll(t, s, append(slices.Clone(events), more...), 400)
			putAll(t, mem, append(slices.Clone(events), more...), 400)
			if got, want := snap(t, s, l.pid), snap(t, mem, l.pid); !got.equal(want) {
				t.Fatal("migrated store differs from memory after more events")
			}
			for _, e := range events {
				if got, err := s.Get(ctx, e.ID()); err != nil || !got.HasBody() {
					t.Fatalf("Get(%s) = %v, %v; want its body added", e.ID().Short(), got, err)
				}
			}
			if err := s.IntegrityCheck(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if hits := scanDir(t, dir, storeNeedles(append(events, more...))); len(hits) > 0 {
				t.Fatalf("after migration, in the clear: %s", strings.Join(hits, "; "))
			}
			names := dirNames(t, dir)
			if !slices.Equal(names, []string{"store.db"}) {
				t.Fatalf("the directory holds %v, want store.db alone", names)
			}
		})
	}
}

// TestSQLiteWrongKey: a store opened under another key (another identity's
// home) fails with ErrWrongKey and is left as it was.
func TestSQLiteWrongKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLite(t, path)
	_, g := newFastLog(8, 1)
	putAll(t, s, []*event.Event{g}, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	other := testKey
	other[31] ^= 1
	if s, err := store.OpenSQLite(path, other); !errors.Is(err, store.ErrWrongKey) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("OpenSQLite under another key: %v, want ErrWrongKey", err)
	}
	s = openSQLite(t, path)
	defer s.Close()
	if _, err := s.Get(context.Background(), g.ID()); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteRowsBound: a sealed row opens only in its own row. Swapping
// two events' blobs, or two heads' boxes, makes reads fail as corrupt
// instead of returning one event for another.
func TestSQLiteRowsBound(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLite(t, path)
	l, g := newFastLog(9, 2)
	events := append([]*event.Event{g}, l.batch(9)...)
	putAll(t, s, events, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE events SET blob = (SELECT blob FROM events WHERE n = 3) WHERE n = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = openSQLite(t, path)
	defer s.Close()
	if e, err := s.Get(ctx, events[1].ID()); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Get of a row holding another row's blob = %v, %v; want an error saying the database is corrupt", e, err)
	}
	if _, err := s.Get(ctx, events[2].ID()); err != nil {
		t.Fatal(err)
	}
	if err := s.Iterate(ctx, l.pid, func(*event.Event) error { return nil }); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Iterate over the swapped row: %v, want an error saying the database is corrupt", err)
	}
}

// storeNeedles are what a store must not show in the clear: each event's
// ID, header bytes and signature, and each author's key.
func storeNeedles(events []*event.Event) map[string][]byte {
	out := map[string][]byte{}
	for i, e := range events {
		id := e.ID()
		out[fmt.Sprintf("ID of event %d", i)] = id[:]
		out[fmt.Sprintf("header of event %d", i)] = e.HeaderBytes()
		out[fmt.Sprintf("author %s", e.Author.Short())] = e.Author[:]
	}
	return out
}

// scanDir reads every file in dir and returns, for each needle found in
// one, where. Needles are at least 8 bytes long; the scan looks each
// position's 8 bytes up in a map, so it costs the same for any number of
// needles.
func scanDir(t *testing.T, dir string, needles map[string][]byte) []string {
	t.Helper()
	byPrefix := map[string][]string{}
	for what, n := range needles {
		if len(n) < 8 {
			t.Fatalf("needle %s is shorter than 8 bytes", what)
		}
		byPrefix[string(n[:8])] = append(byPrefix[string(n[:8])], what)
	}
	var hits []string
	for _, name := range dirNames(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+8 <= len(b); i++ {
			for _, what := range byPrefix[string(b[i:i+8])] {
				if bytes.HasPrefix(b[i:], needles[what]) {
					hits = append(hits, what+" in "+name)
				}
			}
		}
	}
	slices.Sort(hits)
	return slices.Compact(hits)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestSQLiteWALBounded: checkpoints run in the background, but the WAL
// must not grow past its cap even when they do not keep up (here, when
// they never run), and Close leaves no WAL behind.
func TestSQLiteWALBounded(t *testing.T) {
	for _, c := range []struct {
		name  string
		every int
	}{
		{"background", 8},
		{"writer-only", 1 << 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			l, g := newFastLog(5, 8)
			events := append([]*event.Event{g}, l.batch(19999)...)
			s := openSQLite(t, path)
			const capFrames = 64 // 1 MiB
			store.SetCheckpointing(s, c.every, capFrames)
			var size int64
			for lo := 0; lo < len(events); lo += 500 {
				if err := s.Put(context.Background(), events[lo:lo+500], nil); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(path + "-wal")
				if err != nil {
					t.Fatal(err)
				}
				size = fi.Size() // the WAL file keeps its longest length
			}
			// The cap, plus the transaction that passed it.
			if size > 4<<20 {
				t.Errorf("WAL reached %d bytes, want at most about 1 MiB", size)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("WAL left after Close: %v", err)
			}
		})
	}
}
