package cli

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/app"
	"github.com/spf13/cobra"
)

// fakeTerminal answers prompts from a list, recording the prompts.
type fakeTerminal struct {
	answers []string
	prompts []string
}

func (f *fakeTerminal) ReadPassword(prompt string) ([]byte, error) {
	f.prompts = append(f.prompts, prompt)
	if len(f.answers) == 0 {
		return nil, errors.New("EOF")
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	return []byte(a), nil
}

func testEnv(vars map[string]string, t Terminal) (*Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &Env{
		Stdin:    strings.NewReader(""),
		Stdout:   &out,
		Stderr:   &errOut,
		Getenv:   func(k string) string { return vars[k] },
		Rand:     rand.NewChaCha8([32]byte{1}),
		Terminal: t,
	}, &out, &errOut
}

func TestPassphraseSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pass")
	if err := os.WriteFile(file, []byte("from-file\r\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The environment variable comes first.
	e, _, _ := testEnv(map[string]string{"PURSUANCE_PASSPHRASE": "from-env"}, &fakeTerminal{answers: []string{"tty"}})
	e.passphraseFile = file
	if p, err := e.Passphrase(true); err != nil || string(p) != "from-env" {
		t.Errorf("env: %q, %v", p, err)
	}
	// Then the file, first line, without CRLF.
	e, _, _ = testEnv(nil, &fakeTerminal{answers: []string{"tty"}})
	e.passphraseFile = file
	if p, err := e.Passphrase(true); err != nil || string(p) != "from-file" {
		t.Errorf("file: %q, %v", p, err)
	}
	// Then the terminal, asked twice to confirm.
	term := &fakeTerminal{answers: []string{"typed", "typed"}}
	e, _, _ = testEnv(nil, term)
	if p, err := e.Passphrase(true); err != nil || string(p) != "typed" || len(term.prompts) != 2 {
		t.Errorf("terminal: %q, %v, prompts %q", p, err, term.prompts)
	}
	// Asked once without confirmation.
	term = &fakeTerminal{answers: []string{"typed"}}
	e, _, _ = testEnv(nil, term)
	if p, err := e.Passphrase(false); err != nil || string(p) != "typed" || len(term.prompts) != 1 {
		t.Errorf("terminal once: %q, %v, prompts %q", p, err, term.prompts)
	}
	// A mismatch, an empty answer, and no source at all are errors.
	e, _, _ = testEnv(nil, &fakeTerminal{answers: []string{"one", "two"}})
	if _, err := e.Passphrase(true); err == nil || !strings.Contains(err.Error(), "differ") {
		t.Errorf("mismatch: %v", err)
	}
	e, _, _ = testEnv(nil, &fakeTerminal{answers: []string{""}})
	if _, err := e.Passphrase(false); err == nil {
		t.Error("empty answer accepted")
	}
	e, _, _ = testEnv(nil, &fakeTerminal{})
	if _, err := e.Passphrase(false); err == nil {
		t.Error("terminal read error ignored")
	}
	e, _, _ = testEnv(map[string]string{"PURSUANCE_PASSPHRASE": ""}, nil)
	if _, err := e.Passphrase(false); !errors.Is(err, errNoPassphrase) {
		t.Errorf("no source: %v, want errNoPassphrase", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), maxPassphraseFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	e, _, _ = testEnv(nil, nil)
	e.passphraseFile = big
	if _, err := e.Passphrase(false); err == nil {
		t.Error("oversized passphrase file accepted")
	}
}

func TestHome(t *testing.T) {
	cases := []struct {
		flag string
		vars map[string]string
		want string
	}{
		{"/f", map[string]string{"PURSUANCE_HOME": "/p", "XDG_DATA_HOME": "/x", "HOME": "/h"}, "/f"},
		{"", map[string]string{"PURSUANCE_HOME": "/p", "XDG_DATA_HOME": "/x", "HOME": "/h"}, "/p"},
		{"", map[string]string{"XDG_DATA_HOME": "/x", "HOME": "/h"}, "/x/pursuance"},
		{"", map[string]string{"XDG_DATA_HOME": "rel", "HOME": "/h"}, "/h/.local/share/pursuance"},
		{"", map[string]string{"HOME": "/h"}, "/h/.local/share/pursuance"},
	}
	for _, c := range cases {
		e, _, _ := testEnv(c.vars, nil)
		e.home = c.flag
		got, err := e.Home()
		if err != nil || got != c.want {
			t.Errorf("Home(flag %q, %v) = %q, %v; want %q", c.flag, c.vars, got, err, c.want)
		}
	}
	e, _, _ := testEnv(nil, nil)
	if _, err := e.Home(); err == nil {
		t.Error("Home with nothing set succeeded")
	}
}

// TestInteractiveIDNew creates an identity with passphrases typed at a
// terminal, then opens it with the same passphrase.
func TestInteractiveIDNew(t *testing.T) {
	home := t.TempDir()
	term := &fakeTerminal{answers: []string{"typed secret", "typed secret"}}
	e, out, errOut := testEnv(map[string]string{"PURSUANCE_HOME": home}, term)
	if code := Run([]string{"id", "new", "--name", "Alice", "--insecure-test-kdf"}, e); code != 0 {
		t.Fatalf("id new exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out.String(), "pm1") || len(term.prompts) != 2 {
		t.Errorf("stdout %q, prompts %q", out, term.prompts)
	}

	e, _, errOut = testEnv(map[string]string{"PURSUANCE_HOME": home}, &fakeTerminal{answers: []string{"typed secret"}})
	if code := Run([]string{"id", "check"}, e); code != 0 {
		t.Fatalf("id check exit %d: %s", code, errOut)
	}
	e, _, errOut = testEnv(map[string]string{"PURSUANCE_HOME": home}, &fakeTerminal{answers: []string{"typo secret"}})
	if code := Run([]string{"id", "check"}, e); code != 1 || !strings.HasPrefix(errOut.String(), "pursuance: wrong passphrase") {
		t.Errorf("id check with a typo: exit %d, stderr %q", code, errOut)
	}
	// Mismatched confirmation creates nothing.
	other := t.TempDir()
	e, _, errOut = testEnv(map[string]string{"PURSUANCE_HOME": other}, &fakeTerminal{answers: []string{"one", "two"}})
	if code := Run([]string{"id", "new", "--name", "Bob"}, e); code != 1 {
		t.Errorf("mismatched confirmation: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(other, "identity.json")); err == nil {
		t.Error("mismatched confirmation created a keystore")
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"nosuch"},
		{"ide"}, // cobra suggests "id" over several lines
		{"id", "show"},
		{"id", "new", "--name", "x\ny"},
		{"--home"},
	} {
		e, out, errOut := testEnv(map[string]string{"PURSUANCE_HOME": t.TempDir()}, nil)
		code := Run(args, e)
		if code == 0 {
			t.Errorf("%q: exit 0", args)
			continue
		}
		first, rest, _ := strings.Cut(errOut.String(), "\n")
		if !strings.HasPrefix(first, "pursuance: ") || rest != "" {
			t.Errorf("%q: stderr is not one line \"pursuance: …\": %q", args, errOut)
		}
		if out.Len() != 0 {
			t.Errorf("%q: stdout %q", args, out)
		}
		if strings.Contains(errOut.String(), "goroutine ") {
			t.Errorf("%q: stack trace on stderr", args)
		}
		help := strings.Contains(first, "(see `pursuance help")
		if (code == 2) != help {
			t.Errorf("%q: exit %d, help named %v: %q", args, code, help, first)
		}
	}
}

// TestUpFirstRun: up at a terminal with no identity walks the user
// through creating one, then starts the node.
func TestUpFirstRun(t *testing.T) {
	home := t.TempDir()
	term := &fakeTerminal{answers: []string{"a long passphrase", "a long passphrase"}}
	e, out, errOut := testEnv(map[string]string{"PURSUANCE_HOME": home}, term)
	e.Stdin = strings.NewReader("Alice\n")
	if code := Run([]string{"up", "--once"}, e); code != 0 {
		t.Fatalf("up exit %d: %s", code, errOut)
	}
	for _, want := range []string{"Welcome to Pursuance", "Created the identity of Alice", "Safety fingerprint", "Node of Alice is up"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q: %s", want, errOut)
		}
	}
	if !strings.HasPrefix(out.String(), "http://127.0.0.1:") || len(term.prompts) != 2 {
		t.Errorf("stdout %q, prompts %q", out, term.prompts)
	}
	// A bad name creates nothing.
	other := t.TempDir()
	e, _, errOut = testEnv(map[string]string{"PURSUANCE_HOME": other}, &fakeTerminal{answers: []string{"p", "p"}})
	e.Stdin = strings.NewReader("\n")
	if code := Run([]string{"up", "--once"}, e); code == 0 {
		t.Errorf("an empty name: exit 0, stderr %q", errOut)
	}
	if _, err := os.Stat(filepath.Join(other, "identity.json")); err == nil {
		t.Error("an empty name created a keystore")
	}
}

// TestUpMemoryLimit: up sets its soft memory limit (upMemoryLimit) unless
// GOMEMLIMIT does; --memory-limit replaces both, 0 for none.
func TestUpMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	home := t.TempDir()
	up := func(env map[string]string, args ...string) int64 {
		t.Helper()
		env["PURSUANCE_HOME"] = home
		e, _, errOut := testEnv(env, &fakeTerminal{answers: []string{"a long passphrase", "a long passphrase"}})
		e.Stdin = strings.NewReader("Alice\n")
		if code := Run(append([]string{"up", "--once"}, args...), e); code != 0 {
			t.Fatalf("up %q: exit %d: %s", args, code, errOut)
		}
		return debug.SetMemoryLimit(-1)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if got := up(map[string]string{}); got != upMemoryLimit {
		t.Errorf("up: memory limit %d, want %d", got, upMemoryLimit)
	}
	pass := map[string]string{"PURSUANCE_PASSPHRASE": "a long passphrase"}
	if got := up(pass, "--memory-limit", "123456789"); got != 123456789 {
		t.Errorf("up --memory-limit 123456789: memory limit %d", got)
	}
	if got := up(pass, "--memory-limit", "0"); got != math.MaxInt64 {
		t.Errorf("up --memory-limit 0: memory limit %d, want none", got)
	}
	debug.SetMemoryLimit(555 << 20) // as GOMEMLIMIT=555MiB sets it at start
	if got := up(map[string]string{"PURSUANCE_PASSPHRASE": "a long passphrase", "GOMEMLIMIT": "555MiB"}); got != 555<<20 {
		t.Errorf("up with GOMEMLIMIT set: memory limit %d, want GOMEMLIMIT's", got)
	}
	e, _, errOut := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "a long passphrase"}, nil)
	if code := Run([]string{"up", "--once", "--memory-limit", "-1"}, e); code != 2 {
		t.Errorf("up --memory-limit -1: exit %d: %s", code, errOut)
	}
}

func TestSyncStatus(t *testing.T) {
	var s syncStatus
	if got := s.snapshot().(map[string]any); len(got) != 1 || got["tor"] != (torView{}) {
		t.Fatalf("before any round: %v (want only Tor, off)", got)
	}
	s.begin()
	s.progress("Desk", app.ProgressFetched, "http://r", uint64(10), uint64(100))
	if got := s.snapshot().(map[string]any); got["working"] != "Desk: http://r: 10 of 100" || got["done"] != uint64(10) || got["total"] != uint64(100) || got["last"] != nil || got["round_running"] != true {
		t.Fatalf("during the first round: %v", got)
	}
	s.progress("Desk", "%s: sent %d", "http://r", 5)
	if got := s.snapshot().(map[string]any); got["working"] != "Desk: http://r: sent 5" || got["total"] != nil {
		t.Fatalf("sending: %v", got)
	}
	s.record([]string{"http://r"}, []string{"http://b"}, 2)
	got := s.snapshot().(map[string]any)
	if got["working"] != nil || got["missing"] != 2 || len(got["down"].([]string)) != 1 || len(got["behind"].([]string)) != 1 || got["last"] == "" ||
		got["rounds"] != uint64(1) || got["round_running"] != nil {
		t.Fatalf("after a round: %v", got)
	}
}

// TestListenAgain: up takes the addresses of its last run again when the
// user left the flags alone, the addresses are loopback, and they are
// free; otherwise the flag's.
func TestListenAgain(t *testing.T) {
	first, err := listenAgain("127.0.0.1:0", false, "")
	if err != nil {
		t.Fatal(err)
	}
	last := "http://" + first.Addr().String() + "/"
	// Taken: a new port.
	other, err := listenAgain("127.0.0.1:0", false, last)
	if err != nil {
		t.Fatal(err)
	}
	if other.Addr().String() == first.Addr().String() {
		t.Fatal("listened twice on one address")
	}
	other.Close()
	first.Close()
	// Free: the same one.
	again, err := listenAgain("127.0.0.1:0", false, last)
	if err != nil {
		t.Fatal(err)
	}
	if again.Addr().String() != hostPort(last) {
		t.Errorf("listened on %s, want the last run's %s", again.Addr(), hostPort(last))
	}
	again.Close()
	// The user's flag wins; a non-loopback address is never taken unasked.
	for _, c := range []struct {
		changed bool
		last    string
	}{{true, last}, {false, "http://0.0.0.0:" + strings.Split(hostPort(last), ":")[1]}} {
		ln, err := listenAgain("127.0.0.1:0", c.changed, c.last)
		if err != nil {
			t.Fatal(err)
		}
		if ln.Addr().String() == hostPort(last) {
			t.Errorf("changed=%v last=%s: took the last address", c.changed, c.last)
		}
		ln.Close()
	}
}

// TestNodeFile: up's node file round-trips.
func TestNodeFile(t *testing.T) {
	home := t.TempDir()
	if nf, err := readNodeFile(home); err != nil || nf != (nodeFile{}) {
		t.Fatalf("no file: %+v %v", nf, err)
	}
	want := nodeFile{Relay: "http://127.0.0.1:2", UI: "http://127.0.0.1:1/"}
	if err := writeNodeFile(home, want); err != nil {
		t.Fatal(err)
	}
	if nf, err := readNodeFile(home); err != nil || nf != want {
		t.Fatalf("read back %+v %v, want %+v", nf, err, want)
	}
	os.WriteFile(filepath.Join(home, nodeFileName), []byte("{"), 0o600)
	if _, err := readNodeFile(home); err == nil {
		t.Error("a broken node file read without error")
	}
}

// TestNodeLock: a node runs on a home while it holds the node lock, and
// only then: the files a crashed node left, and a process that took its
// port meanwhile, do not make a node of it. A second node on the home is
// refused, told where the first one's UI is.
func TestNodeLock(t *testing.T) {
	home := t.TempDir()
	ctx := context.Background()
	// A crashed node's files, and another program on its relay's port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stale := runFile{PID: 1, Relay: "http://" + ln.Addr().String(), UI: "http://127.0.0.1:1/", Login: "http://127.0.0.1:1/login#x", Bearer: "x"}
	if err := writeNodeFile(home, nodeFile{Relay: stale.Relay, UI: stale.UI}); err != nil {
		t.Fatal(err)
	}
	if err := writeRunFile(home, stale); err != nil {
		t.Fatal(err)
	}
	if got := runningNodeRelay(home); got != "" {
		t.Errorf("a crashed node's relay is named: %q", got)
	}
	if _, ok := runningNode(home); ok {
		t.Error("a crashed node's run file is taken for a running node")
	}

	// A node takes the lock; until it wrote its run file, it is starting.
	lock, err := lockNode(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(home, runFileName))
	if _, err := lockNode(ctx, home); err == nil || !strings.Contains(err.Error(), "already starting") {
		t.Errorf("a second node while the first starts: %v", err)
	}
	ui := func() (int, string, string) {
		e, out, errOut := testEnv(map[string]string{"PURSUANCE_HOME": home}, nil)
		code := Run([]string{"ui"}, e)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := ui(); code != 1 || out != "" || !strings.Contains(errOut, "is starting") {
		t.Errorf("pursuance ui while the node starts: %d %q %q", code, out, errOut)
	}
	live := runFile{PID: os.Getpid(), Relay: "http://127.0.0.1:3", UI: "http://127.0.0.1:4/", Login: "http://127.0.0.1:4/login#y", Bearer: "y"}
	if err := writeRunFile(home, live); err != nil {
		t.Fatal(err)
	}
	if got := runningNodeRelay(home); got != live.Relay {
		t.Errorf("running node relay %q, want %q", got, live.Relay)
	}
	if code, out, _ := ui(); code != 0 || out != live.Login+"\n" {
		t.Errorf("pursuance ui: %d %q, want the login link %q", code, out, live.Login)
	}
	if fi, err := os.Stat(filepath.Join(home, runFileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("run file: %v %v, want mode 0600", fi.Mode(), err)
	}
	_, err = lockNode(ctx, home)
	if err == nil || !strings.Contains(err.Error(), "already running") || !strings.Contains(err.Error(), live.UI) {
		t.Errorf("a second node: %v", err)
	}
	// Asking whether a node runs does not keep one from starting.
	lock.Close()
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				runningNode(home)
			}
		}
	}()
	lock, err = lockNode(ctx, home)
	close(stop)
	if err != nil {
		t.Fatalf("a node while others ask whether one runs: %v", err)
	}
	lock.Close()
	if _, ok := runningNode(home); ok {
		t.Error("a stopped node is taken for a running one")
	}
	if code, out, errOut := ui(); code != 1 || out != "" || !strings.Contains(errOut, "no node is running") {
		t.Errorf("pursuance ui with no node: %d %q %q", code, out, errOut)
	}
}

