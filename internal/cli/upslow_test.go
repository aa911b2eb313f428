package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/relay"
)

// While `up` runs a sync round with a relay that is slow to answer (each
// request held relayDelay before the relay serves it), the web UI answers
// at once: no round holds the home across its network calls, nor across
// its folds (issue 15). The bound is honest on a loaded 2-core machine: a
// GET of a small pursuance takes a few ms; before, it waited for the round
// (relayDelay and more). The requests during the round, a write among
// them, fold nothing: they are served from the state up keeps.
func TestUIServesDuringSlowRound(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node")
	}
	const (
		relayDelay = 5 * time.Second
		bound      = time.Second
	)
	home := t.TempDir()
	st, err := relay.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	real := relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler()
	var slow atomic.Bool
	asked := make(chan struct{}, 100)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			select {
			case asked <- struct{}{}:
			default:
			}
			select {
			case <-time.After(relayDelay):
			case <-r.Context().Done():
				return
			}
		}
		real.ServeHTTP(w, r)
	}))
	defer ts.Close()
	env := func() *Env {
		e, _, _ := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw"}, nil)
		e.Stdout, e.Stderr = &syncBuffer{}, &syncBuffer{}
		return e
	}
	must := func(args ...string) {
		t.Helper()
		e := env()
		if code := Run(args, e); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, e.Stderr)
		}
	}
	must("id", "new", "--name", "Alice", "--insecure-test-kdf")
	must("create", "--name", "Desk", "--relay", ts.URL)
	must("task", "add", "Desk", "--title", "First")

	ctx, cancel := context.WithCancel(context.Background())
	e := env()
	e.Context = ctx
	done := make(chan int)
	go func() { done <- Run([]string{"up", "--interval", "1h"}, e) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("up did not stop")
		}
	}()
	var rf runFile
	for deadline := time.Now().Add(time.Minute); ; {
		var ok bool
		if rf, ok = runningNode(home); ok && rf.Bearer != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("up did not start: %s", e.Stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ui := strings.TrimSuffix(rf.UI, "/")
	call := func(method, path string, body any) (time.Duration, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, ui+path, rd)
		req.Header.Set("Authorization", "Bearer "+rf.Bearer)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return time.Since(start), b
	}
	_, b := call("GET", "/api/pursuances", nil)
	var ps []struct{ Pursuance string }
	if json.Unmarshal(b, &ps) != nil || len(ps) != 1 {
		t.Fatalf("pursuances: %s", b)
	}
	p := ps[0].Pursuance
	// A change in the UI starts a round at once; the relay now delays.
	slow.Store(true)
	call("POST", "/api/p/"+p+"/tasks", map[string]any{"title": "Second"})
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		t.Fatal("no round asked the relay")
	}
	// While the round waits on the relay, requests are served from the
	// state up keeps (docs/fold.md): a write and the reads after it fold
	// nothing; the write's event is added to the state kept (an Extend at
	// most), which every request after it sees.
	folds, extends := app.Folds(), app.Extends()
	d, _ := call("POST", "/api/p/"+p+"/tasks", map[string]any{"title": "Third"})
	if d > bound {
		t.Errorf("POST a task during the round: %s (bound %s)", d, bound)
	}
	var took []time.Duration
	for i := range 3 {
		d, b := call("GET", "/api/p/"+p+"/tasks", nil)
		took = append(took, d)
		if d > bound || !strings.Contains(string(b), "Second") || !strings.Contains(string(b), "Third") {
			t.Errorf("GET tasks %d during the round: %s (bound %s): %.100s", i, d, bound, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := app.Folds() - folds; n != 0 {
		t.Errorf("the requests during the round folded the log %d times, want 0 (the state is kept)", n)
	}
	t.Logf("during the round: POST %s, GETs %v; %d extends", d, took, app.Extends()-extends)
}
