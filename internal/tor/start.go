package tor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotInstalled is returned by Start when there is no tor binary. Its
// text is the one line to show the user.
var ErrNotInstalled = errors.New("tor is not installed: on Debian or Ubuntu, `sudo apt-get install tor`; elsewhere, see docs/tor.md")

// Config is how Start runs tor.
type Config struct {
	// Binary is the tor program: "" is "tor" from PATH.
	Binary string
	// DataDir is tor's DataDirectory, created with mode 0700; Start
	// writes its torrc there too.
	DataDir string
	// Torrc are extra torrc lines, after Start's own (tests: the private
	// network's).
	Torrc []string
	// Logger receives tor's log (its warnings at Warn, the rest at
	// Debug); nil: dropped.
	Logger *slog.Logger
}

// Files Start keeps in DataDir.
const (
	torrcName       = "torrc"
	defaultsName    = "torrc-defaults" // empty: no system defaults apply
	controlPortName = "control-port"
	cookieName      = "control_auth_cookie"
)

// startTimeout bounds how long Start waits for tor's control port.
const startTimeout = time.Minute

// Start starts a tor that this process owns: its SOCKS and control ports
// on loopback (ports tor picks), cookie authentication, and the process
// ending with this one (TAKEOWNERSHIP on the control connection, and
// __OwningControllerProcess should that connection outlive a crash). It
// returns once the control port answers, before tor has bootstrapped
// (WaitBootstrapped). A missing tor is ErrNotInstalled; a tor that exits
// at once is an error with its last log line.
//
// Start refuses a configuration with TestingTorNetwork outside a network
// namespace that holds only loopback, and, in a test binary, a real tor
// configured without it (docs/tor.md, "Safety").
func Start(ctx context.Context, cfg Config) (*Tor, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("tor: no data directory")
	}
	for _, l := range cfg.Torrc {
		if strings.ContainsAny(l, "\r\n\x00") {
			return nil, fmt.Errorf("tor: a torrc line with a line break: %q", oneLine(l, 80))
		}
	}
	bin, err := lookTor(cfg.Binary)
	if err != nil {
		return nil, err
	}
	fake, err := probeTor(ctx, bin)
	if err != nil {
		return nil, err
	}
	if err := checkSafety(cfg.Torrc, fake); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tor's data directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // tor refuses one others can read
		return nil, fmt.Errorf("tor's data directory: %w", err)
	}
	portFile := filepath.Join(dir, controlPortName)
	cookieFile := filepath.Join(dir, cookieName)
	if err := os.Remove(portFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	torrc := torrcLines(dir, os.Getpid(), cfg.Torrc)
	if err := writeFileAtomic(filepath.Join(dir, torrcName), []byte(strings.Join(torrc, "\n")+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("tor's torrc: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, defaultsName), nil, 0o600); err != nil {
		return nil, fmt.Errorf("tor's torrc: %w", err)
	}

	cmd := exec.Command(bin, "-f", filepath.Join(dir, torrcName), "--defaults-torrc", filepath.Join(dir, defaultsName))
	ownProcessGroup(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	tail := &logTail{}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("tor: starting %s: %w", bin, err)
	}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		tail.copy(out, log)
	}()
	exited := make(chan struct{})
	go func() {
		<-logged // Wait closes the pipe: read it all first
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	log.Info("tor starting", "binary", bin, "data", dir)

	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	controlAddr, err := waitControlPort(sctx, portFile, exited)
	if err != nil {
		stop()
		if last := tail.last(); last != "" && errors.Is(err, errExited) {
			return nil, fmt.Errorf("tor exited at start: %s", last)
		}
		return nil, err
	}
	t, err := attach(sctx, controlAddr, cookieFile, log)
	if err != nil {
		stop()
		return nil, err
	}
	t.cmd, t.exited, t.tail = cmd, exited, tail
	// Tor exits as soon as this connection closes, however this process
	// ends.
	if _, err := t.cc.do(sctx, "TAKEOWNERSHIP"); err != nil {
		t.Close()
		return nil, err
	}
	log.Info("tor started", "version", t.version, "control", controlAddr, "socks", t.socks, "pid", cmd.Process.Pid)
	return t, nil
}

// lookTor finds the tor binary.
func lookTor(name string) (string, error) {
	if name == "" {
		name = "tor"
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		if name == "tor" {
			return "", ErrNotInstalled
		}
		return "", fmt.Errorf("tor: no tor program at %s: %w", name, ErrNotInstalled)
	}
	return bin, nil
}

// testDoubleMark is what a test double of tor prints in its --version, so
// that Start lets tests run it without a private network's configuration
// (internal/tor/faketor).
const testDoubleMark = "pursuance test double"

// probeTor runs `tor --version`, which reads no configuration and opens
// no connection, and reports whether bin is a test double.
func probeTor(ctx context.Context, bin string) (fake bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return false, fmt.Errorf("tor: %s --version failed (%v): is it tor?", bin, err)
	}
	s := string(out)
	if !strings.Contains(s, "Tor version") {
		return false, fmt.Errorf("tor: %s does not say it is tor (its --version: %q)", bin, oneLine(s, 80))
	}
	return strings.Contains(s, testDoubleMark), nil
}

// testnetOnlyEnv, when set in the environment, makes Start refuse any
// real tor without TestingTorNetwork, as it does in a test binary: test
// harnesses set it for the processes they run.
const testnetOnlyEnv = "PURSUANCE_TOR_TESTNET_ONLY"

// errPublicFromTest is Start's refusal to reach the public network from
// a test.
var errPublicFromTest = errors.New("tor: refusing to start a tor that could reach the public Tor network from a test (its configuration has no TestingTorNetwork): tests run tor in internal/tortest's private network")

// isolatedNetwork is onlyLoopback; tests that run inside an isolated
// namespace (internal/tortest) replace it to check the refusal outside
// one.
var isolatedNetwork = onlyLoopback

// checkSafety refuses what could reach the public Tor network from a
// test, or a private test network's configuration outside an isolated
// network namespace.
func checkSafety(torrc []string, fake bool) error {
	testnet := false
	for _, l := range torrc {
		f := strings.Fields(l)
		if len(f) >= 1 && strings.EqualFold(f[0], "TestingTorNetwork") && (len(f) == 1 || f[1] != "0") {
			testnet = true
		}
	}
	if testnet {
		if err := isolatedNetwork(); err != nil {
			return fmt.Errorf("tor: refusing to start a tor configured for a private test network (TestingTorNetwork) here: %w", err)
		}
		return nil
	}
	if !fake && (inTest() || os.Getenv(testnetOnlyEnv) != "") {
		return errPublicFromTest
	}
	return nil
}

// torrcLines returns the torrc of a tor Start runs in dir.
func torrcLines(dir string, owner int, extra []string) []string {
	lines := []string{
		"# Written by Pursuance at each start of this tor (docs/tor.md); edits are lost.",
		"DataDirectory " + torrcValue(dir),
		"ClientOnly 1",
		// IsolateSOCKSAuth is tor's default; said here because the
		// isolation of pursuances rests on it. ExtendedErrors: onion
		// failures get their own SOCKS codes.
		"SocksPort auto IsolateSOCKSAuth ExtendedErrors",
		"ControlPort auto",
		"ControlPortWriteToFile " + torrcValue(filepath.Join(dir, controlPortName)),
		"CookieAuthentication 1",
		"CookieAuthFile " + torrcValue(filepath.Join(dir, cookieName)),
		"__OwningControllerProcess " + strconv.Itoa(owner),
		"Log notice stdout",
	}
	return append(lines, extra...)
}

// torrcValue quotes a value for a torrc when it needs it.
func torrcValue(s string) string {
	if strings.ContainsAny(s, " \t\"\\#") {
		return quote(s)
	}
	return s
}

// errExited: tor exited before its control port answered.
var errExited = errors.New("tor exited at start")

// waitControlPort waits for tor to write its control port's address to
// file ("PORT=127.0.0.1:9051").
func waitControlPort(ctx context.Context, file string, exited <-chan struct{}) (string, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(file); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if a, ok := strings.CutPrefix(strings.TrimSpace(l), "PORT="); ok && a != "" {
					return a, nil
				}
				if a, ok := strings.CutPrefix(strings.TrimSpace(l), "UNIX_PORT="); ok && a != "" {
					return "unix:" + a, nil
				}
			}
		}
		select {
		case <-exited:
			return "", errExited
		case <-ctx.Done():
			return "", fmt.Errorf("tor's control port did not open in time: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// logTail copies tor's log to a logger and keeps its last lines.
type logTail struct {
	mu    sync.Mutex
	lines []string
	warn  string // the last warning or error
}

const tailLines = 20

func (lt *logTail) copy(r io.Reader, log *slog.Logger) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 4096), maxLine)
	for s.Scan() {
		line := oneLine(s.Text(), 400)
		level := slog.LevelDebug
		if strings.Contains(line, "[warn]") || strings.Contains(line, "[err]") {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "tor", "log", line)
		lt.mu.Lock()
		lt.lines = append(lt.lines, line)
		if len(lt.lines) > tailLines {
			lt.lines = lt.lines[1:]
		}
		if level == slog.LevelWarn {
			lt.warn = line
		}
		lt.mu.Unlock()
	}
	io.Copy(io.Discard, r)
}

// last returns tor's last warning, else its last line, without the time
// stamp.
func (lt *logTail) last() string {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	l := lt.warn
	if l == "" && len(lt.lines) > 0 {
		l = lt.lines[len(lt.lines)-1]
	}
	if i := strings.Index(l, "["); i >= 0 {
		l = l[i:]
	}
	return l
}
