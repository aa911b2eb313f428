package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/internal/tor"
)

// torState is what a process knows of Tor: the global flags, and the tor
// it uses once it has started or attached to one (a process uses one).
type torState struct {
	flag    bool   // --tor
	control string // --tor-control
	changed func(name string) bool

	mu   sync.Mutex
	conn *tor.Tor

	settingsOnce sync.Once
	settings     torSettings // the home's, read once a process
}

// Environment variables of the tor a home starts (docs/tor.md).
const (
	// torBinaryEnv names the tor program ("" is tor from PATH).
	torBinaryEnv = "PURSUANCE_TOR_BINARY"
	// torrcEnv names a file of extra torrc lines (bridges; a private
	// test network).
	torrcEnv = "PURSUANCE_TORRC"
)

// torBootstrapTimeout bounds how long a command waits for a tor to
// bootstrap before it connects through it.
const torBootstrapTimeout = 3 * time.Minute

// torDir is the data directory, in a home, of the tor the home starts.
const torDir = "tor"

// torSettings is home/tor.json, the home's Tor setting (`pursuance tor
// on|off`): whether its commands and node go through Tor without --tor,
// and the control port of a running tor to use instead of starting one.
type torSettings struct {
	On      bool   `json:"on"`
	Control string `json:"control,omitempty"`
}

const torSettingsName = "tor.json"

func readTorSettings(home string) (torSettings, error) {
	return readJSONFile[torSettings](filepath.Join(home, torSettingsName))
}

func writeTorSettings(home string, s torSettings) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return keystore.WriteFileAtomic(home, torSettingsName, append(b, '\n'))
}

// torSettings returns the home's Tor setting, read once a process (a
// running node keeps its way until restarted); an unreadable one is off,
// with a warning.
func (e *Env) torSettings() torSettings {
	e.tor.settingsOnce.Do(func() {
		home, err := e.Home()
		if err != nil {
			return
		}
		s, err := readTorSettings(home)
		if err != nil {
			fmt.Fprintf(e.Stderr, "warning: %v: Tor stays as the flags say\n", err)
		}
		e.tor.settings = s
	})
	return e.tor.settings
}

// torOn reports whether everything this process connects to goes
// through Tor: --tor (also --tor=false) when given, else the home's
// setting.
func (e *Env) torOn() bool {
	if e.tor.changed != nil && e.tor.changed("tor") {
		return e.tor.flag
	}
	return e.torSettings().On
}

// torControl returns the control port of a running tor to use: the
// flag's, else the home's setting's.
func (e *Env) torControl() string {
	if e.tor.control != "" {
		return e.tor.control
	}
	return e.torSettings().Control
}

// nodeTor returns the control port of the tor of this home's running
// node, if it runs with Tor.
func (e *Env) nodeTor() string {
	home, err := e.Home()
	if err != nil {
		return ""
	}
	rf, ok := runningNode(home)
	if !ok {
		return ""
	}
	return rf.TorControl
}

// dialFunc returns the app.DialFunc of this process: nil (direct
// connections; onion services refused with app.ErrNeedsTor) when no Tor
// is on or at hand, else e.dial.
func (e *Env) dialFunc() app.DialFunc {
	e.tor.mu.Lock()
	has := e.tor.conn != nil
	e.tor.mu.Unlock()
	if has || e.torOn() || e.torControl() != "" || e.nodeTor() != "" {
		return e.dial
	}
	return nil
}

// dial connects to addr for app (app.DialFunc): a loopback address
// directly, always (it is this machine, never the network); under Tor
// everything else through Tor; without it, onion services through the
// tor at hand and the rest directly. Names are resolved here only for
// direct connections without Tor.
func (e *Env) dial(ctx context.Context, network, addr, isolation string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return d.DialContext(ctx, network, addr)
	}
	if strings.EqualFold(host, "localhost") {
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
	if !tor.IsOnion(host) && !e.torOn() {
		return d.DialContext(ctx, network, addr)
	}
	t, err := e.torConn(ctx)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	return t.Dialer(isolation).DialContext(ctx, network, addr)
}

