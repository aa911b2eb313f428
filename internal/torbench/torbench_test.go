package torbench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/bench"
	"github.com/pursuance/pursuance/internal/tortest"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// benchEnv, set to 1, runs the full measurement (TestTorBench).
const benchEnv = "PURSUANCE_TOR_BENCH"

// deliveryTimeout bounds one task's delivery: far above the 2 s target,
// so that only a broken path (the task never arrives) fails the smoke
// test, never a slow machine.
const deliveryTimeout = time.Minute

// sizes is how much a run measures.
type sizes struct {
	events       int // in the catch-up's log
	catchupRuns  int // of each transport, alternated
	deliveries   int // tasks delivered on each transport
	starts       int // starts of up with and without Tor, alternated
	warmDelivery int // deliveries before those timed (keys settle)
}

// TestTorSmoke runs every measurement small, as CI does: catch-up of 500
// events (every one verified and stored), 10 task deliveries and one
// start of `up --tor`, over Tor and loopback. It fails if a path breaks,
// not on timings (the machine may be loaded).
func TestTorSmoke(t *testing.T) {
	tortest.Skip(t)
	r := measure(t, sizes{events: 500, catchupRuns: 1, deliveries: 10, starts: 1, warmDelivery: 1})
	t.Log("\n" + r.table())
}

// TestTorBench is the measurement of docs/benchmarks.md, "Tor (private
// network)": PURSUANCE_TOR_BENCH=1 go test ./internal/torbench -run
// TestTorBench -v -timeout 30m.
func TestTorBench(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skipf("the full Tor measurement takes minutes: set %s=1 (docs/benchmarks.md)", benchEnv)
	}
	tortest.Skip(t)
	r := measure(t, sizes{events: 10000, catchupRuns: 3, deliveries: 100, starts: 5, warmDelivery: 3})
	t.Log("\n" + r.table())
}

// results are what measure measured, each transport beside the other.
type results struct {
	load                  string
	events                int
	catchupLo, catchupTor []*bench.CatchupReport // Tor: app.ParallelReads circuits, as a sync reads
	catchupTor1           []*bench.CatchupReport // Tor on one circuit, one page at a time (before)
	deliverLo, deliverTor []time.Duration
	upLo, upTor           []time.Duration // start to reachable
	upLoReady, upTorReady []time.Duration // start to the line saying so
	relayStart, torsStart time.Duration
	networkUp             time.Duration
}

