package torsuite

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/cli"
	"github.com/pursuance/pursuance/internal/tortest"
)

// envCLI makes the test binary act as the pursuance command.
const envCLI = "PURSUANCE_TORSUITE_CLI"

// TestMain runs the tests in tortest's isolated namespace, or, for the
// processes the tests start, is the pursuance command.
func TestMain(m *testing.M) {
	if os.Getenv(envCLI) == "1" {
		os.Exit(cli.Main())
	}
	tortest.Main(m)
}

// Bounds of the waits: generous, for a loaded 2-core machine running
// other packages' tests beside these, and far below go test's timeout.
const (
	waitLine = 90 * time.Second // for a line a process prints
	stopWait = 20 * time.Second // from SIGTERM to the end of a process
)

// proc is a long-running pursuance process whose stderr lines a test
// waits for.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	mu      sync.Mutex
	lines   []string
	at      []time.Duration // since started, when each line came
	more    chan struct{}   // closed and replaced at each line
	ended   chan struct{}   // closed at the end of stderr
	waited  chan struct{}   // closed when the process has been waited for
	err     error           // its exit, once waited
}

// command returns the pursuance command with args and env, as this test
// binary.
func command(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	return cmd
}

// start runs pursuance with args until the test ends (SIGTERM, then
// SIGKILL after stopWait).
func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: command(t, env, args...), more: make(chan struct{}), ended: make(chan struct{}), waited: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.ended)
		s := bufio.NewScanner(stderr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, s.Text())
			p.at = append(p.at, time.Since(p.started))
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	go func() {
		<-p.ended // Wait closes the pipe: read it all first
		p.err = p.cmd.Wait()
		close(p.waited)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and waits for the process to end; an exit other
// than a clean one fails the test.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.waited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.waited:
		if p.err != nil {
			t.Errorf("%s stopped with %v; stderr:\n%s", p.name, p.err, p.stderr())
		}
	case <-time.After(stopWait):
		_ = p.cmd.Process.Kill()
		<-p.waited
		t.Errorf("%s did not stop within %v of SIGTERM; stderr:\n%s", p.name, stopWait, p.stderr())
	}
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// wait returns the last submatch of re in a line of stderr (the whole
// match when re has none), waiting up to waitLine for it.
func (p *proc) wait(t *testing.T, re string) string {
	t.Helper()
	m, _ := p.waitAt(t, re)
	return m
}

// waitAt is wait, and says how long after the start the line came.
func (p *proc) waitAt(t *testing.T, re string) (string, time.Duration) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(waitLine)
	for i := 0; ; {
		p.mu.Lock()
		for ; i < len(p.lines); i++ {
			if m := rx.FindStringSubmatch(p.lines[i]); m != nil {
				at := p.at[i]
				p.mu.Unlock()
				return m[len(m)-1], at
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
				t.Fatalf("%s ended without printing %q; stderr:\n%s", p.name, re, p.stderr())
			}
		case <-deadline:
			t.Fatalf("%s did not print %q within %v; stderr:\n%s", p.name, re, waitLine, p.stderr())
		}
	}
}

// run runs pursuance to its end and returns its exit status, stdout and
// stderr.
func run(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := command(t, env, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// must runs pursuance, fails the test unless it exits 0, and returns its
// stdout, trimmed.
func must(t *testing.T, env []string, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, env, args...)
	if code != 0 {
		t.Fatalf("pursuance %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return strings.TrimSpace(out)
}

// eventually calls check until it reports true, for up to within; it
// fails the test with check's last note otherwise. It returns how long it
// took.
func eventually(t *testing.T, what string, within time.Duration, check func() (bool, string)) time.Duration {
	t.Helper()
	begin := time.Now()
	for {
		ok, note := check()
		if ok {
			return time.Since(begin)
		}
		if time.Since(begin) > within {
			t.Fatalf("%s: not within %v; last: %s", what, within, note)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