// TestEveryCommandExplained: every command a user can run has a short
// description, and every one that takes arguments or does work has
// examples (`pursuance help COMMAND` shows them).
func TestEveryCommandExplained(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		path := c.CommandPath()
		if c.Hidden || !c.Runnable() || strings.HasPrefix(path, "pursuance completion") || strings.HasPrefix(path, "pursuance help") {
			return
		}
		if c.Short == "" {
			t.Errorf("%s: no short description", path)
		}
		if c.Example == "" && c.Use != "version" && c.Use != "list" && c.Use != "templates" {
			t.Errorf("%s: no examples", path)
		}
	}
	walk(NewRoot(&Env{}))
}

// TestIDRotateAsksOnce: id rotate at a terminal asks for the passphrase
// once, though it unlocks the home, re-seals the keystore and settles the
// rotation of the signing key (docs/keystore.md, version 3).
func TestIDRotateAsksOnce(t *testing.T) {
	home := t.TempDir()
	vars := map[string]string{"PURSUANCE_HOME": home}
	e, _, errOut := testEnv(vars, &fakeTerminal{answers: []string{"secret", "secret"}})
	if code := Run([]string{"id", "new", "--name", "Alice", "--insecure-test-kdf"}, e); code != 0 {
		t.Fatalf("id new exit %d: %s", code, errOut)
	}
	e, _, errOut = testEnv(vars, &fakeTerminal{answers: []string{"secret"}})
	if code := Run([]string{"--offline", "create", "--name", "Desk"}, e); code != 0 {
		t.Fatalf("create exit %d: %s", code, errOut)
	}
	term := &fakeTerminal{answers: []string{"secret", "secret", "secret"}}
	e, _, errOut = testEnv(vars, term)
	e.Rand = rand.NewChaCha8([32]byte{2}) // not the keys id new drew
	if code := Run([]string{"--offline", "id", "rotate"}, e); code != 0 {
		t.Fatalf("id rotate exit %d: %s", code, errOut)
	}
	if len(term.prompts) != 1 {
		t.Errorf("id rotate asked %d times: %q", len(term.prompts), term.prompts)
	}
	if !strings.Contains(errOut.String(), "Desk: your new key is published") {
		t.Errorf("stderr %q", errOut)
	}
}