// measure runs the three measurements on both transports in one process:
// the relay is one `pursuance relay --onion` serving both its loopback
// port and its onion service.
func measure(t *testing.T, sz sizes) *results {
	r := &results{load: loadavg(), events: sz.events}
	start := time.Now()
	n := tortest.Shared(t)
	r.networkUp = time.Since(start)
	start = time.Now()
	rl := startOnionRelay(t, n)
	r.relayStart = time.Since(start)
	start = time.Now()
	var torA, torB = memberTor(t, n), memberTor(t, n)
	r.torsStart = time.Since(start)
	dialA, dialB := torDial(torA), torDial(torB)
	ctx, cancel := context.WithTimeout(context.Background(), reachTimeout)
	for _, d := range []app.DialFunc{dialA, dialB} {
		if err := waitReachable(ctx, app.HTTPClient(d, "reach"), rl.Onion); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	t.Logf("network up in %s, relay --onion published in %s (%s, %s), members' tors in %s",
		r.networkUp.Round(time.Millisecond), r.relayStart.Round(time.Millisecond), rl.Loopback, rl.Onion, r.torsStart.Round(time.Millisecond))

	// 1. Catch-up, loopback and Tor alternated: in pages of a sync's
	// size; over Tor on one circuit a page at a time (as before parallel
	// reads), then as a sync reads an onion relay, app.ParallelReads
	// pages at once each on its own circuit.
	for i := range sz.catchupRuns {
		lo := catchup(t, sz.events, rl.Loopback, app.HTTPClient(nil, ""))
		tr1 := catchup(t, sz.events, rl.Onion, app.HTTPClient(dialA, fmt.Sprintf("catchup-one-%d", i)))
		var vias []*http.Client
		for k := range app.ParallelReads {
			vias = append(vias, app.HTTPClient(dialA, fmt.Sprintf("catchup-%d/read-%d", i, k)))
		}
		tr := catchup(t, sz.events, rl.Onion, vias...)
		r.catchupLo, r.catchupTor1, r.catchupTor = append(r.catchupLo, lo), append(r.catchupTor1, tr1), append(r.catchupTor, tr)
		t.Logf("catch-up %d: loopback %.2f s, Tor one circuit %.2f s (%.2f×), Tor %d circuits %.2f s (%.2f×)",
			i+1, lo.Seconds, tr1.Seconds, tr1.Seconds/lo.Seconds, len(vias), tr.Seconds, tr.Seconds/lo.Seconds)
	}

	// 2. Delivery of tasks from one member's node to another's.
	r.deliverLo = deliveries(t, rl.Loopback, nil, nil, sz)
	r.deliverTor = deliveries(t, rl.Onion, dialA, dialB, sz)

	// 3. From starting up to reachable, plain and --tor alternated.
	torrc := torrcFile(t, n)
	prober := app.HTTPClient(dialB, "prober")
	for range sz.starts {
		ready, reach := startUp(t, torrc, false, nil)
		r.upLoReady, r.upLo = append(r.upLoReady, ready), append(r.upLo, reach)
		ready, reach = startUp(t, torrc, true, prober)
		r.upTorReady, r.upTor = append(r.upTorReady, ready), append(r.upTor, reach)
		t.Logf("up: plain reachable in %s; --tor published in %s, reachable in %s",
			r.upLo[len(r.upLo)-1].Round(time.Millisecond), ready.Round(time.Millisecond), reach.Round(time.Millisecond))
	}
	return r
}

// catchup times a new member's catch-up of an n-event pursuance from the
// relay at url (already running) through hcs: bench.RunCatchupReaders,
// which appends the log untimed, then reads it in pages of a sync's size
// (with several clients, several pages at once), opens, verifies and
// stores it, and fails unless every event is stored.
func catchup(t *testing.T, n int, url string, hcs ...*http.Client) *bench.CatchupReport {
	t.Helper()
	spawn := func(context.Context) (string, int, func(), error) { return url, 0, func() {}, nil }
	rep, err := bench.RunCatchupReaders(context.Background(), n, t.TempDir(), spawn, nil, hcs, relay.DefaultLimit)
	if err != nil {
		t.Fatalf("catch-up from %s: %v", url, err)
	}
	if rep.Events != n {
		t.Fatalf("catch-up from %s: %d events of %d", url, rep.Events, n)
	}
	return rep
}

// deliveries measures tasks going from Alice's node to Bob's through the
// relay at url: Alice writes a task and syncs (a round of her node); Bob,
// following the pursuance's topic live as a node's watcher does, syncs
// at each envelope announced and has the task once it is in his store.
// Each delivery is timed from before Alice writes to Bob's store holding
// the event. A node (`up`) waits 150 ms after a change or a live kick
// before its round (its debounce): not included here, the same on both
// transports.
func deliveries(t *testing.T, url string, dialA, dialB app.DialFunc, sz sizes) []time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice, bob := openNode(t, "Alice", dialA), openNode(t, "Bob", dialB)
	c, err := charter.Template("desk")
	if err != nil {
		t.Fatal(err)
	}
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetRelays(ctx, p, []string{url}, nil, app.DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, app.DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	if res, err := bob.Join(ctx, code, app.DoOptions{}); err != nil || res.SyncErr != nil {
		t.Fatalf("bob's join through %s: %v %v", url, err, res.SyncErr)
	}
	mustSync(t, bob, p)
	mustSync(t, alice, p) // bob's join in: Alice's next task rotates the keys

	type want struct {
		id  event.ID
		t0  time.Time
		got chan time.Duration
	}
	var cur atomic.Pointer[want]
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	// Bob's node: it follows its watch targets live (re-read after each
	// round, as up's watcher does) and runs a round at each kick.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	following := map[string]context.CancelFunc{}
	follow := func() {
		ts, err := bob.WatchTargets(ctx, p, nil)
		if err != nil {
			t.Errorf("bob's watch targets: %v", err)
			return
		}
		for _, wt := range ts {
			key := wt.Relay + string(wt.Topic[:])
			if following[key] != nil {
				continue
			}
			fctx, fcancel := context.WithCancel(ctx)
			following[key] = fcancel
			wg.Go(func() {
				rc := relay.NewClient(wt.Relay, app.HTTPClient(dialB, wt.Isolation))
				cursor := wt.Cursor
				for fctx.Err() == nil {
					rc.Subscribe(fctx, wt.Topic, cursor, func(es []relay.Entry) error {
						if len(es) > 0 {
							cursor = es[len(es)-1].Cursor
							poke()
						}
						return nil
					})
					select {
					case <-fctx.Done():
					case <-time.After(reachRetry):
					}
				}
			})
		}
	}
	follow()
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
			if _, err := bob.Sync(ctx, p, app.SyncOptions{}); err != nil && ctx.Err() == nil {
				t.Errorf("bob's sync: %v", err)
			}
			follow()
			if w := cur.Load(); w != nil {
				if _, err := bob.Store().Get(ctx, w.id); err == nil && cur.CompareAndSwap(w, nil) {
					w.got <- time.Since(w.t0)
				}
			}
		}
	})

	var out []time.Duration
	for i := range sz.warmDelivery + sz.deliveries {
		t0 := time.Now()
		res, err := alice.Do(ctx, p, &state.TaskCreate{Title: fmt.Sprintf("Task %d", i), VisibleTo: []string{"researcher"}}, app.DoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w := &want{id: res.Event.ID(), t0: t0, got: make(chan time.Duration, 1)}
		cur.Store(w)
		mustSync(t, alice, p)
		select {
		case d := <-w.got:
			if i >= sz.warmDelivery {
				out = append(out, d)
			}
		case <-time.After(deliveryTimeout):
			t.Fatalf("task %d not delivered to bob through %s within %s", i, url, deliveryTimeout)
		}
	}
	return out
}

