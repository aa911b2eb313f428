package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"

	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/internal/nodesock"
)

// benchEventsVar sets the size of the pursuance BenchmarkTaskList fills
// (default benchEventsDefault): docs/benchmarks.md runs it at 20000 and
// 100000.
// PURSUANCE_BENCH_HOME instead names a home already filled (`pursuance
// bench fill --name Bench`, passphrase "pw"), copied by nobody: the
// benchmark only reads it.
const (
	benchEventsVar     = "PURSUANCE_BENCH_EVENTS"
	benchEventsDefault = 2000
	benchHomeVar       = "PURSUANCE_BENCH_HOME"
)

// BenchmarkTaskList times `task list --json` on a filled pursuance, run
// directly (the passphrase, here with the tests' cheap KDF, and a fold
// per command) and through the node's socket (no passphrase, the fold
// kept by the node): the ratio of the two is issue 15's figure.
//
//	PURSUANCE_BENCH_EVENTS=100000 go test ./internal/cli -run '^$' -bench TaskList -benchtime 10x
func BenchmarkTaskList(b *testing.B) {
	events := benchEventsDefault
	if v := os.Getenv(benchEventsVar); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%s: give a number of events", benchEventsVar, v)
		}
		events = n
	}
	home := os.Getenv(benchHomeVar)
	must := func(args ...string) {
		b.Helper()
		e, _, errOut := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw", directVar: "1"}, nil)
		if code := Run(args, e); code != 0 {
			b.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
	}
	if home == "" {
		home = b.TempDir()
		must("id", "new", "--name", "Alice", "--insecure-test-kdf")
		must("bench", "fill", "--events", strconv.Itoa(events), "--name", "Bench")
	}
	id, err := keystore.Open(home, []byte("pw"))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	node, _, _ := testEnv(nil, nil)
	s, err := node.serveCommands(ctx, home, nodesock.Node, id, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { cancel(); s.shutdown() }()
	run := func(b *testing.B, vars map[string]string) {
		all := map[string]string{"PURSUANCE_HOME": home}
		for k, v := range vars {
			all[k] = v
		}
		for b.Loop() {
			e, _, errOut := testEnv(all, nil)
			e.Stdout = io.Discard
			if code := Run([]string{"task", "list", "Bench", "--json"}, e); code != 0 {
				b.Fatalf("exit %d: %s", code, errOut)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, map[string]string{"PURSUANCE_PASSPHRASE": "pw", directVar: "1"}) })
	b.Run("node", func(b *testing.B) {
		// The node's first command folds; the figure is of the next ones.
		e, _, _ := testEnv(map[string]string{"PURSUANCE_HOME": home}, nil)
		e.Stdout = io.Discard
		Run([]string{"task", "list", "Bench", "--json"}, e)
		before := s.count()
		run(b, nil)
		if s.count() == before {
			b.Fatal("no command ran in the node")
		}
	})
}
