package torbench

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/internal/cli"
	"github.com/pursuance/pursuance/internal/tor"
	"github.com/pursuance/pursuance/internal/tortest"
)

// Bounds of the harness's waits: generous, so that a loaded 2-core
// machine does not fail a run that works; a path that is broken fails
// them all the same.
const (
	// reachTimeout bounds waiting for an onion service to answer once
	// its descriptor is uploaded, retries included (tor asks again for
	// a descriptor it did not find after 5 s in a testing network).
	reachTimeout = 2 * time.Minute
	// startTimeout bounds a command's start (up, relay) to the line it
	// prints when ready, tor's bootstrap and publication included.
	startTimeout = 3 * time.Minute
	// reachRetry is the pause between two attempts to reach a service.
	reachRetry = 200 * time.Millisecond
	// passphrase of the homes the harness makes (with the test KDF).
	passphrase = "pw"
)

// lineLog is an io.Writer (a command's stderr) that keeps its lines and
// lets a test wait for one.
type lineLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []string
	more  chan struct{} // closed and replaced at each line
}

func newLineLog() *lineLog { return &lineLog{more: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		i := bytes.IndexByte(l.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.buf.Next(i + 1)[:i]))
		close(l.more)
		l.more = make(chan struct{})
	}
	return len(p), nil
}

// wait returns the first submatch of re in the first line, from line
// index from on, that matches it, and that line's index.
func (l *lineLog) wait(ctx context.Context, re *regexp.Regexp, from int) (string, int, error) {
	for {
		l.mu.Lock()
		for i := from; i < len(l.lines); i++ {
			if m := re.FindStringSubmatch(l.lines[i]); m != nil {
				l.mu.Unlock()
				return m[len(m)-1], i, nil
			}
		}
		from = len(l.lines)
		more := l.more
		l.mu.Unlock()
		select {
		case <-more:
		case <-ctx.Done():
			return "", 0, fmt.Errorf("no line matching %s in time: %w", re, ctx.Err())
		}
	}
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

var (
	// onionLine is the line up and relay print once their onion service
	// is published (its descriptor uploaded).
	onionLine = regexp.MustCompile(`^(http://[a-z2-7]{56}\.onion)$`)
	// loopbackLine is relay's line for its clear-net listener.
	loopbackLine = regexp.MustCompile(`^(http://127\.0\.0\.1:[0-9]+)$`)
	// nodeRelayLine is up's line naming its embedded relay.
	nodeRelayLine = regexp.MustCompile(`^Relay for other members' nodes.*: (http://127\.0\.0\.1:[0-9]+)$`)
)

// command is a pursuance command running in this process (cli.Run), as
// the binary would run it: the product's own code from flags to tor.
type command struct {
	stderr *lineLog
	cancel context.CancelFunc
	done   chan int // its exit status
	once   sync.Once
}

// runCommand runs pursuance args in this process with the environment
// vars until stop (or the test's end).
func runCommand(t *testing.T, vars map[string]string, args ...string) *command {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &command{stderr: newLineLog(), cancel: cancel, done: make(chan int, 1)}
	e := &cli.Env{
		Stdin:   strings.NewReader(""),
		Stdout:  io.Discard,
		Stderr:  c.stderr,
		Getenv:  func(k string) string { return vars[k] },
		Rand:    rand.Reader,
		Context: ctx,
	}
	go func() { c.done <- cli.Run(args, e) }()
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop ends the command (as SIGTERM would) and waits for it, its tor
// stopped with it.
func (c *command) stop(t *testing.T) {
	t.Helper()
	c.once.Do(func() {
		c.cancel()
		select {
		case code := <-c.done:
			if code != 0 {
				t.Errorf("the command exited with status %d:\n%s", code, c.stderr)
			}
		case <-time.After(time.Minute):
			t.Errorf("the command did not stop within a minute:\n%s", c.stderr)
		}
	})
}

// torrcFile writes the private network's client lines to a file for
// PURSUANCE_TORRC, after checking them (tortest.CheckTorrc).
func torrcFile(t *testing.T, n *tortest.Network) string {
	t.Helper()
	lines := n.ClientTorrc()
	if err := tortest.CheckTorrc(lines); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "torrc")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// onionRelay is `pursuance relay --onion` in this process: one relay
// server, on a loopback port and, through its own tor, as an onion
// service.
type onionRelay struct {
	Loopback, Onion string // URLs
}

func startOnionRelay(t *testing.T, n *tortest.Network) onionRelay {
	t.Helper()
	if err := tortest.CheckIsolated(); err != nil {
		t.Fatal(err)
	}
	c := runCommand(t, map[string]string{"PURSUANCE_TORRC": torrcFile(t, n)},
		"relay", "--onion", "--listen", "127.0.0.1:0", "--data", t.TempDir(),
		// Every catch-up run appends a new pursuance's topic.
		"--new-topics-per-hour", "10000")
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	lo, _, err := c.stderr.wait(ctx, loopbackLine, 0)
	if err != nil {
		t.Fatalf("relay: %v\n%s", err, c.stderr)
	}
	onion, _, err := c.stderr.wait(ctx, onionLine, 0)
	if err != nil {
		t.Fatalf("relay --onion: %v\n%s", err, c.stderr)
	}
	return onionRelay{Loopback: lo, Onion: onion}
}

// memberTor starts a member's own tor with the product's launcher
// (tor.Start), in the private network, and waits for it to bootstrap.
func memberTor(t *testing.T, n *tortest.Network) *tor.Tor {
	t.Helper()
	lines := n.ClientTorrc()
	if err := tortest.CheckTorrc(lines); err != nil {
		t.Fatal(err)
	}
	if err := tortest.CheckIsolated(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tc, err := tor.Start(ctx, tor.Config{DataDir: filepath.Join(t.TempDir(), "tor"), Torrc: lines, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	if err := tc.WaitBootstrapped(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return tc
}

// torDial is what `--tor` makes a member's connections (internal/cli's
// dial): every one through its tor's SOCKS port, isolated by pursuance.
func torDial(tc *tor.Tor) app.DialFunc {
	return func(ctx context.Context, network, addr, isolation string) (net.Conn, error) {
		return tc.Dialer(isolation).DialContext(ctx, network, addr)
	}
}

// waitReachable asks url's /healthz through hc until it answers 200.
func waitReachable(ctx context.Context, hc *http.Client, url string) error {
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url+"/healthz", nil)
		resp, err := hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		cancel()
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not reachable in time: %w", url, errors.Join(last, ctx.Err()))
		case <-time.After(reachRetry):
		}
	}
}

// newHome makes a member's home with an identity (the test KDF: opening
// it costs nothing worth measuring).
func newHome(t *testing.T, name string) (string, *identity.Identity) {
	t.Helper()
	dir := t.TempDir()
	id, err := identity.New(name, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.Create(dir, id, []byte(passphrase), keystore.InsecureTestKDF, rand.Reader); err != nil {
		t.Fatal(err)
	}
	return dir, id
}

// openNode opens a member's node on a new home, its connections made by
// dial (nil: directly).
func openNode(t *testing.T, name string, dial app.DialFunc) *app.Node {
	t.Helper()
	dir, id := newHome(t, name)
	nd, err := app.Open(context.Background(), dir, id, app.Options{Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	return nd
}