// mustSync runs a round of n's node for p, failing on any relay error.
func mustSync(t *testing.T, n *app.Node, p event.ID) {
	t.Helper()
	res, err := n.Sync(context.Background(), p, app.SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Relays {
		if r.Err != nil {
			t.Fatalf("sync with %s: %v", r.URL, r.Err)
		}
	}
}

// startUp runs `pursuance up` (with --tor when withTor) on a new home in
// this process and times, from its start, the line that says it is ready
// (plain: its relay's URL; --tor: its onion URL, printed once tor has
// uploaded the descriptor) and the first answer of its relay's /healthz:
// on loopback, or through prober (another member's tor) at the onion.
func startUp(t *testing.T, torrc string, withTor bool, prober *http.Client) (ready, reachable time.Duration) {
	t.Helper()
	if withTor {
		if err := tortest.CheckIsolated(); err != nil {
			t.Fatal(err)
		}
	}
	home, _ := newHome(t, "Node")
	args := []string{"up", "--listen", "127.0.0.1:0", "--relay-listen", "127.0.0.1:0", "--interval", "1h"}
	line := nodeRelayLine
	if withTor {
		args, line = append(args, "--tor"), onionLine
	}
	vars := map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": passphrase, "PURSUANCE_TORRC": torrc}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	t0 := time.Now()
	c := runCommand(t, vars, args...)
	defer c.stop(t)
	url, _, err := c.stderr.wait(ctx, line, 0)
	if err != nil {
		t.Fatalf("up: %v\n%s", err, c.stderr)
	}
	ready = time.Since(t0)
	hc := prober
	if hc == nil {
		hc = app.HTTPClient(nil, "")
	}
	if err := waitReachable(ctx, hc, url); err != nil {
		t.Fatalf("up: %v\n%s", err, c.stderr)
	}
	return ready, time.Since(t0)
}

// quantile is the nearest-rank q-quantile of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// table is the results as docs/benchmarks.md shows them.
func (r *results) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nproc %d, load average at start %s\n", runtime.NumCPU(), r.load)
	fmt.Fprintf(&b, "| measurement | loopback | Tor | Tor / loopback |\n|---|---:|---:|---:|\n")
	secs := func(rs []*bench.CatchupReport) []time.Duration {
		var ds []time.Duration
		for _, r := range rs {
			ds = append(ds, time.Duration(r.Seconds*float64(time.Second)))
		}
		return ds
	}
	lo := secs(r.catchupLo)
	for _, c := range []struct {
		name string
		rs   []*bench.CatchupReport
	}{{"one circuit", r.catchupTor1}, {fmt.Sprintf("%d circuits", app.ParallelReads), r.catchupTor}} {
		tr := secs(c.rs)
		var ratios []string
		for i := range lo {
			ratios = append(ratios, fmt.Sprintf("%.2f", float64(tr[i])/float64(lo[i])))
		}
		fmt.Fprintf(&b, "| catch-up, %d events, Tor on %s (runs) | %s | %s | %s |\n", r.events, c.name, runs(lo), runs(tr), strings.Join(ratios, ", "))
		fmt.Fprintf(&b, "| catch-up, events/s (mean), Tor on %s | %.0f | %.0f | |\n", c.name, float64(r.events)/mean(lo).Seconds(), float64(r.events)/mean(tr).Seconds())
	}
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p99", 0.99}, {"max", 1}} {
		l, t := quantile(r.deliverLo, q.q), quantile(r.deliverTor, q.q)
		fmt.Fprintf(&b, "| task delivery %s (%d tasks) | %s | %s | %.1f |\n", q.name, len(r.deliverLo), ms(l), ms(t), float64(t)/float64(l))
	}
	fmt.Fprintf(&b, "| up: start to ready line (runs) | %s | %s | |\n", runs(r.upLoReady), runs(r.upTorReady))
	fmt.Fprintf(&b, "| up: start to reachable (runs) | %s | %s | %.1f (means) |\n", runs(r.upLo), runs(r.upTor), float64(mean(r.upTor))/float64(mean(r.upLo)))
	return b.String()
}

func runs(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		if d >= time.Second {
			s = append(s, fmt.Sprintf("%.2f s", d.Seconds()))
		} else {
			s = append(s, ms(d))
		}
	}
	return strings.Join(s, ", ")
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
