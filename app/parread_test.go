package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// readGate stands in front of a relay and counts the page reads (GET
// /v1/topics/{topic} after a cursor: not the first page of a read, not
// live streams) in flight at once. While armed it holds each until
// want are in flight, or wait passed: reads made one after another each
// wait and are never more than one; reads made at once meet and go on.
type readGate struct {
	next  http.Handler
	want  int
	wait  time.Duration
	armed atomic.Bool

	mu   sync.Mutex
	now  int
	most int
	meet chan struct{} // closed when want were in flight
}

func (g *readGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	page := r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/topics/") &&
		!strings.HasSuffix(r.URL.Path, "/live") && r.URL.Query().Get("after") != "0"
	if !page || !g.armed.Load() {
		g.next.ServeHTTP(w, r)
		return
	}
	g.mu.Lock()
	g.now++
	g.most = max(g.most, g.now)
	meet := g.meet
	if g.now >= g.want {
		select {
		case <-meet:
		default:
			close(meet)
		}
	}
	g.mu.Unlock()
	select {
	case <-meet:
	case <-time.After(g.wait):
	}
	g.next.ServeHTTP(w, r)
	g.mu.Lock()
	g.now--
	g.mu.Unlock()
}

// TestParallelReadsThroughTor: a member reaching a relay as an onion
// service (through Dial, as through Tor) reads a topic's pages several at
// once, ParallelReads of them, each on its own isolation string derived
// from the pursuance's own (so on its own circuit, one no other pursuance
// of the home shares), and stores exactly what it would have read page
// by page: every task, in order, each event checked as always. Pages are
// made small (5 entries) so that a few dozen tasks make many pages.
func TestParallelReadsThroughTor(t *testing.T) {
	noLocalDNS(t)
	ctx := context.Background()
	st, err := relay.OpenSQLite(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	// The wait is long enough that ParallelReads reads started together
	// meet under any load, short enough that a sync reading one page at
	// a time (each waits it out) ends in seconds and fails below.
	gate := &readGate{next: relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler(),
		want: ParallelReads, wait: time.Second, meet: make(chan struct{})}
	ts := httptest.NewServer(gate)
	t.Cleanup(func() {
		ts.Close()
		st.Close()
	})
	onion := strings.Repeat("a", 56) + ".onion"
	d := &namedDialer{names: map[string]string{onion + ":80": strings.TrimPrefix(ts.URL, "http://")}}
	alice, bob := newMember(t, "Alice"), newMember(t, "Bob")
	alice.opts.Dial, bob.opts.Dial = d.dial, d.dial
	p := deskOn(t, alice, "http://"+onion)
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	if res, err := bob.Join(ctx, code, DoOptions{}); err != nil || res.SyncErr != nil {
		t.Fatalf("bob's join: %v %v", err, res.SyncErr)
	}
	mustSync(t, alice, p)
	var want []string
	for i := range 40 {
		want = append(want, fmt.Sprint("task ", i))
		do(t, alice, p, &state.TaskCreate{Title: want[i], VisibleTo: []string{"researcher"}})
	}
	mustSync(t, alice, p)

	gate.armed.Store(true)
	bob.opts.limits.page = 5
	res := mustSync(t, bob, p)
	gate.armed.Store(false)
	if res.Received < len(want) {
		t.Errorf("bob received %d events, want at least the %d tasks", res.Received, len(want))
	}
	s, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range VisibleTasks(s, bob.Me().ID, nil) {
		got = append(got, tk.Title)
	}
	if !slices.Equal(got, want) {
		t.Errorf("bob's tasks %q\nwant %q", got, want)
	}
	gate.mu.Lock()
	most := gate.most
	gate.mu.Unlock()
	if most < ParallelReads {
		t.Errorf("at most %d pages read at once, want %d", most, ParallelReads)
	}
	// Each read in flight on its own isolation string, all derived from
	// the pursuance's: other pursuances' strings are not among them.
	isos := d.isolations(onion + ":80")
	own := bob.isolation(p)
	for i := 1; i < ParallelReads; i++ {
		if s := fmt.Sprintf("%s/read-%d", own, i); isos[s] == 0 {
			t.Errorf("no connection with the isolation string %s; used %v", s, isos)
		}
	}
	for s := range isos {
		if !strings.HasPrefix(s, own) && !strings.HasPrefix(s, alice.isolation(p)) {
			t.Errorf("a connection with the isolation string %s, not derived from the pursuance's %s", s, own)
		}
	}
}

// TestNoParallelReadsInTheClear: without Tor, and through Tor to a
// clear-net relay (which counts reads per client address, an exit's
// shared by all its users), a sync reads one page at a time on the
// pursuance's one client.
func TestNoParallelReadsInTheClear(t *testing.T) {
	m := newMember(t, "Alice")
	if cs := m.readClients([32]byte{1}, "http://"+strings.Repeat("a", 56)+".onion"); cs != nil {
		t.Errorf("without Dial, %d read clients", len(cs))
	}
	m.opts.Dial = (&namedDialer{}).dial
	if cs := m.readClients([32]byte{1}, "https://relay.example"); cs != nil {
		t.Errorf("through Tor to a clear-net relay, %d read clients", len(cs))
	}
	if cs := m.readClients([32]byte{1}, "http://"+strings.Repeat("a", 56)+".onion"); len(cs) != ParallelReads {
		t.Errorf("through Tor to an onion relay, %d read clients, want %d", len(cs), ParallelReads)
	}
}
