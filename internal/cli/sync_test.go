package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/relay/relaytest"
)

// syncBuffer is a writer safe for the concurrent use a test makes of a
// command's stderr while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A relay that accepts connections and never answers: `sync` and `relays
// add`/`remove` end within a bounded time, naming it; the other relay
// gets what was written; and while a sync waits for it, the home is free
// (the web UI's requests open it).
func TestHangingRelayCommands(t *testing.T) {
	home := t.TempDir()
	st, err := relay.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	defer ts.Close()
	hanging, accepted := relaytest.Hanging(t)
	other, _ := relaytest.Hanging(t)
	const stall = 2 * time.Second
	run := func(args ...string) (int, string, time.Duration) {
		t.Helper()
		errOut := &syncBuffer{}
		e, _, _ := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw"}, nil)
		e.Stderr, e.Stdout = errOut, errOut
		e.relayTimeout = stall
		start := time.Now()
		code := Run(args, e)
		return code, errOut.String(), time.Since(start)
	}
	// A stall per relay call, no retries of a stall, a relay's pushes
	// waiting a few seconds at most for the others: generous bounds for a
	// loaded machine, far below the minutes it took.
	const bound = 30 * time.Second
	if code, out, _ := run("id", "new", "--name", "Alice", "--insecure-test-kdf"); code != 0 {
		t.Fatal(out)
	}
	if code, out, d := run("create", "--name", "Desk", "--relay", ts.URL, "--relay", hanging); code != 0 || d > bound {
		t.Fatalf("create: exit %d after %s: %s", code, d, out)
	}
	for len(accepted) > 0 {
		<-accepted
	}
	type result struct {
		code int
		out  string
		d    time.Duration
	}
	done := make(chan result, 1)
	go func() {
		code, out, d := run("sync", "Desk")
		done <- result{code, out, d}
	}()
	select {
	case <-accepted:
	case <-time.After(bound):
		t.Fatal("sync never reached the hanging relay")
	}
	// Meanwhile the home opens (as the UI's request does) well within the
	// stall time the sync is waiting out.
	id, err := keystore.Open(home, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stall/2)
	n, err := app.Open(ctx, home, id, app.Options{})
	cancel()
	if err != nil {
		t.Fatalf("the home is held while a relay hangs: %v", err)
	}
	n.Close()
	r := <-done
	if r.code != 0 || r.d > bound || !strings.Contains(r.out, "Synced with 1 of 2 relays (1 failed, below)") ||
		!strings.Contains(r.out, hanging+": no answer in time") {
		t.Fatalf("sync: exit %d after %s:\n%s", r.code, r.d, r.out)
	}
	code, out, d := run("relays", "add", "Desk", other)
	if code != 0 || d > bound || !strings.Contains(out, other+": no answer in time") {
		t.Fatalf("relays add: exit %d after %s:\n%s", code, d, out)
	}
	code, out, d = run("relays", "remove", "Desk", hanging)
	if code != 0 || d > bound {
		t.Fatalf("relays remove: exit %d after %s:\n%s", code, d, out)
	}
	code, out, _ = run("relays", "Desk")
	if code != 0 || strings.Contains(out, hanging) || !strings.Contains(out, ts.URL) {
		t.Fatalf("relays: %s", out)
	}
}
