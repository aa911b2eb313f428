package torsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/internal/tor"
	"github.com/pursuance/pursuance/internal/tortest"
)

const (
	// onionURL is the line a relay or node prints once its onion service
	// is reachable (its descriptor uploaded).
	onionURL = `^(http://[a-z2-7]{56}\.onion)$`
	// nodeInterval is the nodes' sync round: a fallback only, since a
	// node follows its relays live; short, so that a node takes up a
	// pursuance just joined soon.
	nodeInterval = "5s"
	// seeWithin bounds how long a change may take to reach another
	// member through Tor (a quick pull is 5 s at most per try; the
	// private network's circuits take a second or two).
	seeWithin = 60 * time.Second
	// torExitWait bounds how long a tor may outlive the pursuance
	// process that started it (it exits when its owner's control
	// connection closes).
	torExitWait = 20 * time.Second
	// probeWithin bounds how long a node's onion service may take to
	// answer another tor client after the node starts.
	probeWithin = 90 * time.Second
)

// TestTorEndToEnd is issue 12's scenario, with real pursuance processes
// and real tor in the private network:
//
//   - a relay as an onion service only (relay --onion-only), its URL read
//     from its stderr;
//   - Alice and Bob, each on their own home with their node up --tor;
//     tor status --json on Alice's home;
//   - Alice founds a pursuance on the relay's onion URL, invites Bob, who
//     joins through Tor; they work a task (add and assign, status,
//     comment), each seeing the other's change through the relay;
//   - each node announces its onion service in the log (node-address
//     events); nobody lists the nodes as relays (Bob, a researcher, may
//     not);
//   - the relay is stopped: they keep working, node to node, each node
//     syncing with the other's announced onion service;
//   - Bob goes offline (his node stops); Carol joins with a code that
//     names only Alice's node and sees the task;
//   - the relay's own sockets and log show that it listened on nothing
//     but its Unix socket and that every connection it accepted came from
//     its own tor process.
//
// It logs each phase's time ("phase: …"); docs/testing-tor.md keeps the
// numbers.
func TestTorEndToEnd(t *testing.T) {
	tortest.Skip(t)
	if testing.Short() {
		t.Skip("starts real tor and pursuance processes (about a minute)")
	}
	begin := time.Now()
	n := tortest.Shared(t)
	t.Logf("phase: private Tor network up: %v (test began %v ago)", n.UpAfter().Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	dir := t.TempDir()
	env := suiteEnv(t, n, dir)
	// A plain tor client of the network, as another member's would be,
	// to time when the nodes' onion services answer.
	observer := n.StartClient(t)

	// The relay, as an onion service only.
	relayData := filepath.Join(dir, "relay")
	isolated(t)
	rp := start(t, "relay", env, "relay", "--onion-only", "--data", relayData, "--log-level", "debug", "--log-format", "json")
	relayURL, at := rp.waitAt(t, onionURL)
	t.Logf("phase: relay --onion-only, start to onion service reachable: %v", at.Round(time.Millisecond))
	checkProductTorrc(t, filepath.Join(relayData, "tor", "torrc"))
	relayTors := torChildren(rp.cmd.Process.Pid)
	if len(relayTors) != 1 {
		all := map[int]string{}
		for p, tp := range torProcesses() {
			all[p] = fmt.Sprintf("parent %d: %s", tp.ppid, tp.cmdline)
		}
		t.Fatalf("the relay (pid %d) runs %d tor processes (%v), want its own one; tor processes: %v", rp.cmd.Process.Pid, len(relayTors), relayTors, all)
	}
	relayTor := relayTors[0]

	// Alice and Bob, their nodes up --tor.
	homes := map[string]string{}
	for _, name := range []string{"Alice", "Bob", "Carol"} {
		homes[name] = filepath.Join(dir, strings.ToLower(name))
		must(t, env, "--home", homes[name], "id", "new", "--name", name, "--insecure-test-kdf")
	}
	alice, bob, carol := homes["Alice"], homes["Bob"], homes["Carol"]
	isolated(t)
	an := start(t, "alice's node", env, "--home", alice, "up", "--tor", "--interval", nodeInterval)
	bn := start(t, "bob's node", env, "--home", bob, "up", "--tor", "--interval", nodeInterval)
	onions := map[*proc]string{}
	probes := map[*proc]chan probeResult{}
	for _, p := range []*proc{an, bn} {
		onion := p.wait(t, `other members' nodes reach it at (http://[a-z2-7]{56}\.onion)`)
		done := make(chan probeResult, 1)
		onions[p], probes[p] = onion, done
		go func() { done <- probe(t.Context(), observer.SocksAddr, onion, p.started) }()
	}
	for _, p := range []*proc{an, bn} {
		_, upAt := p.waitAt(t, `other members' nodes reach it at`)
		_, publishedAt := p.waitAt(t, "^"+regexp.QuoteMeta(onions[p])+"$")
		r := <-probes[p]
		if r.err != nil {
			t.Fatalf("%s's onion service, through another tor: %v", p.name, r.err)
		}
		t.Logf("phase: %s, up --tor to: node up %v; onion service published (printed) %v; answering another tor client %v (%d tries)",
			p.name, upAt.Round(time.Millisecond), publishedAt.Round(time.Millisecond), r.at.Round(time.Millisecond), r.tries)
	}
	aliceOnion, bobOnion := onions[an], onions[bn]
	checkProductTorrc(t, filepath.Join(alice, "tor", "torrc"))
	checkTorStatus(t, env, alice, aliceOnion)

	// Alice founds a pursuance on the relay's onion address and invites
	// Bob; he joins through Tor.
	step := time.Now()
	pid := must(t, env, "--home", alice, "create", "--name", "Desk", "--relay", relayURL)
	code := invite(t, env, alice, "Desk", relayURL)
	t.Logf("phase: create on the onion relay and invite: %v", time.Since(step).Round(time.Millisecond))
	step = time.Now()
	if got := must(t, env, "--home", bob, "join", code); got != pid {
		t.Fatalf("bob joined %s, want %s", got, pid)
	}
	t.Logf("phase: bob's join through the relay's onion: %v", time.Since(step).Round(time.Millisecond))
	took := eventually(t, "alice sees bob's join", seeWithin, func() (bool, string) {
		out := must(t, env, "--home", alice, "members", "Desk", "--json")
		return strings.Contains(out, `"name":"Bob"`), out
	})
	t.Logf("phase: bob's join seen by alice: %v", took.Round(time.Millisecond))

	// They work a task through the relay.
	task := must(t, env, "--home", alice, "task", "add", "Desk", "--title", "Find the leak", "--assign", "Bob", "--visible-to", "researcher")
	took = eventually(t, "bob sees alice's task", seeWithin, func() (bool, string) {
		out := must(t, env, "--home", bob, "task", "list", "Desk", "--json")
		return strings.Contains(out, task) && strings.Contains(out, "Find the leak"), out
	})
	t.Logf("phase: alice's new task seen by bob (through the relay): %v", took.Round(time.Millisecond))
	must(t, env, "--home", bob, "task", "status", "Desk", task, "Started")
	must(t, env, "--home", bob, "task", "comment", "Desk", task, "The memo is from May.")
	took = eventually(t, "alice sees bob's status and comment", seeWithin, func() (bool, string) {
		st := showTask(t, env, alice, task)
		return st.Status == "Started" && st.has("The memo is from May."), fmt.Sprint(st)
	})
	t.Logf("phase: bob's status and comment seen by alice (through the relay): %v", took.Round(time.Millisecond))

	// Each node announced its onion service in the log when it took up
	// the pursuance (a node-address event, through the relay while it
	// runs); nobody adds the nodes to the relay list. Then the relay
	// stops.
	for _, p := range []*proc{an, bn} {
		_, at := p.waitAt(t, `announced this node's onion service to the other members`)
		t.Logf("phase: %s announced its onion service (since it started): %v", p.name, at.Round(time.Millisecond))
	}
	if list := relayList(t, env, bob); !slices.Equal(list, []string{relayURL}) {
		t.Errorf("the relay list %v, want the relay only: the nodes are found through their announcements", list)
	}
	checkRelaySockets(t, rp.cmd.Process.Pid, relayData, relayTor)
	step = time.Now()
	rp.stop(t)
	waitTorsGone(t, "the relay's", []int{relayTor})
	t.Logf("phase: the relay stopped, and its tor gone: %v", time.Since(step).Round(time.Millisecond))
	checkRelayLog(t, rp, relayData, relayTor)

	// Node to node: the relay is gone.
	// The relay's onion service is gone: tor gets no answer from it,
	// which is unreachable, not a relay that accepts and stays silent.
	step = time.Now()
	if code, out, errOut := run(t, env, "--home", alice, "relays", "remove", "Desk", relayURL); code != 0 || strings.Contains(errOut, "accepts connections but sends nothing") {
		t.Errorf("relays remove with the relay down: exit %d: %s%s", code, out, errOut)
	}
	eventually(t, "bob sees the relay removed", seeWithin, func() (bool, string) {
		list := relayList(t, env, bob)
		return len(list) == 0, fmt.Sprint(list)
	})
	t.Logf("phase: alice's relay list change seen by bob, node to node: %v", time.Since(step).Round(time.Millisecond))
	step = time.Now()
	must(t, env, "--home", bob, "task", "comment", "Desk", task, "Sent node to node.")
	eventually(t, "alice sees bob's comment node to node", seeWithin, func() (bool, string) {
		st := showTask(t, env, alice, task)
		return st.has("Sent node to node."), fmt.Sprint(st)
	})
	t.Logf("phase: bob's comment seen by alice, node to node: %v", time.Since(step).Round(time.Millisecond))
	step = time.Now()
	must(t, env, "--home", alice, "task", "status", "Desk", task, "ReadyForReview")
	eventually(t, "bob sees alice's status node to node", seeWithin, func() (bool, string) {
		st := showTask(t, env, bob, task)
		return st.Status == "ReadyForReview", fmt.Sprint(st)
	})
	t.Logf("phase: alice's status seen by bob, node to node: %v", time.Since(step).Round(time.Millisecond))

	// Bob is going offline: his node stops (Alice's backs off from it),
	// and she invites Carol with a code that names only her node.
	step = time.Now()
	aliceLogged := len(an.stderr())
	bobTors := torChildren(bn.cmd.Process.Pid)
	bn.stop(t)
	waitTorsGone(t, "bob's node's", bobTors)
	t.Logf("phase: bob's node stopped, and its tor gone: %v", time.Since(step).Round(time.Millisecond))
	// Alice's node tries bob's announced node in its next round, finds
	// it off, says so, and leaves it out for a while (app.PeerBackoff).
	step = time.Now()
	eventually(t, "alice's node finds bob's node off", seeWithin, func() (bool, string) {
		for _, l := range strings.Split(an.stderr()[aliceLogged:], "\n") {
			if strings.Contains(l, "a member's node did not answer") && strings.Contains(l, bobOnion) {
				return true, l
			}
		}
		return false, "no line naming bob's node"
	})
	t.Logf("phase: alice's node finds bob's node off: %v", time.Since(step).Round(time.Millisecond))
	step = time.Now()
	code = invite(t, env, alice, "Desk", aliceOnion)
	t.Logf("phase: alice invites carol: %v", time.Since(step).Round(time.Millisecond))
	step = time.Now()
	isolated(t)
	if got := must(t, env, "--home", carol, "--tor", "join", code); got != pid {
		t.Fatalf("carol joined %s, want %s", got, pid)
	}
	t.Logf("phase: carol's join (her own tor started, bootstrapped) through alice's node only: %v", time.Since(step).Round(time.Millisecond))
	checkProductTorrc(t, filepath.Join(carol, "tor", "torrc"))
	st := showTask(t, env, carol, task, "--offline")
	if st.Status != "ReadyForReview" || !st.has("The memo is from May.") || !st.has("Sent node to node.") {
		t.Errorf("carol's view of the task after joining through alice's node: %v", st)
	}
	took = eventually(t, "alice sees carol's join", seeWithin, func() (bool, string) {
		out := must(t, env, "--home", alice, "members", "Desk", "--json")
		return strings.Contains(out, `"name":"Carol"`), out
	})
	t.Logf("phase: carol's join seen by alice: %v", took.Round(time.Millisecond))

	aliceTors := torChildren(an.cmd.Process.Pid)
	an.stop(t)
	waitTorsGone(t, "alice's node's", aliceTors)
	// No tor that this test's processes started outlives them (Carol's
	// one-shot command's included).
	eventually(t, "every tor of the test's pursuance processes gone", torExitWait, func() (bool, string) {
		var left []string
		for pid, tp := range torProcesses() {
			if strings.Contains(tp.cmdline, dir) {
				left = append(left, fmt.Sprintf("%d: %s", pid, tp.cmdline))
			}
		}
		return len(left) == 0, strings.Join(left, "; ")
	})
	t.Logf("phase: the whole scenario: %v", time.Since(begin).Round(time.Millisecond))
}

// suiteEnv returns the environment of the pursuance processes: this
// test binary as the command, the private network's torrc lines
// (checked), no real tor without TestingTorNetwork, and nothing of the
// caller's own Pursuance settings.
func suiteEnv(t *testing.T, n *tortest.Network, dir string) []string {
	t.Helper()
	lines := n.ClientTorrc()
	if err := tortest.CheckTorrc(lines); err != nil {
		t.Fatal(err)
	}
	torrc := filepath.Join(dir, "torrc")
	if err := os.WriteFile(torrc, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PURSUANCE_") {
			env = append(env, kv)
		}
	}
	env = append(env, envCLI+"=1", "PURSUANCE_PASSPHRASE=pw", "PURSUANCE_TORRC="+torrc, "PURSUANCE_TOR_TESTNET_ONLY=1")
	if _, err := exec.LookPath("tor"); err != nil {
		// tortest found tor where Debian puts it, off this PATH (a user's
		// PATH often lacks /usr/sbin): the product looks on PATH only.
		for _, p := range []string{"/usr/sbin/tor", "/usr/bin/tor"} {
			if _, err := os.Stat(p); err == nil {
				env = append(env, "PURSUANCE_TOR_BINARY="+p)
				break
			}
		}
	}
	if os.Getenv("GORACE") == "" {
		// Under -race, each process otherwise sleeps a second at exit.
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	return env
}

// isolated fails the test unless this process is in tortest's isolated
// namespace with nothing but loopback: called before starting any
// pursuance process that starts tor.
func isolated(t *testing.T) {
	t.Helper()
	if err := tortest.CheckIsolated(); err != nil {
		t.Fatal(err)
	}
}

// checkProductTorrc checks the torrc that the product's launcher wrote
// (its own lines and PURSUANCE_TORRC's) with tortest.CheckTorrc: it
// keeps tor in the private network.
func checkProductTorrc(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tortest.CheckTorrc(strings.Split(string(b), "\n")); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

// checkTorStatus checks `tor status --json` on a home whose node runs
// up --tor: exactly {"running":true,"bootstrap":100,"onion":"….onion"}.
func checkTorStatus(t *testing.T, env []string, home, onion string) {
	t.Helper()
	out := must(t, env, "--home", home, "tor", "status", "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("tor status --json: %v: %s", err, out)
	}
	want := map[string]any{"running": true, "bootstrap": float64(100), "onion": strings.TrimPrefix(onion, "http://")}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("tor status --json = %s, want %v", out, want)
	}
}

// invite makes an invite into the researcher role with `invite --json`,
// checks that its code names only the relay only, and returns the code.
func invite(t *testing.T, env []string, home, p, only string) string {
	t.Helper()
	code, out, errOut := run(t, env, "--home", home, "invite", p, "--role", "researcher", "--json")
	var inv struct{ Code string }
	if code != 0 || json.Unmarshal([]byte(out), &inv) != nil {
		t.Fatalf("invite --json: exit %d: %s %s", code, out, errOut)
	}
	c, err := app.ParseInviteCode(inv.Code)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Relays, []string{only}) || c.Reach() != app.ReachTor {
		t.Errorf("the invite code names %v (reach %v), want only %s", c.Relays, c.Reach(), only)
	}
	if !strings.Contains(errOut, "needs Tor") {
		t.Errorf("invite does not say that its code needs Tor: %s", errOut)
	}
	return inv.Code
}

