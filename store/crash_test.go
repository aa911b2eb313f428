package store_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/store"
)

// The crash test runs this test binary again as a child that writes to a
// store until it is killed. These variables tell the child what to do.
const (
	crashEnvPath = "PURSUANCE_STORE_CRASH_CHILD" // the database file
	crashEnvSeed = "PURSUANCE_STORE_CRASH_SEED"  // randomness of batch sizes
)

// crashAuthors is the number of authors the child writes as.
const crashAuthors = 4

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnvPath); path != "" {
		crashChild(path)
		return
	}
	if path := os.Getenv(migrateEnvPath); path != "" {
		migrateChild(path)
		return
	}
	os.Exit(m.Run())
}

// crashChild opens the store at path, resumes the log it holds (or founds
// it), and puts batches of events until killed. After each Put returns nil
// it writes one line to stdout naming what that Put stored:
//
//	ack e=<id> e=<id> ... [q=<author>,<seq>,<a>,<b>] .
//
// The final "." lets the parent tell a whole line from one cut short by
// the kill.
func crashChild(path string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashEnvSeed), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 2))
	ctx := context.Background()
	s, err := store.OpenSQLite(path, testKey)
	if err != nil {
		fail(err)
	}
	if seed%2 == 0 {
		// Checkpoint in the background every few frames and let the
		// writer finish one itself past 1 MiB of WAL, so that kills
		// land during both.
		store.SetCheckpointing(s, 8, 64)
	}
	l, first, err := resumeCrashLog(ctx, s)
	if err != nil {
		fail(err)
	}
	out := bufio.NewWriter(os.Stdout)
	deadline := time.Now().Add(30 * time.Second) // in case no one kills us
	for b := 0; time.Now().Before(deadline); b++ {
		events := append(first, l.batch(1+rng.IntN(400))...)
		first = nil
		var evidence []event.Equivocation
		if b%5 == 4 && len(events) >= 2 {
			// Not a real equivocation, which the store does not check,
			// but a record to find again after the crash.
			x, y := events[0], events[len(events)-1]
			if x.ID().Compare(y.ID()) > 0 {
				x, y = y, x
			}
			evidence = append(evidence, event.Equivocation{Pursuance: l.pid, Author: x.Author, Seq: uint64(b), A: x.ID(), B: y.ID()})
		}
		if err := s.Put(ctx, events, evidence); err != nil {
			fail(err)
		}
		out.WriteString("ack")
		for _, e := range events {
			id := e.ID()
			out.WriteString(" e=" + hex.EncodeToString(id[:]))
		}
		for _, q := range evidence {
			fmt.Fprintf(out, " q=%x,%d,%x,%x", q.Author[:], q.Seq, q.A[:], q.B[:])
		}
		out.WriteString(" .\n")
		if err := out.Flush(); err != nil {
			fail(err)
		}
	}
	fail(errors.New("not killed in time"))
}

// resumeCrashLog continues the log in s, or starts one if s is empty; first
// is what must be put before the log's next events (the genesis event, for
// a new log).
func resumeCrashLog(ctx context.Context, s store.Store) (l *fastLog, first []*event.Event, err error) {
	const seed = 7
	ps, err := s.Pursuances(ctx)
	if err != nil || len(ps) == 0 {
		l, g := newFastLog(seed, crashAuthors)
		return l, []*event.Event{g}, err
	}
	pid := ps[0]
	vv, err := s.VersionVector(ctx, pid)
	if err != nil {
		return nil, nil, err
	}
	last := map[identity.PublicKey]event.Ref{}
	for a, seq := range vv {
		es, err := s.BySeq(ctx, pid, a, seq)
		if err != nil {
			return nil, nil, err
		}
		if len(es) != 1 {
			return nil, nil, fmt.Errorf("%d events at the tip of a chain", len(es))
		}
		last[a] = es[0].Ref()
	}
	heads, err := s.Heads(ctx, pid)
	if err != nil {
		return nil, nil, err
	}
	refs, err := s.Refs(ctx, heads)
	if err != nil {
		return nil, nil, err
	}
	var hr []event.Ref
	for _, id := range heads {
		hr = append(hr, refs[id])
	}
	return resumeFastLog(seed, crashAuthors, pid, last, hr), nil, nil
}

// ack is one whole line from the child.
type ack struct {
	events   []event.ID
	evidence []event.Equivocation
}

func parseAck(line string) (ack, bool) {
	f := strings.Fields(line)
	if !strings.HasSuffix(line, "\n") || len(f) < 2 || f[0] != "ack" || f[len(f)-1] != "." {
		return ack{}, false // cut short by the kill
	}
	var a ack
	for _, w := range f[1 : len(f)-1] {
		switch {
		case strings.HasPrefix(w, "e="):
			var id event.ID
			b, err := hex.DecodeString(w[2:])
			if err != nil || len(b) != len(id) {
				return ack{}, false
			}
			copy(id[:], b)
			a.events = append(a.events, id)
		case strings.HasPrefix(w, "q="):
			var q event.Equivocation
			var author, x, y []byte
			p := strings.Split(w[2:], ",")
			if len(p) != 4 {
				return ack{}, false
			}
			var err error
			if author, err = hex.DecodeString(p[0]); err != nil {
				return ack{}, false
			}
			if q.Seq, err = strconv.ParseUint(p[1], 10, 64); err != nil {
				return ack{}, false
			}
			if x, err = hex.DecodeString(p[2]); err != nil {
				return ack{}, false
			}
			if y, err = hex.DecodeString(p[3]); err != nil {
				return ack{}, false
			}
			copy(q.Author[:], author)
			copy(q.A[:], x)
			copy(q.B[:], y)
			a.evidence = append(a.evidence, q)
		default:
			return ack{}, false
		}
	}
	return a, true
}

