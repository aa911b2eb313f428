package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/nodesock"
)

// ran is one command's output.
type ran struct {
	code           int
	stdout, stderr string
}

// runIn runs args on home with the variables vars (the home's and
// nothing else unless given).
func runIn(t *testing.T, home string, vars map[string]string, args ...string) ran {
	t.Helper()
	all := map[string]string{"PURSUANCE_HOME": home}
	for k, v := range vars {
		all[k] = v
	}
	e, out, errOut := testEnv(all, nil)
	code := Run(args, e)
	return ran{code, out.String(), errOut.String()}
}

// direct runs args in this process, as without a node, with the
// passphrase.
func direct(t *testing.T, home string, args ...string) ran {
	t.Helper()
	return runIn(t, home, map[string]string{"PURSUANCE_PASSPHRASE": "pw", directVar: "1"}, args...)
}

// viaServer runs args without a passphrase, and checks that the server s
// ran it.
func viaServer(t *testing.T, s *commandServer, home string, args ...string) ran {
	t.Helper()
	before := s.count()
	r := runIn(t, home, nil, args...)
	if s.count() != before+1 {
		t.Fatalf("%q did not run in the node (exit %d: %s)", args, r.code, r.stderr)
	}
	return r
}

func (s *commandServer) count() int {
	s.run.Lock()
	defer s.run.Unlock()
	return s.served
}

// newHome makes a home with an identity and the pursuance Desk holding a
// few tasks, and returns it with the IDs of two of them.
func newHome(t *testing.T) (home, t1, t2 string) {
	t.Helper()
	home = t.TempDir()
	must := func(args ...string) string {
		t.Helper()
		r := direct(t, home, args...)
		if r.code != 0 {
			t.Fatalf("%q: exit %d: %s", args, r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	must("id", "new", "--name", "Alice", "--insecure-test-kdf")
	must("create", "--name", "Desk", "--template", "desk")
	t1 = must("task", "add", "Desk", "--title", "Check the ledger", "--due", "2026-12-31")
	t2 = must("task", "add", "Desk", "--title", "Call the source", "--visible-to", "editor")
	must("task", "add", "Desk", "--title", "Sub", "--parent", t1, "--assign", "Alice")
	must("task", "comment", "Desk", t1, "first look")
	return home, t1, t2
}

// startUp runs `pursuance up` on home until the test ends and returns the
// server of its socket once it listens.
func startUp(t *testing.T, home string) *commandServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, _, _ := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw"}, nil)
	e.Stdout, e.Stderr = &syncBuffer{}, &syncBuffer{}
	e.Rand = rand.Reader // the node's goroutines share it
	e.Context = ctx
	servers := make(chan *commandServer, 1)
	e.onServe = func(s *commandServer) { servers <- s }
	done := make(chan int, 1)
	go func() { done <- Run([]string{"up", "--offline", "--interval", "1h"}, e) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("up did not stop")
		}
	})
	select {
	case s := <-servers:
		return s
	case code := <-done:
		t.Fatalf("up ended (exit %d): %s", code, e.Stderr)
	case <-time.After(time.Minute):
		t.Fatalf("up's socket did not listen within a minute: %s", e.Stderr)
	}
	return nil
}

