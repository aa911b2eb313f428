package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// torProcess is a pursuance process whose stderr lines a test waits for.
type torProcess struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced at each line
	ended chan struct{} // closed at the end of stderr
}

// startTorProcess runs pursuance with args and env until the test ends
// (SIGTERM, then SIGKILL after 10 s).
func startTorProcess(t *testing.T, env []string, args ...string) *torProcess {
	t.Helper()
	bin, err := exec.LookPath("pursuance")
	if err != nil {
		t.Fatal(err)
	}
	p := &torProcess{cmd: exec.Command(bin, args...), more: make(chan struct{}), ended: make(chan struct{})}
	p.cmd.Env = env
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.ended)
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, s.Text())
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and waits for the process to end.
func (p *torProcess) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s stopped with %v; stderr:\n%s", p.cmd.Args[1:], err, p.stderr())
		}
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
		t.Errorf("%s did not stop within 10 s of SIGTERM", p.cmd.Args[1:])
	}
}

func (p *torProcess) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// wait returns the first submatch of re in a line of stderr, waiting up
// to a minute for it.
func (p *torProcess) wait(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(time.Minute)
	for i := 0; ; {
		p.mu.Lock()
		for ; i < len(p.lines); i++ {
			if m := rx.FindStringSubmatch(p.lines[i]); m != nil {
				p.mu.Unlock()
				return m[len(m)-1]
			}
		}
		more := p.more
		p.mu.Unlock()
		select {
		case <-more:
		case <-p.ended:
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if i == n {
				t.Fatalf("%s ended without printing %q; stderr:\n%s", p.cmd.Args[1:], re, p.stderr())
			}
		case <-deadline:
			t.Fatalf("%s did not print %q in a minute; stderr:\n%s", p.cmd.Args[1:], re, p.stderr())
		}
	}
}