// torConn returns the tor this process uses, starting or attaching to
// one at first use and waiting (with progress on stderr) for it to
// bootstrap: --tor-control's, else the running node's, else the home's
// setting's, else one of its own in home/tor when Tor is on. Without any,
// app.ErrNeedsTor.
func (e *Env) torConn(ctx context.Context) (*tor.Tor, error) {
	e.tor.mu.Lock()
	defer e.tor.mu.Unlock()
	if e.tor.conn != nil {
		return e.tor.conn, nil
	}
	home, err := e.Home()
	if err != nil {
		return nil, err
	}
	var t *tor.Tor
	switch ctl, node := e.tor.control, e.nodeTor(); {
	case ctl != "":
		t, err = tor.Attach(ctx, ctl)
	case node != "":
		t, err = tor.Attach(ctx, node)
	case e.torSettings().Control != "":
		t, err = tor.Attach(ctx, e.torSettings().Control)
	case e.torOn():
		cfg, cerr := e.torConfig(home)
		if cerr != nil {
			return nil, cerr
		}
		fmt.Fprintln(e.Stderr, "Starting tor…")
		t, err = tor.Start(ctx, cfg)
	default:
		return nil, app.ErrNeedsTor
	}
	if err != nil {
		return nil, err
	}
	if err := e.waitTor(ctx, t); err != nil {
		t.Close()
		return nil, err
	}
	e.tor.conn = t
	return t, nil
}

// waitTor waits for t to bootstrap, telling the progress on stderr.
func (e *Env) waitTor(ctx context.Context, t *tor.Tor) error {
	ctx, cancel := context.WithTimeout(ctx, torBootstrapTimeout)
	defer cancel()
	last := -1
	return t.WaitBootstrapped(ctx, func(st tor.Status) {
		if st.Bootstrap < 100 && st.Bootstrap != last {
			fmt.Fprintf(e.Stderr, "Tor: bootstrapping %d%% (%s)\n", st.Bootstrap, st.Summary)
		}
		last = st.Bootstrap
	})
}

// torConfig returns how this home starts its tor.
func (e *Env) torConfig(home string) (tor.Config, error) {
	cfg := tor.Config{Binary: e.Getenv(torBinaryEnv), DataDir: filepath.Join(home, torDir), Logger: e.logger()}
	if f := e.Getenv(torrcEnv); f != "" {
		lines, err := readTorrcFile(f)
		if err != nil {
			return cfg, err
		}
		cfg.Torrc = lines
	}
	return cfg, nil
}

// readTorrcFile reads the lines of a torrc fragment, without comments
// and blank lines.
func readTorrcFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", torrcEnv, err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if l := strings.TrimSpace(s.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, s.Err()
}

// closeTor stops the tor this process started, or detaches from the one
// it attached to.
func (e *Env) closeTor() {
	e.tor.mu.Lock()
	t := e.tor.conn
	e.tor.conn = nil
	e.tor.mu.Unlock()
	if t != nil {
		t.Close()
	}
}

// setTor makes t the tor of this process (up starts it itself).
func (e *Env) setTor(t *tor.Tor) {
	e.tor.mu.Lock()
	defer e.tor.mu.Unlock()
	e.tor.conn = t
}

// startTor starts or attaches the tor of a long-running command (up,
// relay --onion), without waiting for it to bootstrap: with
// --tor-control (or the home's setting, when home is set) an attached
// one, else its own in dataDir.
func (e *Env) startTor(ctx context.Context, dataDir string, log *slog.Logger, useSettings bool) (*tor.Tor, error) {
	ctl := e.tor.control
	if ctl == "" && useSettings {
		ctl = e.torSettings().Control
	}
	if ctl != "" {
		return tor.Attach(ctx, ctl)
	}
	cfg := tor.Config{Binary: e.Getenv(torBinaryEnv), DataDir: dataDir, Logger: log}
	if f := e.Getenv(torrcEnv); f != "" {
		lines, err := readTorrcFile(f)
		if err != nil {
			return nil, err
		}
		cfg.Torrc = lines
	}
	return tor.Start(ctx, cfg)
}

// torOnionStatus is what `tor status` and the web UI say of Tor.
type torOnionStatus struct {
	Running   bool   `json:"running"`
	Bootstrap int    `json:"bootstrap"`
	Onion     string `json:"onion"`
}

func newTorCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tor",
		Short: "Tor: this home's setting, and the state of its tor",
		Long: `Pursuance reaches relays and other members through Tor when asked: with
--tor on any command, with ` + "`pursuance up --tor`" + `, or for every command of
this home after ` + "`pursuance tor on`" + `. Onion services (.onion URLs) always go
through Tor. Pursuance starts its own tor (Debian's tor package) in the
home's tor/ directory, or uses a running one (--tor-control ADDR).
docs/tor.md says what Tor hides and what it does not.`,
		RunE: groupRunE,
	}
	on := &cobra.Command{
		Use:   "on [--tor-control ADDR]",
		Short: "Route every command and the node of this home through Tor",
		Long: `Make Tor this home's default: every command, and ` + "`pursuance up`" + `, connect
through Tor as with --tor (--tor=false still overrides it for one command).
With --tor-control ADDR, they use the tor whose control port is at ADDR
instead of starting one.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.setTorSetting(true, e.tor.control)
		},
	}
	off := &cobra.Command{
		Use:   "off",
		Short: "Stop routing this home's commands through Tor by default",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.setTorSetting(false, "")
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Whether tor runs for this home, how far it has bootstrapped, and the node's onion address",
		Long: `Ask the tor this home uses how far it has bootstrapped: the running node's
(` + "`pursuance up --tor`" + `), else the one --tor-control or the home's setting
names. The onion address is the running node's.

With --json: {"running", "bootstrap" (0 to 100), "onion"}.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, note := e.torStatus(cmd.Context())
			if e.json {
				return e.printJSON(st)
			}
			switch {
			case st.Running:
				fmt.Fprintf(e.Stdout, "tor: running, bootstrapped %d%%\n", st.Bootstrap)
			default:
				fmt.Fprintln(e.Stdout, "tor: not running")
			}
			if st.Onion != "" {
				fmt.Fprintf(e.Stdout, "onion: http://%s\n", st.Onion)
			}
			if note != "" {
				fmt.Fprintln(e.Stderr, note)
			}
			return nil
		},
	}
	cmd.AddCommand(on, off, status)
	return cmd
}

// setTorSetting writes the home's Tor setting.
func (e *Env) setTorSetting(on bool, control string) error {
	home, err := e.Home()
	if err != nil {
		return err
	}
	if _, err := keystore.ReadPublic(home); err != nil {
		return explain(err, home)
	}
	if err := writeTorSettings(home, torSettings{On: on, Control: control}); err != nil {
		return err
	}
	switch {
	case on && control != "":
		fmt.Fprintf(e.Stderr, "Tor is on for this home: commands and the node connect through the tor at %s.\n", control)
	case on:
		fmt.Fprintln(e.Stderr, "Tor is on for this home: commands and the node start their own tor and connect through it.")
	default:
		fmt.Fprintln(e.Stderr, "Tor is off for this home: only onion services go through Tor (with --tor, everything).")
	}
	if runningNodeRelay(home) != "" {
		fmt.Fprintln(e.Stderr, "The running node keeps its way until it is restarted.")
	}
	return nil
}

// statusTimeout bounds `tor status`'s questions to tor.
const statusTimeout = 10 * time.Second

// torStatus asks the tor this home uses how it is, and says what a person
// may want to know besides.
func (e *Env) torStatus(ctx context.Context) (torOnionStatus, string) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	home, err := e.Home()
	if err != nil {
		return torOnionStatus{}, err.Error()
	}
	var st torOnionStatus
	ctl := e.tor.control
	if rf, ok := runningNode(home); ok && rf.TorControl != "" {
		st.Onion = rf.Onion
		if ctl == "" {
			ctl = rf.TorControl
		}
	}
	if ctl == "" {
		ctl = e.torSettings().Control
	}
	if ctl == "" {
		if e.torOn() {
			return st, "Tor is on for this home; its tor runs while a command or the node needs it (`pursuance up` keeps one running)."
		}
		return st, "Tor is off for this home (`pursuance tor on`, or `pursuance up --tor`)."
	}
	t, err := tor.Attach(ctx, ctl)
	if err != nil {
		return st, "The tor at " + ctl + " does not answer: " + oneLine(err.Error())
	}
	defer t.Close()
	s, err := t.Status(ctx)
	if err != nil {
		return st, "The tor at " + ctl + " does not answer: " + oneLine(err.Error())
	}
	st.Running, st.Bootstrap = s.Running, s.Bootstrap
	note := ""
	if s.Warning != "" {
		note = "tor warns: " + s.Warning
	}
	return st, note
}