// TestNodeAnswersAsDirect runs the commands of cli.md that read or change
// a pursuance twice, in this process without a node and through a running
// `pursuance up`, and checks the exit status, stdout and stderr are the
// same byte for byte; through the node without any passphrase. Error
// cases (unknown names, refused actions, usage errors) included.
func TestNodeAnswersAsDirect(t *testing.T) {
	home, t1, t2 := newHome(t)
	s := startUp(t, home)
	reads := [][]string{
		{"list"}, {"list", "--json"},
		{"members", "Desk"}, {"members", "Desk", "--json"},
		{"charter", "show", "Desk"},
		{"log", "Desk"}, {"log", "Desk", "--json"},
		{"keys", "Desk"},
		{"relays", "Desk"},
		{"proposals", "Desk"},
		{"links", "Desk", "--json"},
		{"device", "list", "--json"},
		{"task", "list", "Desk"}, {"task", "list", "Desk", "--json"},
		{"task", "list", "Desk", "--filter", "@me"}, {"task", "list", "Desk", "--filter", "status:!Done ledger", "--json"},
		{"task", "show", "Desk", t1}, {"task", "show", "Desk", t1, "--json"}, {"task", "show", "Desk", t2[:8], "--json"},
		{"task", "search", "Desk", "ledger"}, {"task", "search", "Desk", "look", "--json"}, {"task", "search", "Desk", "nothing-here"},
		// Errors: an unknown pursuance, task and status, a bad filter.
		{"task", "list", "Nope"},
		{"task", "show", "Desk", "ffffffff"},
		{"task", "status", "Desk", t1, "Sleeping"},
		{"task", "list", "Desk", "--filter", "due:<notadate"},
		{"role", "assign", "Desk", "Nobody", "editor"},
	}
	for _, args := range reads {
		d := direct(t, home, args...)
		n := viaServer(t, s, home, args...)
		if d != n {
			t.Errorf("%q:\n direct: %d %q %q\n node:   %d %q %q", args, d.code, d.stdout, d.stderr, n.code, n.stdout, n.stderr)
		}
	}
	// Usage errors run here either way, as they always did.
	for _, args := range [][]string{{"task", "status", "Desk"}, {"task", "list", "Desk", "--bogus"}} {
		d, n := direct(t, home, args...), runIn(t, home, nil, args...)
		if d != n || d.code != 2 {
			t.Errorf("%q: direct %v, node %v", args, d, n)
		}
	}
	// Writes: the same change to two like tasks, one each way.
	a := strings.TrimSpace(direct(t, home, "task", "add", "Desk", "--title", "Twin").stdout)
	b := strings.TrimSpace(viaServer(t, s, home, "task", "add", "Desk", "--title", "Twin").stdout)
	if len(a) != 64 || len(b) != 64 {
		t.Fatalf("task add printed %q and %q", a, b)
	}
	writes := [][]string{
		{"task", "status", "Desk", "T", "Started"},
		{"task", "assign", "Desk", "T", "Alice"},
		{"task", "assign", "Desk", "T", "role:researcher"},
		{"task", "unassign", "Desk", "T", "Alice"},
		{"task", "comment", "Desk", "T", "on it"},
		{"task", "edit", "Desk", "T", "--title", "Twin renamed", "--due", "2027-01-02"},
		{"task", "show", "Desk", "T", "--json"},
		{"task", "archive", "Desk", "T"},
		{"task", "show", "Desk", "T"},
	}
	for _, w := range writes {
		with := func(id string) []string {
			out := slices.Clone(w)
			out[3] = id
			return out
		}
		d := direct(t, home, with(a)...)
		n := viaServer(t, s, home, with(b)...)
		n.stdout = strings.ReplaceAll(n.stdout, b, a)
		n.stderr = strings.ReplaceAll(n.stderr, b, a)
		// A task's short ID shows too.
		n.stdout = strings.ReplaceAll(n.stdout, b[:8], a[:8])
		// The twins' comments were written moments apart, and a minute
		// may have turned between them.
		d.stdout, n.stdout = commentTime.ReplaceAllString(d.stdout, "TIME"), commentTime.ReplaceAllString(n.stdout, "TIME")
		if d != n || d.code != 0 {
			t.Errorf("%q:\n direct: %d %q %q\n node:   %d %q %q", w, d.code, d.stdout, d.stderr, n.code, n.stdout, n.stderr)
		}
	}
	// And the state both ways is the same.
	d, n := direct(t, home, "task", "list", "Desk", "--json"), viaServer(t, s, home, "task", "list", "Desk", "--json")
	if d != n || d.code != 0 {
		t.Errorf("after the writes: direct %v, node %v", d, n)
	}
	// Commands that read the client's files or ask a passphrase run here:
	// without a passphrase they fail as they always did.
	for _, args := range [][]string{{"id", "check"}, {"export", "Desk", "--out", filepath.Join(t.TempDir(), "x")}} {
		before := s.count()
		if r := runIn(t, home, nil, args...); r.code == 0 || !strings.Contains(r.stderr, "no passphrase") || s.count() != before {
			t.Errorf("%q without a passphrase while the node runs: %v", args, r)
		}
	}
}

// TestStaleSocketIgnored leaves the socket file of a node that is gone
// (as after kill -9): a command runs in its own process at once, as
// without a node; and `up` removes the file and listens again.
func TestStaleSocketIgnored(t *testing.T) {
	home, _, _ := newHome(t)
	if err := os.Mkdir(filepath.Join(home, nodesock.Dir), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, nodesock.Dir, nodesock.Node)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the stale socket file is not there: %v", err)
	}
	start := time.Now()
	r := runIn(t, home, nil, "list")
	if r.code != 1 || !strings.Contains(r.stderr, "no passphrase") {
		t.Errorf("list without a passphrase beside a stale socket: %v", r)
	}
	// The dial fails at once (ECONNREFUSED); the bound only catches a
	// client that waited for a hello (helloTimeout) from nobody.
	if d := time.Since(start); d >= helloTimeout {
		t.Errorf("list beside a stale socket took %s", d)
	}
	want := direct(t, home, "list", "--json")
	if want.code != 0 {
		t.Fatalf("list: %v", want)
	}
	s := startUp(t, home)
	if got := viaServer(t, s, home, "list", "--json"); got != want {
		t.Errorf("through the node after the stale socket: %v, want %v", got, want)
	}
}