// run runs pursuance to its end and returns its exit status, stdout and
// stderr.
func runPursuance(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	bin, err := exec.LookPath("pursuance")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

const onionURL = `^(http://[a-z2-7]{56}\.onion)$`

// TestTorProcesses runs real pursuance processes over faketor, the test
// double of tor (run as the tor binary: PURSUANCE_TOR_BINARY), whose
// pretend network joins their onion services through a shared
// directory: a relay as an onion service only, stable across restarts;
// a member's node as an onion service (up --tor) that `tor status`
// reports; an invite naming only the node's onion address, which a
// newcomer cannot use without Tor and joins with --tor. (Real tor, in a
// private network: the lead's end-to-end scenario over internal/tortest.)
func TestTorProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir := t.TempDir()
	fake, err := exec.LookPath("pursuance-faketor")
	if err != nil {
		t.Fatal(err)
	}
	torrc := filepath.Join(dir, "torrc")
	os.WriteFile(torrc, []byte("FakeTorNetwork "+filepath.Join(dir, "network")+"\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "network"), 0o700)
	env := append(os.Environ(), "PURSUANCE_PASSPHRASE=pw", "PURSUANCE_TOR_BINARY="+fake, "PURSUANCE_TORRC="+torrc)

	// A relay as an onion service only: no clear-net listener.
	data := filepath.Join(dir, "relay")
	if code, _, errOut := runPursuance(t, env, "relay", "--onion-only", "--listen", "127.0.0.1:0", "--data", data); code != 2 || !strings.Contains(errOut, "--onion-only refuses clear-net listeners") {
		t.Errorf("--onion-only with --listen: exit %d: %s", code, errOut)
	}
	rp := startTorProcess(t, env, "relay", "--onion-only", "--data", data)
	relayURL := rp.wait(t, onionURL)
	if strings.Contains(rp.stderr(), "http://127.0.0.1") {
		t.Errorf("an onion-only relay printed a clear-net URL:\n%s", rp.stderr())
	}
	for _, f := range []string{"onion.key", "onion.sock"} {
		if fi, err := os.Stat(filepath.Join(data, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
	rp.stop(t)
	rp = startTorProcess(t, env, "relay", "--onion-only", "--data", data)
	if again := rp.wait(t, onionURL); again != relayURL {
		t.Errorf("the relay's onion address changed on restart: %s, then %s", relayURL, again)
	}

	// Alice founds a pursuance on the relay, through her own tor.
	alice, bob := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	for _, h := range []string{alice, bob} {
		if code, _, errOut := runPursuance(t, env, "--home", h, "id", "new", "--name", filepath.Base(h), "--insecure-test-kdf"); code != 0 {
			t.Fatal(errOut)
		}
	}
	if code, _, errOut := runPursuance(t, env, "--home", alice, "--tor", "create", "--name", "Desk", "--relay", relayURL); code != 0 || strings.Contains(errOut, "unreachable") || strings.Contains(errOut, "onion service") {
		t.Fatalf("create on the onion relay with --tor: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(alice, "tor", "torrc")); err != nil {
		t.Errorf("alice's command did not run its tor in her home: %v", err)
	}

	// Her node, as an onion service.
	node := startTorProcess(t, env, "--home", alice, "up", "--tor", "--interval", "1h")
	nodeOnion := node.wait(t, `other members' nodes reach it at (http://[a-z2-7]{56}\.onion)`)
	node.wait(t, "^"+regexp.QuoteMeta(nodeOnion)+"$") // reachable
	code, out, errOut := runPursuance(t, env, "--home", alice, "tor", "status", "--json")
	var st struct {
		Running   bool
		Bootstrap int
		Onion     string
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || !st.Running || st.Bootstrap != 100 || "http://"+st.Onion != nodeOnion {
		t.Errorf("tor status --json with the node up: exit %d, %s %s (want running, 100, %s)", code, out, errOut, nodeOnion)
	}
	if _, err := os.Stat(filepath.Join(alice, "relay", "onion.sock")); err != nil {
		t.Errorf("the node's onion socket: %v", err)
	}

	// A pursuance with no relay: the invite names the node's onion address.
	if code, _, errOut := runPursuance(t, env, "--home", alice, "create", "--name", "Cell"); code != 0 {
		t.Fatal(errOut)
	}
	code, invite, errOut := runPursuance(t, env, "--home", alice, "invite", "Cell", "--role", "researcher")
	if code != 0 || !strings.Contains(errOut, "needs Tor") || !strings.Contains(errOut, nodeOnion) {
		t.Fatalf("invite with the node up --tor: exit %d: %s", code, errOut)
	}
	invite = strings.TrimSpace(invite)
	if code, _, errOut := runPursuance(t, env, "--home", bob, "join", invite); code != 1 || !strings.Contains(errOut, "needs Tor") {
		t.Errorf("join without Tor: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runPursuance(t, env, "--home", bob, "--tor", "join", invite); code != 0 {
		t.Fatalf("join with --tor: exit %d: %s", code, errOut)
	}
	code, out, _ = runPursuance(t, env, "--home", bob, "members", "Cell", "--json")
	if code != 0 || !strings.Contains(out, `"alice"`) || !strings.Contains(out, `"bob"`) {
		t.Errorf("bob's view of Cell after joining through alice's onion address: %s", out)
	}
	// The node's onion key is not in the home (it is derived from the
	// identity), and its address only in the run file while it runs.
	onionAt := func() []string {
		return filesContaining(t, alice, strings.TrimPrefix(nodeOnion, "http://"), "ED25519-V3:")
	}
	if got := onionAt(); len(got) != 1 || got[0] != "running.json" {
		t.Errorf("the node's onion address or key in %v, want running.json only", got)
	}
	t.Logf("relay %s, alice's node %s; bob joined Cell with a code naming only the node", relayURL, nodeOnion)
	node.stop(t)
	if got := onionAt(); len(got) != 0 {
		t.Errorf("the stopped node's onion address or key in %v", got)
	}
	rp.stop(t)
}

// filesContaining returns the files under dir (relative paths) whose name
// or content holds any of the strings.
func filesContaining(t *testing.T, dir string, strs ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		for _, s := range strs {
			if bytes.Contains(b, []byte(s)) || strings.Contains(rel, s) {
				out = append(out, rel)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