// TestCrashRecovery kills writing processes at random moments, on the same
// database file round after round, so that later rounds also recover from
// earlier crashes. Then the store must open cleanly and hold everything a
// Put acknowledged, consistently.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes for several seconds; skipped in -short mode")
	}
	const rounds = 10
	path := filepath.Join(t.TempDir(), "crash.db")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	acked := map[event.ID]bool{}
	var ackedEvidence []event.Equivocation
	var batches int
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			crashEnvPath+"="+path,
			crashEnvSeed+"="+strconv.FormatUint(rng.Uint64(), 10))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			r := bufio.NewReaderSize(stdout, 1<<16)
			for {
				line, err := r.ReadString('\n')
				if line != "" {
					lines <- line
				}
				if err != nil {
					return
				}
			}
		}()
		// Most rounds kill the child while it writes; every third kills it
		// early, perhaps while it opens and recovers the database.
		var killAt <-chan time.Time
		if round%3 == 2 {
			killAt = time.After(time.Duration(rng.Int64N(int64(60 * time.Millisecond))))
		}
		n := 0
		collect := func(line string) {
			a, ok := parseAck(line)
			if !ok {
				return
			}
			n++
			for _, id := range a.events {
				acked[id] = true
			}
			ackedEvidence = append(ackedEvidence, a.evidence...)
		}
	wait:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break wait // the child ended by itself: Wait reports why
				}
				collect(line)
				if n == 1 && killAt == nil {
					killAt = time.After(time.Duration(rng.Int64N(int64(400 * time.Millisecond))))
				}
			case <-killAt:
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				break wait
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatal("child wrote nothing for 20s")
			}
		}
		for line := range lines { // whatever it wrote before dying
			collect(line)
		}
		err = cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, not by our kill; stderr:\n%s", round, err, stderr.Bytes())
		}
		batches += n
		t.Logf("round %d: %d batches acknowledged before the kill", round, n)
	}
	if len(acked) == 0 {
		t.Fatal("no Put was acknowledged in any round")
	}
	verifyCrashStore(t, path, acked, ackedEvidence)
	t.Logf("%d rounds, %d batches, %d events acknowledged", rounds, batches, len(acked))
}

// verifyCrashStore reopens the store after the crashes and checks it.
func verifyCrashStore(t *testing.T, path string, acked map[event.ID]bool, ackedEvidence []event.Equivocation) {
	ctx := context.Background()
	s := openSQLite(t, path)
	defer s.Close()
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Pursuances(ctx)
	if err != nil || len(ps) != 1 {
		t.Fatalf("Pursuances = %v, %v; want one", ps, err)
	}
	pid := ps[0]

	// Every stored event rebuilds from its bytes to its ID, and comes after
	// its backlink and parents.
	seen := map[event.ID]*event.Event{}
	named := map[event.ID]bool{}
	vv := map[identity.PublicKey]uint64{}
	err = s.Iterate(ctx, pid, func(e *event.Event) error {
		d, err := event.Decode(e.Encode())
		if err != nil || d.ID() != e.ID() {
			return fmt.Errorf("stored event %s does not decode to itself: %v", e.ID().Short(), err)
		}
		if e.Seq > 1 && seen[e.Backlink] == nil {
			return fmt.Errorf("event %s visited before its backlink", e.ID().Short())
		}
		for _, p := range e.Parents {
			if seen[p] == nil {
				return fmt.Errorf("event %s visited before its parent %s", e.ID().Short(), p.Short())
			}
			named[p] = true
		}
		seen[e.ID()] = e
		vv[e.Author] = max(vv[e.Author], e.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for id := range acked {
		if seen[id] == nil {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events are lost", missing, len(acked))
	}
	refs, err := s.Refs(ctx, slices.Collect(func(yield func(event.ID) bool) {
		for id := range acked {
			if !yield(id) {
				return
			}
		}
	}))
	if err != nil || len(refs) != len(acked) {
		t.Fatalf("Refs found %d of %d acknowledged events: %v", len(refs), len(acked), err)
	}
	for id := range acked {
		if e, err := s.Get(ctx, id); err != nil || e.ID() != id || !e.HasBody() {
			t.Fatalf("Get(%s) = %v; want the event with its body", id.Short(), err)
		}
	}

	if n, err := s.Count(ctx, pid); err != nil || n != len(seen) {
		t.Errorf("Count = %d, %v; Iterate visited %d", n, err, len(seen))
	}
	var wantHeads []event.ID
	for id := range seen {
		if !named[id] {
			wantHeads = append(wantHeads, id)
		}
	}
	slices.SortFunc(wantHeads, event.ID.Compare)
	if got, err := s.Heads(ctx, pid); err != nil || !slices.Equal(got, wantHeads) {
		t.Errorf("Heads = %d IDs, %v; want the %d events no stored event names", len(got), err, len(wantHeads))
	}
	if got, err := s.VersionVector(ctx, pid); err != nil || !equalSeqs(got, vv) {
		t.Errorf("VersionVector = %v, %v; want %v", got, err, vv)
	}
	evidence, err := s.Evidence(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range ackedEvidence {
		q.Pursuance = pid
		if !slices.Contains(evidence, q) {
			t.Errorf("acknowledged evidence %+v is lost", q)
		}
	}
}

func equalSeqs(a, b map[identity.PublicKey]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
