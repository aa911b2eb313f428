package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// blobGate wraps a relay and records how many blob puts or gets it
// serves at once. The first blob request of each method waits until a
// second one is in flight (or secondWait passes): a transfer that sends one blob
// at a time shows a peak of 1 (after the wait), whatever the machine's
// load, and one that overlaps shows 2 or more without waiting.
type blobGate struct {
	next     http.Handler
	mu       sync.Mutex
	inFlight map[string]int
	peak     map[string]int
	second   map[string]chan struct{}
	waited   map[string]bool
}

const secondWait = 10 * time.Second

func (g *blobGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v1/blobs/") || r.URL.Path == "/v1/blobs/have" {
		g.next.ServeHTTP(w, r)
		return
	}
	m := r.Method
	g.mu.Lock()
	g.inFlight[m]++
	g.peak[m] = max(g.peak[m], g.inFlight[m])
	if g.second[m] == nil {
		g.second[m] = make(chan struct{})
	}
	ch, first := g.second[m], !g.waited[m]
	g.waited[m] = true
	if g.inFlight[m] == 2 {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
	g.mu.Unlock()
	if first {
		select {
		case <-ch:
		case <-time.After(secondWait):
		}
	}
	g.next.ServeHTTP(w, r)
	g.mu.Lock()
	g.inFlight[m]--
	g.mu.Unlock()
}

// TestTransfersOverlap: an attach puts, and a fetch gets, several blobs
// at once, never more than ParallelBlobs; the file still comes back whole
// and verified.
func TestTransfersOverlap(t *testing.T) {
	ctx := context.Background()
	st, err := relay.OpenSQLite(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	g := &blobGate{next: relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler(),
		inFlight: map[string]int{}, peak: map[string]int{}, second: map[string]chan struct{}{}, waited: map[string]bool{}}
	ts := httptest.NewServer(g)
	t.Cleanup(func() { ts.Close(); st.Close() })
	alice := newMember(t, "Alice")
	p := deskOn(t, alice, ts.URL)
	tk := do(t, alice, p, &state.TaskCreate{Title: "Scans"}).ID()
	path, content := randomFile(t, t.TempDir(), "scans.zip", 12<<20, 9)
	res, err := alice.Attach(ctx, p, tk.String(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Chunks < 3 {
		t.Fatalf("%d chunks: too few to see overlap", res.Chunks)
	}
	os.RemoveAll(filepath.Join(alice.home, BlobDir))
	out := filepath.Join(t.TempDir(), "got")
	tr, err := alice.Fetch(ctx, p, tk.String(), res.Event.ID().String(), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, content) || tr.Sent != res.Chunks {
		t.Fatalf("fetched %d of %d chunks, same file: %v", tr.Sent, res.Chunks, bytes.Equal(got, content))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range []string{http.MethodPut, http.MethodGet} {
		if g.peak[m] < 2 || g.peak[m] > ParallelBlobs {
			t.Errorf("%s: %d blobs at once at most, want 2 to %d", m, g.peak[m], ParallelBlobs)
		}
	}
}

// TestFetchReputsMissingBlobs: a relay of the pursuance that lacks a
// file's blobs (it dropped them, or came after the attach) gets them back
// from the member whose fetch found them missing there and got them
// elsewhere; a second fetch then finds them on it.
func TestFetchReputsMissingBlobs(t *testing.T) {
	ctx := context.Background()
	u1, _ := testRelay(t)
	u2, _ := testRelay(t)
	// The fetch asks the relays in sorted order: the first lacks.
	lacks, holds := min(u1, u2), max(u1, u2)
	alice := newMember(t, "Alice")
	p := deskOn(t, alice, holds)
	tk := do(t, alice, p, &state.TaskCreate{Title: "Scans"}).ID()
	path, content := randomFile(t, t.TempDir(), "scans.zip", 3<<20, 11)
	res, err := alice.Attach(ctx, p, tk.String(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetRelays(ctx, p, []string{lacks}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	ids := make([]attach.BlobID, len(res.File.Chunks))
	for i, ch := range res.File.Chunks {
		ids[i] = ch.Blob
	}
	has := func() int {
		got, err := relay.NewClient(lacks, nil).HasBlobs(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, h := range got {
			if h {
				k++
			}
		}
		return k
	}
	if k := has(); k != 0 {
		t.Fatalf("the new relay holds %d blobs before any fetch", k)
	}
	os.RemoveAll(filepath.Join(alice.home, BlobDir))
	out := filepath.Join(t.TempDir(), "got")
	tr, err := alice.Fetch(ctx, p, tk.String(), res.Event.ID().String(), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, content) {
		t.Fatal("fetched another file")
	}
	if k := has(); k != len(ids) || tr.Reput != len(ids) {
		t.Fatalf("the relay that lacked them holds %d of %d blobs after the fetch (%d put back)", k, len(ids), tr.Reput)
	}
}