// TestForwardedCommandsExist checks that every forwarded command path
// names a command.
func TestForwardedCommandsExist(t *testing.T) {
	e, _, _ := testEnv(nil, nil)
	root := NewRoot(e)
	for path := range forwarded {
		cmd, _, err := root.Find(strings.Fields(path))
		if err != nil || strings.TrimPrefix(cmd.CommandPath(), "pursuance ") != path {
			t.Errorf("forwarded %q names no command (%v)", path, err)
		}
	}
}

// TestForwardedVarsCoverCommands checks that every PURSUANCE_ variable
// this package names is sent to the node with a request, or deliberately
// not (localVars): a variable a command reads but the node does not get
// would make its answer differ from a direct run.
func TestForwardedVarsCoverCommands(t *testing.T) {
	fset := token.NewFileSet()
	known := append(slices.Clone(forwardedVars), localVars...)
	ents, _ := os.ReadDir(".")
	for _, ent := range ents {
		name := ent.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			v, _ := strconv.Unquote(lit.Value)
			if strings.HasPrefix(v, "PURSUANCE_") && v != "PURSUANCE_" && !strings.ContainsAny(v, " =…") && !slices.Contains(known, v) {
				t.Errorf("%s: %s is neither in forwardedVars nor in localVars", fset.Position(lit.Pos()), v)
			}
			return true
		})
	}
}

// TestAgentTimeout runs `pursuance agent --timeout`: meanwhile commands
// run in it without a passphrase; once the time is up it has stopped, its
// socket is gone, and a command without a passphrase fails as it always
// did (the keystore is locked again).
func TestAgentTimeout(t *testing.T) {
	home, _, _ := newHome(t)
	// Long enough for the commands below on a loaded machine; the agent
	// is stopped by its timer, not by the test.
	const timeout = 3 * time.Second
	e, _, _ := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw"}, nil)
	e.Stdout, e.Stderr = &syncBuffer{}, &syncBuffer{}
	e.Rand = rand.Reader
	servers := make(chan *commandServer, 1)
	e.onServe = func(s *commandServer) { servers <- s }
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- Run([]string{"agent", "--timeout", timeout.String()}, e) }()
	var s *commandServer
	select {
	case s = <-servers:
	case code := <-done:
		t.Fatalf("agent ended (exit %d): %s", code, e.Stderr)
	}
	want := direct(t, home, "task", "list", "Desk", "--json")
	if got := viaServer(t, s, home, "task", "list", "Desk", "--json"); got != want || got.code != 0 {
		t.Errorf("through the agent: %v, want %v", got, want)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("agent: exit %d: %s", code, e.Stderr)
		}
	case <-time.After(timeout + time.Minute):
		t.Fatal("the agent did not stop after its timeout")
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("the agent stopped after %s, before its timeout of %s", d, timeout)
	}
	if _, err := os.Stat(filepath.Join(home, nodesock.Dir, nodesock.Agent)); err == nil {
		t.Error("the agent's socket is still there")
	}
	if r := runIn(t, home, nil, "task", "list", "Desk", "--json"); r.code != 1 || !strings.Contains(r.stderr, "no passphrase") {
		t.Errorf("after the agent's timeout, without a passphrase: %v", r)
	}
	// Bad timeouts are usage errors.
	for _, bad := range []string{"0s", "25h"} {
		if r := runIn(t, home, map[string]string{"PURSUANCE_PASSPHRASE": "pw"}, "agent", "--timeout", bad); r.code != 2 {
			t.Errorf("agent --timeout %s: %v", bad, r)
		}
	}
}

