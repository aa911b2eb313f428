package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/internal/nodesock"
	"github.com/pursuance/pursuance/internal/tor"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/web"
)

// upGCPercent is the node's GOGC unless the environment sets one. What
// it holds is mostly the folded states of its pursuances, long-lived:
// collecting when the heap has grown by half (not doubled) keeps its
// memory near what is live (at a million events, the difference between
// about 1.5 and 2 times the state), for a little more collector work
// while a fold allocates (docs/fold.md, "What a state keeps of each
// event").
const upGCPercent = 50

// upMemoryLimit is the node's soft memory limit (as GOMEMLIMIT) unless
// the environment or --memory-limit sets one. Without it the runtime keeps
// what a load or a large first push once took (the collector returns
// freed pages slowly): at a million events, 1.9 GB resident against
// ~1.0 GB with it. A home whose state alone is larger (several million
// events) collects more often near the limit, at most half the CPU (the
// runtime's bound), and should raise it (docs/fold.md, "Memory of up").
const upMemoryLimit = 800 << 20

func newUpCmd(e *Env) *cobra.Command {
	var (
		listen, relayListen string
		interval            time.Duration
		once                bool
		memoryLimit         int64
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start this member's node and web UI: background sync, a relay for peers, the UI on localhost",
		Long: `Start this member's node: it syncs every pursuance on this home with its
relays in the background, and runs an embedded relay that holds everything
this member has, so other members can resync from it as a peer
(` + "`pursuance sync --peer URL`" + `) when the relays have pruned or lost events. It
runs until Ctrl-C. Other commands keep working while it runs (it takes the
home only during each round); a second up on the same home refuses, and
says where the running node's web UI is.

It serves the web UI on --listen (127.0.0.1, this machine only). When
ready, it prints on stderr the embedded relay's URL (for other members'
nodes, not for a browser) and the UI's address, and on stdout a login link
for the UI: open it in your browser. The link works once; ` + "`pursuance ui`" + `
prints a new one. Nothing in the UI shows without logging in, so other
users of this machine see nothing (docs/web.md).

Without an identity, up asks for a name and a passphrase at a terminal;
elsewhere it says how to create one and fails.`,
		Example: `  pursuance up
  pursuance --home /tmp/bob up --relay-listen 127.0.0.1:8766 --interval 30s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e.keeps = true
			home, err := e.Home()
			if err != nil {
				return err
			}
			pub, err := keystore.ReadPublic(home)
			switch {
			case errors.Is(err, fs.ErrNotExist) && e.Terminal == nil:
				return fmt.Errorf("no identity on this home yet (%s): the node needs one; create it with `pursuance id new --name NAME`, then run `pursuance up` again", home)
			case errors.Is(err, fs.ErrNotExist):
				// First run at a terminal: create the identity now.
				id, err := e.firstRun(home)
				if err != nil {
					return err
				}
				e.unlocked, pub = id, id.Public()
			case err != nil:
				return err
			}
			// One node per home (the lock is released however the
			// process ends); a run file left by a crash is removed.
			lock, err := lockNode(cmd.Context(), home)
			if err != nil {
				return err
			}
			defer lock.Close()
			run := &runWriter{home: home}
			run.remove()
			defer run.remove()
			if e.unlocked == nil {
				// Unlock once, up front; every round and request reuses it.
				pass, err := e.Passphrase(false)
				if err != nil {
					return err
				}
				id, err := keystore.Open(home, pass)
				if err != nil {
					return explain(err, home)
				}
				e.unlocked = id
			}
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(upGCPercent)
			}
			if memoryLimit < 0 {
				return usageErrorf("--memory-limit must be a number of bytes (0: none)")
			}
			if cmd.Flags().Changed("memory-limit") || e.Getenv("GOMEMLIMIT") == "" {
				limit := memoryLimit
				if limit == 0 {
					limit = math.MaxInt64 // none: the runtime's default
				}
				debug.SetMemoryLimit(limit)
			}
			// A closed terminal (SIGHUP) stops the node as Ctrl-C does,
			// its run file removed; unless SIGHUP is ignored (nohup).
			stopOn := []os.Signal{os.Interrupt, syscall.SIGTERM}
			if !signal.Ignored(syscall.SIGHUP) {
				stopOn = append(stopOn, syscall.SIGHUP)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), stopOn...)
			defer stop()
			// The node logs with slog, as the relay does: its own records
			// from Info up (a round that brought news, a relay's lie), the
			// embedded relay's from Warn up (it refuses strangers often).
			log := slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			e.log = log
			// Tor first: without it (not installed, its control port
			// down), nothing else starts.
			var torc *tor.Tor
			if e.torOn() {
				torc, err = e.startTor(ctx, filepath.Join(home, torDir), log.With("component", "tor"), true)
				if err != nil {
					return err
				}
				defer torc.Close()
				e.setTor(torc)
				e.sync.setTor(true)
			}
			// What follows tor in the background ends before tor is closed
			// and up returns.
			torCtx, torCancel := context.WithCancel(ctx)
			var torWG sync.WaitGroup
			defer func() {
				torCancel()
				torWG.Wait()
			}()
			if torc != nil {
				torWG.Go(func() { e.followBootstrap(torCtx, torc, log) })
			}
			st, err := relay.OpenSQLite(ctx, filepath.Join(home, "relay", "relay.db"))
			if err != nil {
				return err
			}
			defer st.Close()
			last, err := readNodeFile(home)
			if err != nil {
				log.Warn("the node file does not read; the node takes new addresses", "err", err)
			}
			ln, err := listenAgain(relayListen, cmd.Flags().Changed("relay-listen"), last.Relay)
			if err != nil {
				return fmt.Errorf("the embedded relay cannot listen on %s: %w", relayListen, err)
			}
			relayLog := slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "relay")
			// The embedded relay stores only what opens to events this member
			// may need (a removed member's or an old code's junk is refused),
			// judged by the node's state as of its last round.
			e.admitter = app.NewAdmitter()
			// It serves the blobs of the home's cache (attachments this member
			// holds) to other members' nodes, read-only.
			srv := relay.NewServer(st, relay.Config{Logger: relayLog, Admit: e.admitter.Admit, Blobs: app.HomeBlobs(home)})
			served := make(chan error, 1)
			serveOn, target := ln, ""
			if torc != nil {
				// Tor forwards the onion service to a socket of its own
				// (or, for a tor of another user, the loopback port).
				oln, t, err := onionListener(filepath.Join(home, "relay", "onion.sock"), torc.Owned())
				if err != nil {
					ln.Close()
					return fmt.Errorf("the onion service's listener: %w", err)
				}
				serveOn, target = mergeListeners(ln, oln), t
			}
			go func() { served <- srv.Serve(ctx, serveOn) }()
			peer := "http://" + ln.Addr().String()
			e.nodeRelay = peer
			var onion string
			if torc != nil {
				key := tor.OnionKeyFromSeed(app.NodeOnionSeed(e.unlocked))
				onion, err = torc.PublishKey(ctx, &key, onionPort, target)
				if err != nil {
					stop()
					<-served
					return fmt.Errorf("publishing the node as an onion service: %w", err)
				}
				e.nodeOnion = "http://" + onion
				e.sync.setTorOnion(onion)
				e.announceOnion(torCtx, &torWG, torc, onion, log, e.sync.setTorPublished)
			}
			if reusable(last.Relay, cmd.Flags().Changed("relay-listen")) && hostPort(last.Relay) != ln.Addr().String() {
				log.Warn("the relay's address of the last run is taken; invite codes that named it do not reach this node", "addr", hostPort(last.Relay))
			}
			// Commands run meanwhile ask the node (remote.go).
			if cs, err := e.serveCommands(ctx, home, nodesock.Node, e.unlocked, log); err != nil {
				log.Warn("commands open the home themselves: the node's socket does not listen", "err", oneLine(err.Error()))
			} else {
				defer cs.shutdown()
			}
			watch := newWatcher(e.dialFunc())
			defer watch.stop()
			var ui *web.Server
			round := func() {
				targets, received, err := e.upRound(ctx, peer)
				if err != nil && ctx.Err() == nil {
					log.Error("sync round failed", "err", oneLine(err.Error()))
				}
				if ctx.Err() == nil {
					watch.set(ctx, targets)
				}
				if received > 0 && ui != nil {
					ui.Notify() // open pages show what came in
				}
			}
			if once {
				round() // the embedded relay holds everything before peers are told of it
			}
			// Otherwise the first round runs once the UI serves: a round
			// needs the events of each pursuance's state (keys, healing),
			// and the UI does not (a state opened from its checkpoint
			// answers the pages without them, docs/fold.md), so that up
			// serves in the time it takes to open the checkpoints, not to
			// read the logs. The embedded relay keeps what it held at the
			// last run meanwhile; the first round brings it up to date.
			// A change made in the UI goes out at once (watch.poke); a
			// login puts the new login link in the run file.
			uiURL, ui, err := e.serveUI(ctx, listen, cmd.Flags().Changed("listen"), last.UI, watch.poke, run.login)
			if err != nil {
				return err
			}
			if err := writeNodeFile(home, nodeFile{Relay: peer, UI: uiURL}); err != nil {
				log.Warn("the node file was not written", "err", err)
			}
			login := ui.LoginURL()
			rf := runFile{PID: os.Getpid(), Relay: peer, UI: uiURL, Login: login, Bearer: ui.Bearer()}
			if torc != nil {
				rf.TorControl, rf.Onion = torc.ControlAddr(), onion
			}
			run.start(rf, e.Stderr)
			fmt.Fprintf(e.Stderr, "Node of %s is up: it syncs every %s and serves other members' nodes. Ctrl-C stops it.\n", pub.Name, interval)
			fmt.Fprintf(e.Stderr, "Relay for other members' nodes (not a web page): %s\n", peer)
			if torc != nil {
				fmt.Fprintf(e.Stderr, "Through Tor: every connection of this node; other members' nodes reach it at http://%s (printed again once reachable). Invite codes name it.\n", onion)
			}
			fmt.Fprintf(e.Stderr, "Web UI at %s (this machine only). Log in with this link, which works once (`pursuance ui` prints a new one):\n", uiURL)
			fmt.Fprintln(e.Stdout, login)
			if once {
				stop()
				return <-served
			}
			// A round every interval, and one soon after a kick: an
			// envelope on a followed topic, or a change made in the UI.
			// Kicks within debounce of each other share a round.
			const debounce = 150 * time.Millisecond
			t := time.NewTicker(interval)
			defer t.Stop()
			first := make(chan struct{}, 1)
			first <- struct{}{}
			for {
				select {
				case <-ctx.Done():
					err := <-served
					fmt.Fprintln(e.Stderr, "Node stopped.")
					return err
				case <-first:
					round()
				case <-t.C:
					round()
				case <-watch.kick:
					select {
					case <-ctx.Done():
					case <-time.After(debounce):
					}
					select { // a kick since is served by this round too
					case <-watch.kick:
					default:
					}
					round()
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:0", "`ADDR` of the web UI (loopback only)")
	f.StringVar(&relayListen, "relay-listen", "127.0.0.1:0", "`ADDR` of the embedded relay that serves peers")
	f.DurationVar(&interval, "interval", 30*time.Second, "how often to sync")
	f.BoolVar(&once, "once", false, "sync once, then stop")
	f.Int64Var(&memoryLimit, "memory-limit", upMemoryLimit, "a soft limit on the node's memory in `BYTES`, as GOMEMLIMIT (0: none; GOMEMLIMIT, when set, replaces the default)")
	return cmd
}

// syncStatus is what the node's last round found, for the web UI.
type syncStatus struct {
	mu      sync.Mutex
	tor     torView // the node's tor, for the page's "private network" indicator
	last    time.Time
	down    []string
	behind  []string // relays that lacked what others had, or lost data
	missing int
	peers   []string // why members' nodes were left out of the last round
	working string   // what the round under way is doing ("Desk: 1200 of 50000")
	done    uint64   // of the read under way: cursor reached and last
	total   uint64
	// rounds counts the rounds done, running is set while one runs: a
	// benchmark tells from them which requests a round overlapped
	// (docs/benchmarks.md).
	rounds  uint64
	running bool
}

// begin records that a round started.
func (s *syncStatus) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = true
}

func (s *syncStatus) record(down, behind []string, missing int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last, s.down, s.behind, s.missing, s.working, s.done, s.total = time.Now(), down, behind, missing, "", 0, 0
	s.rounds++
	s.running = false
}

// progress records a report of app.SyncOptions.Progress about pursuance
// name.
func (s *syncStatus) progress(name, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.working = name + ": " + fmt.Sprintf(format, args...)
	s.done, s.total = 0, 0
	if format == app.ProgressFetched && len(args) == 3 {
		s.done, _ = args[1].(uint64)
		s.total, _ = args[2].(uint64)
	}
}

func (s *syncStatus) snapshot() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{"tor": s.tor}
	if s.running {
		out["round_running"] = true
	}
	if s.working != "" {
		out["working"] = s.working
		if s.total > 0 {
			out["done"], out["total"] = s.done, s.total
		}
	}
	if s.last.IsZero() {
		return out
	}
	down, behind := s.down, s.behind
	if down == nil {
		down = []string{}
	}
	if behind == nil {
		behind = []string{}
	}
	out["last"], out["down"], out["behind"], out["missing"] = s.last.UTC().Format(time.RFC3339), down, behind, s.missing
	out["rounds"] = s.rounds
	if len(s.peers) > 0 {
		out["peers_skipped"] = s.peers
	}
	return out
}

// torView is what the web UI shows of the node's tor: whether the node
// goes through Tor, how far tor has bootstrapped, the node's onion
// address and whether it is reachable yet.
type torView struct {
	On        bool   `json:"on"`
	Bootstrap int    `json:"bootstrap"`
	Summary   string `json:"summary,omitempty"`
	Warning   string `json:"warning,omitempty"`
	Onion     string `json:"onion,omitempty"`
	Reachable bool   `json:"reachable"`
}

func (s *syncStatus) setTor(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tor.On = on
}

func (s *syncStatus) setTorOnion(onion string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tor.Onion = onion
}

func (s *syncStatus) setTorPublished() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tor.Reachable = true
}

func (s *syncStatus) setTorProgress(st tor.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tor.Bootstrap, s.tor.Summary, s.tor.Warning = st.Bootstrap, st.Summary, st.Warning
}

// followBootstrap follows the node's tor as it bootstraps, for the UI
// and the log.
func (e *Env) followBootstrap(ctx context.Context, t *tor.Tor, log *slog.Logger) {
	last := -1
	err := t.WaitBootstrapped(ctx, func(st tor.Status) {
		e.sync.setTorProgress(st)
		if st.Bootstrap/25 != last/25 || st.Bootstrap == 100 {
			log.Info("tor bootstrapping", "progress", st.Bootstrap, "summary", st.Summary)
		}
		last = st.Bootstrap
	})
	if err != nil && ctx.Err() == nil {
		log.Error("tor", "err", oneLine(err.Error()))
	}
}

// firstRun walks a user at a terminal through creating this home's
// identity: a name, a passphrase asked twice.
func (e *Env) firstRun(home string) (*identity.Identity, error) {
	fmt.Fprintf(e.Stderr, "Welcome to Pursuance. This home (%s) has no identity yet; let's create one.\n", home)
	fmt.Fprint(e.Stderr, "Your name, as other members will see it: ")
	line, err := bufio.NewReader(e.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return nil, fmt.Errorf("read your name: %w", err)
	}
	name, err := identity.NormalizeName(strings.TrimSpace(line))
	if err != nil {
		return nil, usageErrorf("name: %v", err)
	}
	fmt.Fprintln(e.Stderr, "Now a passphrase: it protects your keys on this machine, and nobody can recover it for you.")
	id, err := e.createIdentity(home, name, false)
	if err != nil {
		return nil, err
	}
	pub := id.Public()
	fmt.Fprintf(e.Stderr, "Created the identity of %s: member ID %s\nSafety fingerprint: %s (compare it with other members over a channel you trust)\n", pub.Name, pub.ID, pub.Fingerprint())
	return id, nil
}

// serveUI serves the web UI on a loopback address until ctx ends and
// returns its URL.
// It listens on the address of the last run (last, a URL) when the user
// left --listen (listen) at its default (!changed) and that one is free.
// onChange is called after each request that changed something, onLogin
// with the new login link after each login.
func (e *Env) serveUI(ctx context.Context, listen string, changed bool, last string, onChange func(), onLogin func(string)) (string, *web.Server, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "", nil, usageErrorf("--listen: %v", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil, usageErrorf("--listen: the web UI serves this machine only; give a loopback address such as 127.0.0.1:8080")
	}
	ln, err := listenAgain(listen, changed, last)
	if err != nil {
		return "", nil, fmt.Errorf("the web UI cannot listen on %s: %w", listen, err)
	}
	ui, err := web.New(ln.Addr().String(), func(ctx context.Context) (*app.Node, error) { return e.openNode(ctx) })
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	ui.Status, ui.Changed, ui.LoginChanged = e.sync.snapshot, onChange, onLogin
	// Requests end with ctx (Ctrl-C), the pages' live streams included.
	hs := &http.Server{Handler: ui, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go hs.Serve(ln)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	return "http://" + ln.Addr().String() + "/", ui, nil
}

// logSync logs what a round of the node did with pursuance name: what
// came and went, and each relay that failed, lied or lagged.
func (e *Env) logSync(name string, res app.SyncResult) {
	e.log.Info("synced", "pursuance", name, "relays", len(res.Relays), "failed", relayErrorCount(res),
		"received", res.Received, "sent", res.Sent, "tampered", res.Tampered, "refused", res.Refused, "missing", len(res.Missing))
	for _, r := range res.Relays {
		if r.Err != nil {
			e.log.Warn("relay failed", "pursuance", name, "relay", r.URL, "err", oneLine(app.RelayError(r.Err)))
		}
		for _, note := range relayNotes(r) {
			e.log.Warn("relay", "pursuance", name, "relay", r.URL, "note", note)
		}
	}
}

// upRound syncs every pursuance on the home with its relays and the
// embedded one, holding the home only meanwhile. It returns the topics to
// follow live until the next round, and how many events came in.
func (e *Env) upRound(ctx context.Context, peer string) (targets []app.WatchTarget, received int, err error) {
	n, err := e.openNode(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer n.Close()
	ps, err := n.Pursuances(ctx)
	if err != nil {
		return nil, 0, err
	}
	var down, behind []string
	missing := 0
	e.sync.begin()
	defer func() { e.sync.record(down, behind, missing) }()
	var peerSkip []string
	defer func() { e.sync.recordPeers(peerSkip) }()
	for _, p := range ps {
		name := p.Name
		// The state is folded with the home left to the web UI and
		// commands; the steps below, holding it, find it folded.
		if err := n.Prepare(ctx, p.ID); err != nil {
			e.log.Error("sync failed", "pursuance", p.Name, "err", oneLine(err.Error()))
			continue
		}
		peers, skipped := e.roundPeers(ctx, n, p)
		peerSkip = append(peerSkip, skipped...)
		res, err := n.Sync(ctx, p.ID, app.SyncOptions{Relays: []string{peer}, Peers: peers, Progress: func(format string, args ...any) {
			e.sync.progress(name, format, args...)
		}, BeforePush: func(ctx context.Context) { e.admitterUpdate(ctx, n) }})
		if err != nil {
			e.log.Error("sync failed", "pursuance", p.Name, "err", oneLine(err.Error()))
			continue
		}
		e.recordPeers(p.Name, peers, res)
		missing += len(res.Missing)
		// What came over links shows too: the other side's events (a
		// report, a receive) and the hand-offs received as tasks here.
		received += res.Received + res.Links.Received + res.Links.Receives
		if ts, err := n.WatchTargets(ctx, p.ID, []string{peer}); err == nil {
			targets = append(targets, ts...)
		}
		trouble := false
		for _, r := range res.Relays {
			if r.Err != nil && !slices.Contains(down, r.URL) {
				down = append(down, r.URL)
			}
			// The node's own relay catches up every round: not news.
			if r.URL == peer || len(relayNotes(r)) == 0 {
				continue
			}
			trouble = true
			if !slices.Contains(behind, r.URL) {
				behind = append(behind, r.URL)
			}
		}
		if res.Received > 0 || len(res.Missing) > 0 || relayErrorCount(res) > 0 || trouble {
			e.logSync(p.Name, res)
		}
	}
	for _, p := range e.deviceMailbox(ctx, n, func(err error) { e.log.Warn("device mailbox", "err", oneLine(err.Error())) }) {
		e.log.Info("pursuance taken up from another device", "pursuance", p.Short())
		received++
	}
	e.admitterUpdate(ctx, n)
	return targets, received, nil
}

// admitterUpdate refreshes what the embedded relay admits from n's state.
func (e *Env) admitterUpdate(ctx context.Context, n *app.Node) {
	if e.admitter == nil {
		return
	}
	if err := e.admitter.Update(ctx, n); err != nil {
		e.log.Warn("the embedded relay keeps judging by its last state", "err", oneLine(err.Error()))
	}
}
