package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/tor"
	"github.com/pursuance/pursuance/internal/tor/faketor"
	"github.com/pursuance/pursuance/relay"
)

// noLocalDNS makes every DNS query of this process fail the test, for
// the test's duration (names in /etc/hosts are answered without one; the
// tests use names that are not there).
func noLocalDNS(t *testing.T) {
	t.Helper()
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		t.Errorf("a DNS query from this process (to %s): a name was resolved outside tor", address)
		return nil, errors.New("no DNS in this test")
	}}
	t.Cleanup(func() { net.DefaultResolver = old })
}

// homeRunner runs commands on one home, in this process.
func homeRunner(t *testing.T, home string, vars map[string]string) func(args ...string) (int, string, string) {
	return func(args ...string) (int, string, string) {
		t.Helper()
		env := map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw"}
		for k, v := range vars {
			env[k] = v
		}
		e, out, _ := testEnv(env, nil)
		e.Rand = rand.Reader    // each home its own identity
		errOut := &syncBuffer{} // written by up's goroutines too
		e.Stderr = errOut
		code := Run(args, e)
		return code, out.String(), errOut.String()
	}
}

// testRelayServer runs a relay in this process, on loopback.
func testRelayServer(t *testing.T) string {
	t.Helper()
	st, err := relay.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	t.Cleanup(func() {
		ts.Close()
		st.Close()
	})
	return strings.TrimPrefix(ts.URL, "http://")
}

// TestTorFlagRoutesEveryConnection: under --tor, every connection of
// create, invite, join and sync goes to tor's SOCKS port with the relay's
// host name unresolved (a DNS query from this process fails the test),
// and each pursuance of a member has its own SOCKS credentials, so tor
// keeps them on separate circuits; a join uses its pursuance's.
func TestTorFlagRoutesEveryConnection(t *testing.T) {
	noLocalDNS(t)
	f, err := faketor.New(faketor.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const name = "relay.pursuance.test"
	f.Map(name+":80", testRelayServer(t))
	alice := homeRunner(t, t.TempDir(), nil)
	bob := homeRunner(t, t.TempDir(), nil)
	tor := []string{"--tor", "--tor-control", f.ControlAddr()}
	for _, r := range []func(...string) (int, string, string){alice, bob} {
		if code, _, errOut := r("id", "new", "--name", "Someone", "--insecure-test-kdf"); code != 0 {
			t.Fatal(errOut)
		}
	}
	// users returns the SOCKS user names of the requests since the n-th.
	users := func(from int) []string {
		var out []string
		for _, r := range f.Requests()[from:] {
			if r.Atyp != 3 || r.Host != name || r.Port != 80 || r.Method != 2 || r.User == "" || r.User != r.Pass {
				t.Errorf("a SOCKS request %+v: want the name %s, port 80, credentials", r, name)
			}
			if !slices.Contains(out, r.User) {
				out = append(out, r.User)
			}
		}
		return out
	}
	step := func(r func(...string) (int, string, string), args ...string) (string, []string) {
		t.Helper()
		from := len(f.Requests())
		code, out, errOut := r(append(slices.Clone(tor), args...)...)
		if code != 0 || strings.Contains(errOut, "unreachable") {
			t.Fatalf("%s: exit %d: %s", args, code, errOut)
		}
		return strings.TrimSpace(out), users(from)
	}
	_, deskUsers := step(alice, "create", "--name", "Desk", "--relay", "http://"+name)
	_, otherUsers := step(alice, "create", "--name", "Other", "--relay", "http://"+name)
	if len(deskUsers) != 1 || len(otherUsers) != 1 || deskUsers[0] == otherUsers[0] {
		t.Fatalf("credentials of Desk's connections %q, of Other's %q: want one each, different", deskUsers, otherUsers)
	}
	code, codeUsers := step(alice, "invite", "Desk", "--role", "researcher")
	if !slices.Equal(codeUsers, deskUsers) {
		t.Errorf("invite's connections %q, want Desk's %q", codeUsers, deskUsers)
	}
	_, syncUsers := step(alice, "sync", "Other")
	if !slices.Equal(syncUsers, otherUsers) {
		t.Errorf("sync Other's connections %q, want Other's %q", syncUsers, otherUsers)
	}
	_, joinUsers := step(bob, "join", code)
	if len(joinUsers) != 1 || joinUsers[0] == deskUsers[0] || joinUsers[0] == otherUsers[0] {
		t.Errorf("bob's join's credentials %q: want one, his own", joinUsers)
	}
	_, bobSync := step(bob, "sync")
	if !slices.Equal(bobSync, joinUsers) {
		t.Errorf("bob's sync %q, want his join's %q: one identity per pursuance", bobSync, joinUsers)
	}
}

// TestOnionNeedsTorCLI: without Tor, an onion relay fails with the line
// that says how to get it, an invite naming only onion services says it
// needs Tor, and a join with such a code stops at once, saying so.
func TestOnionNeedsTorCLI(t *testing.T) {
	noLocalDNS(t)
	const onion = "http://25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion"
	alice := homeRunner(t, t.TempDir(), nil)
	bob := homeRunner(t, t.TempDir(), nil)
	alice("id", "new", "--name", "Alice", "--insecure-test-kdf")
	bob("id", "new", "--name", "Bob", "--insecure-test-kdf")
	code, _, errOut := alice("create", "--name", "Desk", "--relay", onion)
	if code != 0 || !strings.Contains(errOut, "this relay is an onion service: run with --tor or `pursuance up --tor`") {
		t.Fatalf("create with an onion relay: exit %d: %s", code, errOut)
	}
	code, inv, errOut := alice("invite", "Desk", "--role", "researcher")
	if code != 0 || !strings.Contains(errOut, "needs Tor") {
		t.Fatalf("invite: exit %d: %s", code, errOut)
	}
	code, _, errOut = bob("join", strings.TrimSpace(inv))
	if code != 1 || !strings.Contains(errOut, "it needs Tor: join with `pursuance --tor join CODE`") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("join without Tor: exit %d: %q", code, errOut)
	}
}