// TestUpFailingAfterSocketReturns: an `up` that fails after its socket
// listens (here: a web UI address off the loopback) returns, its socket
// closed and removed, instead of waiting for ever for the socket's server.
func TestUpFailingAfterSocketReturns(t *testing.T) {
	home, _, _ := newHome(t)
	e, _, errOut := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw"}, nil)
	e.Rand = rand.Reader
	listened := make(chan struct{}, 1)
	e.onServe = func(*commandServer) { listened <- struct{}{} }
	done := make(chan int, 1)
	go func() { done <- Run([]string{"up", "--offline", "--listen", "0.0.0.0:0"}, e) }()
	select {
	case code := <-done:
		if code != 2 || !strings.Contains(errOut.String(), "loopback") {
			t.Errorf("up --listen 0.0.0.0:0: exit %d: %s", code, errOut)
		}
	case <-time.After(time.Minute):
		t.Fatal("up did not return after failing")
	}
	select {
	case <-listened:
	default:
		t.Error("the socket never listened: the test tests nothing")
	}
	if _, err := os.Stat(filepath.Join(home, nodesock.Dir, nodesock.Node)); err == nil {
		t.Error("the socket file is left")
	}
}

// TestRotatedIdentityRunsDirect rotates the identity's keys (`id rotate`,
// in its own process as always) while the node runs: the node's unlocked
// identity is no longer the home's, so it refuses the commands, and they
// run in their own processes with the passphrase, answering as before.
func TestRotatedIdentityRunsDirect(t *testing.T) {
	home, _, _ := newHome(t)
	s := startUp(t, home)
	want := viaServer(t, s, home, "task", "list", "Desk", "--json")
	// New keys from a source of its own (testEnv's is the same seed for
	// every Env, so would make the keys of id new again).
	e, _, errOut := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw"}, nil)
	e.Rand = rand.Reader
	if code := Run([]string{"id", "rotate"}, e); code != 0 {
		t.Fatalf("id rotate: exit %d: %s", code, errOut)
	}
	before := s.count()
	got := runIn(t, home, map[string]string{"PURSUANCE_PASSPHRASE": "pw"}, "task", "list", "Desk", "--json")
	if got != want || s.count() != before {
		t.Errorf("after id rotate: %v (the node ran %d), want %v run here", got, s.count()-before, want)
	}
}

// TestCommentAttachRunsHere: `task comment --attach` reads files named on
// the command line, so it runs in the client's process (a node would read
// the path against its own directory); without --attach it is forwarded.
func TestCommentAttachRunsHere(t *testing.T) {
	getenv := func(string) string { return "" }
	if _, ok := forwardable([]string{"task", "comment", "Desk", "T", "hi"}, getenv); !ok {
		t.Fatal("task comment is not forwarded")
	}
	if _, ok := forwardable([]string{"task", "comment", "Desk", "T", "hi", "--attach", "notes.txt"}, getenv); ok {
		t.Fatal("task comment --attach is forwarded to the node")
	}
}

// TestTaskListKeptNeverStale: the node keeps `task list --json`'s output
// with the state it printed (State.Memo, issue 15), and every change
// shows in the next list it serves: a status set, a task added, a task
// archived (hidden from the list).
func TestTaskListKeptNeverStale(t *testing.T) {
	home, t1, t2 := newHome(t)
	s := startUp(t, home)
	list := func(what string) (string, map[string]taskJSON) {
		t.Helper()
		r := viaServer(t, s, home, "task", "list", "Desk", "--json")
		var ts []taskJSON
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ts) != nil {
			t.Fatalf("%s: exit %d: %q %s", what, r.code, r.stdout, r.stderr)
		}
		out := map[string]taskJSON{}
		for _, tj := range ts {
			out[tj.ID.String()] = tj
		}
		return r.stdout, out
	}
	must := func(args ...string) string {
		t.Helper()
		r := viaServer(t, s, home, args...)
		if r.code != 0 {
			t.Fatalf("%q: exit %d: %s", args, r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	first, ts := list("first")
	if again, _ := list("again"); again != first || len(ts) != 3 || ts[t1].Status != "New" {
		t.Fatalf("the list: %q, then %q", first, again)
	}
	must("task", "status", "Desk", t1, "Done")
	if _, ts := list("after a status"); ts[t1].Status != "Done" {
		t.Errorf("after the status was set: %+v", ts[t1])
	}
	id := must("task", "add", "Desk", "--title", "Later")
	if _, ts := list("after an add"); ts[id].Title != "Later" || len(ts) != 4 {
		t.Errorf("after a task was added: %v", ts)
	}
	must("task", "archive", "Desk", t2)
	if _, ts := list("after an archive"); len(ts) != 3 || ts[t2].Title != "" {
		t.Errorf("after a task was archived: %v", ts)
	}
}

// commentTime matches the minute a comment shows (task show).
var commentTime = regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}`)
