package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/store"
)

// The migration crash test runs this test binary again as a child that
// opens (and so migrates) a legacy store. These variables tell it what to
// do.
const (
	migrateEnvPath = "PURSUANCE_STORE_MIGRATE_CHILD" // the database file
	migrateEnvStep = "PURSUANCE_STORE_MIGRATE_STEP"  // the step to die after, or ""
)

// migrateSteps are the steps of a migration a child dies after, in order.
var migrateSteps = []string{"batch", "copied", "old-closed", "wal-dropped", "linked", "renamed", "zeroed"}

// migrateChild opens the store at path, killing itself with SIGKILL after
// the step named by migrateEnvStep. It prints "opened" if it got through.
func migrateChild(path string) {
	step := os.Getenv(migrateEnvStep)
	store.SetMigrateBatch(150)
	store.SetMigrateStep(func(name string) {
		if name == step {
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				p.Kill() // SIGKILL, as a crash
			}
			select {}
		}
	})
	s, err := store.OpenSQLite(path, testKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate child:", err)
		os.Exit(3)
	}
	s.Close()
	fmt.Println("opened")
	os.Exit(0)
}

// TestMigrationCrash kills a process migrating a clear store after each
// step of the migration, and at random moments: the store must then open
// (finishing or starting the migration again) and hold every event and
// record of the clear store, encrypted, with nothing left beside it.
func TestMigrationCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes; skipped in -short mode")
	}
	tmpl := filepath.Join(t.TempDir(), "legacy.db")
	l, g := newFastLog(11, 3)
	events := append([]*event.Event{g}, l.batch(499)...)
	ev := []event.Equivocation{{Pursuance: l.pid, Author: g.Author, Seq: 4, A: events[1].ID(), B: events[2].ID()}}
	if err := store.WriteLegacy(tmpl, 3, events, ev); err != nil {
		t.Fatal(err)
	}
	legacy, err := os.ReadFile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	// A first child migrates unharmed, and tells how long that takes.
	whole := runMigrateChild(t, "whole", legacy, "", 0, l.pid, events, ev)
	t.Logf("a migration takes %v", whole)
	// The others run side by side: they spend most of their time waiting
	// for fsync.
	rounds := append(slices.Clone(migrateSteps), "random", "random", "random")
	for i, step := range rounds {
		var killAfter time.Duration
		if step == "random" {
			killAfter = time.Duration(rng.Int64N(int64(whole)))
		}
		t.Run(fmt.Sprintf("%d-%s", i, step), func(t *testing.T) {
			t.Parallel()
			runMigrateChild(t, step, legacy, strings.TrimPrefix(step, "random"), killAfter, l.pid, events, ev)
		})
	}
}

// runMigrateChild writes the legacy store to a new directory and runs a
// child that migrates it, dying after step (if not "") or being killed
// after killAfter (if not 0); then it checks the store. It returns how
// long the child ran.
func runMigrateChild(t *testing.T, round string, legacy []byte, step string, killAfter time.Duration, pid event.ID, events []*event.Event, ev []event.Equivocation) time.Duration {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	if err := os.WriteFile(path, legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), migrateEnvPath+"="+path, migrateEnvStep+"="+step)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if killAfter > 0 {
		timer := time.AfterFunc(killAfter, func() { cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	err := cmd.Wait()
	took := time.Since(start)
	var exit *exec.ExitError
	killed := errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
	switch {
	case step == "" && killAfter == 0:
		if err != nil || stdout.String() != "opened\n" {
			t.Fatalf("%s: the migration ended with %v; stderr:\n%s", round, err, stderr.Bytes())
		}
	case step != "" && !killed:
		t.Fatalf("%s: the child was to die after step %q, but ended with %v; stdout %q, stderr:\n%s", round, step, err, stdout.Bytes(), stderr.Bytes())
	case !killed && err != nil:
		t.Fatalf("%s: the child ended with %v; stderr:\n%s", round, err, stderr.Bytes())
	}
	verifyMigrated(t, round, dir, pid, events, ev)
	return took
}

// verifyMigrated opens the store in dir, after a migration that may have
// crashed, and checks it holds events and evidence encrypted, alone.
func verifyMigrated(t *testing.T, round, dir string, pid event.ID, events []*event.Event, ev []event.Equivocation) {
	t.Helper()
	ctx := context.Background()
	s := openSQLite(t, filepath.Join(dir, "store.db"))
	defer s.Close()
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatalf("%s: %v", round, err)
	}
	var got []event.ID
	if err := s.Iterate(ctx, pid, func(e *event.Event) error { got = append(got, e.ID()); return nil }); err != nil {
		t.Fatalf("%s: %v", round, err)
	}
	want := make([]event.ID, len(events))
	for i, e := range events {
		want[i] = e.ID()
	}
	slices.SortFunc(got, event.ID.Compare)
	slices.SortFunc(want, event.ID.Compare)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: the store holds %d events, not the %d of the clear one", round, len(got), len(want))
	}
	if refs, err := s.Refs(ctx, want); err != nil || len(refs) != len(want) {
		t.Fatalf("%s: Refs found %d of %d events: %v", round, len(refs), len(want), err)
	}
	if got, err := s.Evidence(ctx, pid); err != nil || !slices.Equal(got, ev) {
		t.Fatalf("%s: Evidence = %v, %v", round, got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"store.db"}) {
		t.Fatalf("%s: the directory holds %v, want store.db alone", round, names)
	}
	if hits := scanDir(t, dir, storeNeedles(events)); len(hits) > 0 {
		t.Fatalf("%s: in the clear: %s", round, strings.Join(hits[:min(len(hits), 5)], "; "))
	}
}
