package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/relay"
)

// A command folds the pursuance's log at most once (issue 15): a read
// (`task list`, which reads the relays first) and a write (`task add`,
// which also sends what it wrote) each build the state from the store
// once, the quick syncs around them taking the relay list and keys from
// the state the command builds anyway. app.Folds counts folds in this
// process; the test runs alone (not parallel), so nothing else folds
// meanwhile.
func TestCommandFoldsOnce(t *testing.T) {
	home := t.TempDir()
	st, err := relay.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	defer ts.Close()
	run := func(args ...string) int64 {
		t.Helper()
		e, _, errOut := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw"}, nil)
		before := app.Folds()
		if code := Run(args, e); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return app.Folds() - before
	}
	run("id", "new", "--name", "Alice", "--insecure-test-kdf")
	run("create", "--name", "Desk", "--relay", ts.URL)
	run("task", "add", "Desk", "--title", "First")
	if n := run("task", "list", "Desk", "--json"); n != 1 {
		t.Errorf("task list folded the log %d times, want 1", n)
	}
	if n := run("task", "add", "Desk", "--title", "Second"); n != 1 {
		t.Errorf("task add folded the log %d times, want 1", n)
	}
	if n := run("--offline", "task", "list", "Desk", "--json"); n != 1 {
		t.Errorf("task list --offline folded the log %d times, want 1", n)
	}
}
