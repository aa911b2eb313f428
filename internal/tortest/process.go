package tortest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// stopGrace is how long a tor has to exit after SIGTERM before it is
	// killed. ShutdownWaitLength 0 makes even relays exit at once.
	stopGrace = 5 * time.Second
	// outputCap bounds what is kept of a tor's stdout and stderr (its
	// complaints about the torrc, before it opens its log).
	outputCap = 64 << 10
	// logTailLines is how much of a tor's log a failure shows.
	logTailLines = 25
	// noticeLog is the file, in a tor's DataDirectory, it logs to.
	noticeLog = "notice.log"
)

// process is one tor this package started.
type process struct {
	name string
	dir  string // its DataDirectory
	cmd  *exec.Cmd
	out  *cappedBuffer
	done chan struct{} // closed once it has exited
	err  error         // how it exited, once done is closed
}

// running holds every tor process not yet known to have exited, so that
// Main can stop what tests left behind.
var running struct {
	sync.Mutex
	procs map[*process]bool
}

// startTor writes torrc (checked by CheckTorrc) into dir, which is the
// DataDirectory the torrc names, and starts tor on it once the isolation
// check passes. The tor reads no other configuration: an empty defaults
// file replaces the system's torrc-defaults, and -f replaces /etc/tor/torrc.
func startTor(name, dir string, torrc []string) (*process, error) {
	// Check before writing anything, as spawn checks again before the fork.
	if err := checkIsolated(); err != nil {
		return nil, err
	}
	tor, _, err := binaries()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "torrc")
	if err := writeTorrc(path, torrc); err != nil {
		return nil, err
	}
	defaults := filepath.Join(dir, "torrc-defaults")
	if err := os.WriteFile(defaults, nil, 0o600); err != nil {
		return nil, fmt.Errorf("tortest: %w", err)
	}
	p := &process{name: name, dir: dir, out: &cappedBuffer{max: outputCap}, done: make(chan struct{})}
	p.cmd = exec.Command(tor, "--defaults-torrc", defaults, "-f", path)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := spawn(p.cmd); err != nil {
		return nil, fmt.Errorf("tortest: start %s: %w", name, err)
	}
	running.Lock()
	if running.procs == nil {
		running.procs = map[*process]bool{}
	}
	running.procs[p] = true
	running.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		running.Lock()
		delete(running.procs, p)
		running.Unlock()
		close(p.done)
	}()
	return p, nil
}

// exited returns an error saying how p exited, or nil while it runs.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("tortest: %s exited (%v): %s", p.name, p.err, p.diagnostics())
	default:
		return nil
	}
}

// stop ends p: SIGTERM to its process group, SIGKILL after stopGrace. It
// returns once p has exited, and may be called more than once.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = signalGroup(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = signalGroup(p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// diagnostics returns what p printed and the end of its log, for an error.
func (p *process) diagnostics() string {
	var b strings.Builder
	if out := strings.TrimSpace(p.out.String()); out != "" {
		b.WriteString("output: " + lastLines(out, logTailLines))
	}
	if tail := p.logTail(logTailLines); tail != "" {
		b.WriteString("\nlog " + filepath.Join(p.dir, noticeLog) + ":\n" + tail)
	}
	return b.String()
}

// logTail returns the last n lines of p's notice log.
func (p *process) logTail(n int) string {
	b, err := os.ReadFile(filepath.Join(p.dir, noticeLog))
	if err != nil {
		return ""
	}
	return lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stopAll stops every tor still running and names them.
func stopAll() []string {
	running.Lock()
	var left []*process
	for p := range running.procs {
		left = append(left, p)
	}
	running.Unlock()
	var names []string
	for _, p := range left {
		names = append(names, p.name)
		p.stop()
	}
	return names
}

// cappedBuffer keeps the first max bytes written to it.
type cappedBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// teardown runs after the tests in the namespace: it stops the shared
// network and every tor left running, and reports any tor still alive in
// this PID namespace afterwards.
func teardown(failed bool) error {
	var errs []error
	closeShared(failed)
	if left := stopAll(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("tortest: tor processes %s were still running after the tests; stopped them", strings.Join(left, ", ")))
	}
	stray, err := strayTors()
	if err != nil {
		errs = append(errs, fmt.Errorf("tortest: look for tor processes: %w", err))
	}
	if len(stray) > 0 {
		errs = append(errs, fmt.Errorf("tortest: tor processes %v still run in the tests' namespace after every one was stopped", stray))
	}
	return errors.Join(errs...)
}
