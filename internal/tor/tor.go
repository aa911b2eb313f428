package tor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Tor is a tor that Pursuance controls: one it started (Start), which it
// owns and which dies with it, or one that was running (Attach). It is
// safe for concurrent use.
type Tor struct {
	cc          *controlConn
	controlAddr string // where the control port is, for other processes
	socks       string // tor's SOCKS port: "host:port" or "unix:/path"
	version     string
	log         *slog.Logger
	rand        io.Reader

	// A tor Start started: its process, and its end.
	cmd    *exec.Cmd
	exited chan struct{}
	tail   *logTail

	mu        sync.Mutex
	events    []string        // subscribed event names
	published map[string]bool // addresses (without ".onion") Publish added
	uploaded  map[string]bool // of which tor uploaded a descriptor
	changed   chan struct{}   // closed and replaced when uploaded grows

	closeOnce sync.Once
	closeErr  error
}

// controlTimeout bounds connecting to a control port and authenticating.
const controlTimeout = 10 * time.Second

// Attach connects to the control port of a running tor at controlAddr
// ("host:port", or "unix:/path" for a control socket), authenticates
// (without credentials when tor asks none, else with its cookie: see
// authenticate) and finds its SOCKS port (GETINFO net/listeners/socks).
// Close then detaches, leaving that tor running; the onion services
// Publish added go with the connection.
func Attach(ctx context.Context, controlAddr string) (*Tor, error) {
	return attach(ctx, controlAddr, "", nil)
}

func attach(ctx context.Context, controlAddr, cookieFile string, log *slog.Logger) (*Tor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	network, addr := "tcp", controlAddr
	if p, ok := strings.CutPrefix(controlAddr, "unix:"); ok {
		network, addr = "unix", p
	} else if h, port, err := net.SplitHostPort(controlAddr); err == nil && strings.EqualFold(h, "localhost") {
		addr = net.JoinHostPort("127.0.0.1", port) // nothing to resolve
	} else if err != nil {
		return nil, fmt.Errorf("tor control address %q: want HOST:PORT or unix:/path", controlAddr)
	}
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("tor's control port %s does not answer (is tor running, with a ControlPort?): %w", controlAddr, err)
	}
	t := &Tor{controlAddr: controlAddr, log: log, rand: rand.Reader, published: map[string]bool{}, uploaded: map[string]bool{}, changed: make(chan struct{})}
	t.cc = newControlConn(c, t.event)
	pi, err := t.cc.authenticate(ctx, cookieFile, t.rand)
	if err != nil {
		t.cc.close()
		if errors.Is(err, ErrControlClosed) {
			return nil, fmt.Errorf("%s closed the connection: is it tor's control port? (%w)", controlAddr, err)
		}
		return nil, err
	}
	t.version = pi.version
	info, err := t.cc.getinfo(ctx, "net/listeners/socks")
	if err != nil {
		t.cc.close()
		return nil, err
	}
	t.socks, err = pickSOCKS(info["net/listeners/socks"])
	if err != nil {
		t.cc.close()
		return nil, err
	}
	return t, nil
}

// pickSOCKS picks a SOCKS listener from GETINFO net/listeners/socks, a
// list of quoted addresses: the first one.
func pickSOCKS(v string) (string, error) {
	args, err := parseArgs(v)
	if err != nil {
		return "", fmt.Errorf("tor: net/listeners/socks: %w", err)
	}
	for _, a := range args {
		if a.Key == "" && a.Value != "" {
			return a.Value, nil
		}
	}
	return "", errors.New("tor has no SOCKS port (SocksPort 0?): Pursuance needs one to connect through it")
}

// ControlAddr returns where tor's control port is ("host:port" or
// "unix:/path"), for another process to Attach to.
func (t *Tor) ControlAddr() string { return t.controlAddr }

// SOCKSAddr returns tor's SOCKS port ("host:port" or "unix:/path").
func (t *Tor) SOCKSAddr() string { return t.socks }

// Version returns the version tor reports.
func (t *Tor) Version() string { return t.version }

// Owned reports whether this process started the tor (Start) and stops
// it on Close.
func (t *Tor) Owned() bool { return t.cmd != nil }

// Dialer returns a dialer through this tor whose connections share
// circuits only with those of the same isolation string (see Dialer).
func (t *Tor) Dialer(isolation string) *Dialer {
	return NewDialer(t.socks, isolation)
}

// Status is what tor says of itself: whether it answers, and how far it
// has bootstrapped (0 to 100), in its words.
type Status struct {
	Running   bool
	Bootstrap int
	Summary   string // "Done", "Connecting to a relay", …
	Warning   string // tor's last bootstrap warning, while it has one
}

// Status asks tor how far it has bootstrapped. A tor that no longer
// answers is Running false, with the error that says why.
func (t *Tor) Status(ctx context.Context) (Status, error) {
	info, err := t.cc.getinfo(ctx, "status/bootstrap-phase")
	if err != nil {
		return Status{}, err
	}
	return parseBootstrap(info["status/bootstrap-phase"])
}