// relayList returns the pursuance Desk's relay list as home sees it
// (after a quick pull).
func relayList(t *testing.T, env []string, home string) []string {
	t.Helper()
	out := must(t, env, "--home", home, "relays", "Desk", "--json")
	var list []struct{ URL string }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("relays --json: %v: %s", err, out)
	}
	var urls []string
	for _, r := range list {
		urls = append(urls, r.URL)
	}
	return urls
}

// taskView is what `task show --json` says of a task, in part.
type taskView struct {
	Status   string
	Comments []struct{ Text string }
}

func (v taskView) has(comment string) bool {
	return slices.ContainsFunc(v.Comments, func(c struct{ Text string }) bool { return c.Text == comment })
}

// showTask returns the task of Desk as home sees it (after a quick pull,
// unless flags say --offline).
func showTask(t *testing.T, env []string, home, task string, flags ...string) taskView {
	t.Helper()
	args := append([]string{"--home", home}, flags...)
	out := must(t, env, append(args, "task", "show", "Desk", task, "--json")...)
	var v taskView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("task show --json: %v: %s", err, out)
	}
	return v
}

// checkRelaySockets checks, while the relay runs, the sockets it holds:
// it listens on no TCP port, only on its onion socket (mode 0600), and
// its only TCP connections are to its own tor's control port.
func checkRelaySockets(t *testing.T, relayPID int, data string, torPID int) {
	t.Helper()
	inodes, err := socketInodes(relayPID)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(data, "onion.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the relay's onion socket: %v, %v; want mode 0600", fi, err)
	}
	lns, err := unixListeners(inodes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lns, []string{sock}) {
		t.Errorf("the relay listens on Unix sockets %q, want only %s", lns, sock)
	}
	b, err := os.ReadFile(filepath.Join(data, "tor", "control-port"))
	if err != nil {
		t.Fatal(err)
	}
	control := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "PORT="))
	tcp, err := tcpSockets(inodes)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tcp {
		if s.listening || s.remote.String() != control {
			t.Errorf("the relay holds a TCP socket %v; want none but its connection to its tor's control port %s", s, control)
		}
	}
	t.Logf("the relay (pid %d) listens on Unix sockets %q; its TCP sockets: %v (tor %d's control port is %s)", relayPID, lns, tcp, torPID, control)
}