// TestTorNotInstalled: `up --tor` without tor fails with one line saying
// how to install it, and leaves nothing started: no node file, no run
// file, no relay store; a one-shot --tor command says it for each relay.
func TestTorNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	home := t.TempDir()
	run := homeRunner(t, home, nil)
	run("id", "new", "--name", "Alice", "--insecure-test-kdf")
	code, out, errOut := run("up", "--tor", "--once")
	if code != 1 || out != "" || errOut != "pursuance: "+"tor is not installed: on Debian or Ubuntu, `sudo apt-get install tor`; elsewhere, see docs/tor.md\n" {
		t.Fatalf("up --tor without tor: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, f := range []string{nodeFileName, runFileName, "relay", torDir} {
		if _, err := os.Stat(filepath.Join(home, f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is there after a failed start (%v)", f, err)
		}
	}
	// A relay as an onion service, likewise: nothing listens, no store.
	data := filepath.Join(t.TempDir(), "relay")
	code, _, errOut = run("relay", "--onion", "--listen", "127.0.0.1:0", "--data", data)
	if code != 1 || errOut != "pursuance: tor is not installed: on Debian or Ubuntu, `sudo apt-get install tor`; elsewhere, see docs/tor.md\n" {
		t.Errorf("relay --onion without tor: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "relay.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("relay --onion without tor made its store (%v)", err)
	}
	// The home's setting does as the flag does.
	run("tor", "on")
	if code, _, errOut := run("up", "--once"); code != 1 || !strings.Contains(errOut, "tor is not installed") {
		t.Errorf("up with Tor on for the home, without tor: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run("--tor=false", "up", "--once"); code != 0 {
		t.Errorf("up --tor=false with Tor on for the home: exit %d: %s", code, errOut)
	}
}

// TestTorStatus: `tor status --json` has the contract's keys; it follows
// the home's setting (`tor on --tor-control ADDR`, `tor off`) and tor's
// bootstrap.
func TestTorStatus(t *testing.T) {
	f, err := faketor.New(faketor.Options{Dir: t.TempDir(), Bootstrap: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	run := homeRunner(t, t.TempDir(), nil)
	run("id", "new", "--name", "Alice", "--insecure-test-kdf")
	status := func() map[string]any {
		t.Helper()
		code, out, errOut := run("tor", "status", "--json")
		var m map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
			t.Fatalf("tor status --json: exit %d, %q, %s", code, out, errOut)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(keys, []string{"bootstrap", "onion", "running"}) {
			t.Errorf("keys %v", keys)
		}
		return m
	}
	if m := status(); m["running"] != false || m["bootstrap"] != 0.0 || m["onion"] != "" {
		t.Errorf("with Tor off: %v", m)
	}
	if code, _, errOut := run("--tor-control", f.ControlAddr(), "tor", "on"); code != 0 {
		t.Fatal(errOut)
	}
	if m := status(); m["running"] != true || m["bootstrap"] != 40.0 {
		t.Errorf("with the home's tor at 40%%: %v", m)
	}
	run("tor", "off")
	if m := status(); m["running"] != false {
		t.Errorf("after tor off: %v", m)
	}
}

// TestUpTorAttached: `up --tor --tor-control ADDR` publishes the node's
// relay through that tor (a loopback target: a tor of another user cannot
// reach this user's socket) under a key derived from the identity, the
// same address run after run, and says so; nothing is left published
// after it stops.
func TestUpTorAttached(t *testing.T) {
	f, err := faketor.New(faketor.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	run := homeRunner(t, t.TempDir(), nil)
	run("id", "new", "--name", "Alice", "--insecure-test-kdf")
	var onions []string
	for range 2 {
		from := len(f.Commands())
		code, _, errOut := run("--tor", "--tor-control", f.ControlAddr(), "up", "--once")
		if code != 0 {
			t.Fatalf("up --tor: exit %d: %s", code, errOut)
		}
		var add string
		for _, c := range f.Commands()[from:] {
			if strings.HasPrefix(c, "ADD_ONION ") {
				add = c
			}
		}
		if !strings.Contains(add, " Port=80,127.0.0.1:") {
			t.Fatalf("ADD_ONION %q: want port 80 to a loopback port", add)
		}
		_, line, ok := strings.Cut(errOut, "other members' nodes reach it at http://")
		onion, _, _ := strings.Cut(line, " ")
		if !ok || !strings.HasSuffix(onion, ".onion") {
			t.Fatalf("up --tor did not name its onion address: %s", errOut)
		}
		onions = append(onions, onion)
	}
	if onions[0] != onions[1] {
		t.Errorf("the node's onion address changed between runs: %v", onions)
	}
	if len(f.Onions()) != 0 {
		t.Errorf("still published after the node stopped: %v", f.Onions())
	}
}

// TestEveryConnectionThroughDial: the code of app, web and this package
// opens no connection of its own to a relay or a member's node: no relay
// client on Go's default HTTP client, no http.Get, no net.Dial or
// websocket.Dial of its own. Every one goes through app.Options.Dial
// (app.HTTPClient), which is what --tor routes through Tor; code added
// later that did otherwise would leak around Tor, and fails here. (The
// dialer itself, e.dial, is the one place that dials.)
func TestEveryConnectionThroughDial(t *testing.T) {
	forbidden := regexp.MustCompile(`relay\.NewClient\([^)]*,\s*nil\)|http\.DefaultClient|http\.(Get|Post|PostForm|Head)\(|websocket\.Dial\(|net\.Dial\(|net\.DialTimeout\(|\.DialContext\(`)
	allowed := map[string]bool{"tor.go": true} // e.dial
	for _, dir := range []string{".", "../../app", "../../web"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			base := filepath.Base(f)
			if strings.HasSuffix(f, "_test.go") || strings.HasPrefix(base, "bench") || dir == "." && allowed[base] {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range forbidden.FindAll(b, -1) {
				t.Errorf("%s: %s: a connection that does not go through app.Options.Dial", f, m)
			}
		}
	}
}

// TestRelayOnionAttached: `relay --onion --tor-control ADDR` serves its
// clear-net port and publishes itself through that tor, to a loopback
// port (that tor may be another user's), printing both URLs; the onion
// URL reaches the relay through tor; the service goes when the relay
// stops.
func TestRelayOnionAttached(t *testing.T) {
	f, err := faketor.New(faketor.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, _, _ := testEnv(nil, nil)
	errOut := &syncBuffer{}
	e.Stderr = errOut
	ctx, cancel := context.WithCancel(context.Background())
	e.Context = ctx
	done := make(chan int, 1)
	go func() {
		done <- Run([]string{"relay", "--onion", "--tor-control", f.ControlAddr(), "--listen", "127.0.0.1:0", "--data", t.TempDir()}, e)
	}()
	onion := regexp.MustCompile(`(?m)^http://([a-z2-7]{56}\.onion)$`)
	clear := regexp.MustCompile(`(?m)^http://127\.0\.0\.1:\d+$`)
	deadline := time.Now().Add(30 * time.Second)
	for !onion.MatchString(errOut.String()) || !clear.MatchString(errOut.String()) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the relay did not print both URLs:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	addr := onion.FindStringSubmatch(errOut.String())[1]
	if got := f.Onions()[strings.TrimSuffix(addr, ".onion")]; !strings.HasPrefix(got, "80 127.0.0.1:") {
		t.Errorf("the service's target %q: want a loopback port", got)
	}
	d := tor.NewDialer(f.SOCKSAddr(), "x")
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := hc.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("GET /healthz through tor: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("the relay stopped with %d:\n%s", code, errOut.String())
	}
	if len(f.Onions()) != 0 {
		t.Errorf("still published after the relay stopped: %v", f.Onions())
	}
}