// parseBootstrap reads "NOTICE BOOTSTRAP PROGRESS=50 TAG=… SUMMARY=…" (or
// WARN, with WARNING=).
func parseBootstrap(v string) (Status, error) {
	args, err := parseArgs(v)
	if err != nil {
		return Status{}, fmt.Errorf("tor: status/bootstrap-phase: %w", err)
	}
	st := Status{Running: true}
	severity := ""
	seen := false
	for i, a := range args {
		switch {
		case i == 0 && a.Key == "":
			severity = a.Value
		case a.Key == "PROGRESS":
			n, err := strconv.Atoi(a.Value)
			if err != nil || n < 0 || n > 100 {
				return Status{}, fmt.Errorf("tor: status/bootstrap-phase: progress %q", oneLine(a.Value, 20))
			}
			st.Bootstrap, seen = n, true
		case a.Key == "SUMMARY":
			st.Summary = oneLine(a.Value, 200)
		case a.Key == "WARNING" && severity == "WARN":
			st.Warning = oneLine(a.Value, 200)
		}
	}
	if !seen {
		return Status{}, fmt.Errorf("tor: status/bootstrap-phase without progress: %q", oneLine(v, 120))
	}
	return st, nil
}

// bootstrapPoll is how often WaitBootstrapped asks.
const bootstrapPoll = 250 * time.Millisecond

// WaitBootstrapped waits until tor has bootstrapped (100%), calling
// progress (when not nil) with each status that differs from the last.
// It ends with ctx (the error then names where tor was stuck) or when
// tor stops.
func (t *Tor) WaitBootstrapped(ctx context.Context, progress func(Status)) error {
	var last Status
	tick := time.NewTicker(bootstrapPoll)
	defer tick.Stop()
	for {
		st, err := t.Status(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("tor did not bootstrap in time (at %d%%: %s)", last.Bootstrap, last.Summary)
			}
			return t.explainStop(err)
		}
		if st != last && progress != nil {
			progress(st)
		}
		last = st
		if st.Bootstrap >= 100 {
			return nil
		}
		select {
		case <-ctx.Done():
			why := last.Summary
			if last.Warning != "" {
				why += "; " + last.Warning
			}
			return fmt.Errorf("tor did not bootstrap in time: stuck at %d%% (%s); is this machine online, or is the network blocking tor? (docs/tor.md)", last.Bootstrap, why)
		case <-t.cc.done:
			return t.explainStop(t.cc.err)
		case <-tick.C:
		}
	}
}

// explainStop adds, for a tor this process started, what it logged last.
func (t *Tor) explainStop(err error) error {
	if t.tail == nil || !errors.Is(err, ErrControlClosed) {
		return err
	}
	select {
	case <-t.exited:
	case <-time.After(time.Second):
	}
	if last := t.tail.last(); last != "" {
		return fmt.Errorf("tor stopped: %s", last)
	}
	return err
}

// subscribe adds event names to those this connection receives.
func (t *Tor) subscribe(ctx context.Context, names ...string) error {
	t.mu.Lock()
	want := slices.Clone(t.events)
	for _, n := range names {
		if !slices.Contains(want, n) {
			want = append(want, n)
		}
	}
	same := len(want) == len(t.events)
	t.mu.Unlock()
	if same {
		return nil
	}
	if _, err := t.cc.do(ctx, "SETEVENTS "+strings.Join(want, " ")); err != nil {
		return err
	}
	t.mu.Lock()
	t.events = want
	t.mu.Unlock()
	return nil
}

// event handles an asynchronous event: HS_DESC UPLOADED for a service
// this connection published marks it uploaded.
func (t *Tor) event(rep *reply) {
	if len(rep.lines) == 0 {
		return
	}
	f := strings.Fields(rep.lines[0].text)
	if len(f) < 3 || f[0] != "HS_DESC" {
		return
	}
	action, id := f[1], strings.ToLower(f[2])
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.published[id] {
		return
	}
	switch action {
	case "UPLOADED":
		if !t.uploaded[id] {
			t.uploaded[id] = true
			close(t.changed)
			t.changed = make(chan struct{})
			t.log.Info("onion service descriptor uploaded", "onion", id+".onion")
		}
	case "FAILED":
		t.log.Debug("onion service descriptor upload failed", "onion", id+".onion", "event", oneLine(rep.lines[0].text, 300))
	}
}

// closeWait bounds how long Close waits for a tor it started to exit
// before killing it.
const closeWait = 5 * time.Second

// Close stops a tor that Start started (closing its owning control
// connection makes it exit; it is killed if it lingers). From an attached
// tor it removes the onion services this process published (DEL_ONION,
// waiting for each answer) and detaches. It is safe to call more than
// once.
func (t *Tor) Close() error {
	t.closeOnce.Do(func() {
		if t.cmd == nil {
			t.unpublish()
		}
		t.closeErr = t.cc.close()
		if t.cmd == nil {
			return
		}
		select {
		case <-t.exited:
		case <-time.After(closeWait):
			t.cmd.Process.Kill()
			<-t.exited
		}
		t.closeErr = nil
	})
	return t.closeErr
}

// unpublishWait bounds how long Close waits for an attached tor to
// remove each onion service this process published.
const unpublishWait = 2 * time.Second

// unpublish removes, from an attached tor, the onion services this
// process published, and waits for tor to say so: closing the control
// connection would remove them too, but in tor's own time, and a caller
// that has returned from Close may rely on their being gone.
func (t *Tor) unpublish() {
	t.mu.Lock()
	ids := make([]string, 0, len(t.published))
	for id := range t.published {
		ids = append(ids, id)
	}
	t.mu.Unlock()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), unpublishWait)
		if _, err := t.cc.do(ctx, "DEL_ONION "+id); err != nil {
			t.log.Debug("removing the onion service", "onion", id+".onion", "err", oneLine(err.Error(), 200))
		}
		cancel()
	}
}

// Done is closed when the control connection ends: tor stopped, or
// Close was called.
func (t *Tor) Done() <-chan struct{} { return t.cc.done }