// checkRelayLog checks the stopped relay's debug log: it accepted
// connections, every one on its onion socket from its own tor process
// (the peer's process ID, as the kernel gave it), and no record names a
// client's network address.
func checkRelayLog(t *testing.T, rp *proc, data string, torPID int) {
	t.Helper()
	sock := filepath.Join(data, "onion.sock")
	accepted := 0
	for _, line := range strings.Split(rp.stderr(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue // the URL it prints
		}
		if r, ok := rec["remote"]; ok && r != "" && r != "@" {
			t.Errorf("the relay's log names a remote address: %s", line)
		}
		if rec["msg"] != "connection accepted" {
			continue
		}
		accepted++
		if rec["network"] != "unix" || rec["local"] != sock || rec["peer_pid"] != float64(torPID) {
			t.Errorf("a connection not from the relay's tor (pid %d) on %s: %s", torPID, sock, line)
		}
	}
	// Alice's and Bob's commands and nodes connected, each more than once.
	if accepted < 4 {
		t.Errorf("the relay logged %d accepted connections, want at least 4 (alice's and bob's):\n%s", accepted, rp.stderr())
	}
	t.Logf("the relay accepted %d connections, every one on %s from its tor (pid %d)", accepted, sock, torPID)
}

// waitTorsGone waits for the tor processes pids, whose owner stopped, to
// be gone.
func waitTorsGone(t *testing.T, whose string, pids []int) {
	t.Helper()
	eventually(t, whose+" tor gone", torExitWait, func() (bool, string) {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		return len(left) == 0, fmt.Sprint(left)
	})
}

// probeResult is when an onion service first answered, after how many
// tries.
type probeResult struct {
	at    time.Duration
	tries int
	err   error
}

// probe asks the relay at onion for /healthz through the tor client at
// socks until it answers 200, as soon as it can (a try that finds no
// descriptor yet fails at once, and tor asks the directories again after
// a few seconds), and says how long after since that was.
func probe(ctx context.Context, socks, onion string, since time.Time) probeResult {
	ctx, cancel := context.WithTimeout(ctx, probeWithin)
	defer cancel()
	var r probeResult
	for {
		r.tries++
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: tor.NewDialer(socks, fmt.Sprintf("probe-%d", r.tries)).DialContext}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, onion+"/healthz", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			c.CloseIdleConnections()
			if resp.StatusCode == http.StatusOK {
				r.at = time.Since(since)
				return r
			}
			err = fmt.Errorf("GET /healthz: %s", resp.Status)
		}
		select {
		case <-ctx.Done():
			r.err = fmt.Errorf("%s did not answer within %v (%d tries; the last: %v)", onion, probeWithin, r.tries, err)
			return r
		case <-time.After(200 * time.Millisecond):
		}
	}
}
