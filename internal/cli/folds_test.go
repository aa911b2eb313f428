package cli

import (
	"context"
	"encoding/json"
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
// the state the command builds anyway; a read after a write, without
// relays to ask, not at all (the checkpoint the write left answers it). app.Folds counts folds in this
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
		app.ForgetStates() // each command is a process of its own
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
	// The write left a checkpoint of the log with it (a command's node
	// writes one as it closes): a read without relays opens it, and reads
	// no event (docs/fold.md).
	opened := app.CheckpointOpens()
	if n := run("--offline", "task", "list", "Desk", "--json"); n != 0 || app.CheckpointOpens() != opened+1 {
		t.Errorf("task list --offline folded the log %d times (opened %d checkpoints), want it opened from the checkpoint",
			n, app.CheckpointOpens()-opened)
	}
}

// A round of `up` folds each pursuance's log once, and never while it
// holds the home, which the web UI's requests and commands wait for
// (issue 15): before, a round folded it 5 times and most of them under the
// home's lock. app.FoldsHoldingHome counts the folds of a node holding
// its home; the test is not parallel.
func TestUpRoundFoldsWithoutTheHome(t *testing.T) {
	home := t.TempDir()
	st, err := relay.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	defer ts.Close()
	env := func() *Env {
		e, _, _ := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw"}, nil)
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
		return e
	}
	for _, args := range [][]string{
		{"id", "new", "--name", "Alice", "--insecure-test-kdf"},
		{"create", "--name", "Desk", "--relay", ts.URL},
		{"--offline", "task", "add", "Desk", "--title", "Not sent yet"},
	} {
		if e := env(); Run(args, e) != 0 {
			t.Fatalf("%v: %s", args, e.Stderr)
		}
	}
	e := env()
	app.ForgetStates() // up's first round, in a process of its own
	folds, holding := app.Folds(), app.FoldsHoldingHome()
	if _, _, err := e.upRound(context.Background(), ts.URL); err != nil {
		t.Fatal(err)
	}
	if n := app.FoldsHoldingHome() - holding; n != 0 {
		t.Errorf("%d folds of the round held the home", n)
	}
	if n := app.Folds() - folds; n != 1 {
		t.Errorf("the round folded the log %d times, want 1", n)
	}
}

// `bench fill` founds a pursuance and fills it with valid events of this
// member (Fill fails if the rules reject any), which `task list` shows.
func TestBenchFill(t *testing.T) {
	home := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		e, out, errOut := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw"}, nil)
		if code := Run(args, e); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out.String()
	}
	run("id", "new", "--name", "Alice", "--insecure-test-kdf")
	var fill struct {
		Pursuance string
		Events    int
		Tasks     int
	}
	if err := json.Unmarshal([]byte(run("bench", "fill", "--events", "300", "--json")), &fill); err != nil || fill.Events != 300 || fill.Tasks < 30 || fill.Tasks > 150 {
		t.Fatalf("fill: %+v %v", fill, err)
	}
	var tasks []struct{ ID, Status string }
	if err := json.Unmarshal([]byte(run("task", "list", fill.Pursuance[:8], "--json")), &tasks); err != nil || len(tasks) != fill.Tasks {
		t.Fatalf("task list: %d tasks, want %d (%v)", len(tasks), fill.Tasks, err)
	}
	moved := 0
	for _, tk := range tasks {
		if tk.Status != "New" {
			moved++
		}
	}
	if moved == 0 {
		t.Error("no task's status changed")
	}
}
