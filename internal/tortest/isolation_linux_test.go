package tortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Some tests run this test binary again as a helper process, which does
// one thing, prints what happened on stdout and exits.
const (
	envHelper      = "PURSUANCE_TORTEST_HELPER"       // which helper
	envHelperTorrc = "PURSUANCE_TORTEST_HELPER_TORRC" // a file of ClientTorrc's lines
	envHelperDir   = "PURSUANCE_TORTEST_HELPER_DIR"   // a DataDirectory for its tor

	helperStart     = "start"     // try to start a tor client
	helperInterface = "interface" // add an interface beside lo, then try
	helperOrphan    = "orphan"    // start a tor client, then die by SIGKILL

	// ownerDeathWait bounds how long a tor may outlive the process that
	// started it. Pdeathsig kills it at once; the margin is for a loaded
	// machine.
	ownerDeathWait = 20 * time.Second
)

// runHelper runs the helper named kind, in place of the tests.
func runHelper(_ *testing.M, kind string) int {
	prepareInside(os.Getenv(envHostNS))
	lines, err := os.ReadFile(os.Getenv(envHelperTorrc))
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	n := &Network{clientTorrc: strings.Split(strings.TrimSpace(string(lines)), "\n")}
	dir := os.Getenv(envHelperDir)
	if kind == helperInterface {
		if err := checkIsolated(); err != nil {
			fmt.Println("error: isolation check failed before adding an interface:", err)
			return 2
		}
		if err := addTun("tortest0"); err != nil {
			fmt.Println("cannot add an interface:", err)
			return 3
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	c, err := n.startClient(ctx, dir, nil)
	switch {
	case errors.Is(err, errNotIsolated):
		fmt.Println("refused:", err)
		return 0
	case err != nil:
		if c != nil {
			c.Stop()
		}
		fmt.Println("error:", err)
		return 2
	case kind == helperOrphan:
		fmt.Printf("tor pid %d\n", c.proc.cmd.Process.Pid)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	default:
		c.Stop()
		fmt.Println("started")
		return 1
	}
}

// addTun makes a tun interface named name in this process's network
// namespace (what `ip tuntap add` does), and keeps it: the file stays open
// for the life of the process.
func addTun(name string) error {
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:], name)
	*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TUN | unix.IFF_NO_PI
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
		f.Close()
		return errno
	}
	return nil
}

// helper runs the helper kind with env added, and returns its output.
func helper(t *testing.T, n *Network, kind string, attr *syscall.SysProcAttr, env ...string) (string, error) {
	t.Helper()
	torrc := filepath.Join(t.TempDir(), "client-torrc")
	if err := os.WriteFile(torrc, []byte(strings.Join(n.ClientTorrc(), "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+kind, envHelperTorrc+"="+torrc, envHelperDir+"="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = attr
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// TestRefusesOutsideMainsNamespace: a process that did not come out of
// Main's re-exec into a new namespace (here: one whose marker names the
// namespace it is in as the host's) starts no tor, and says why.
func TestRefusesOutsideMainsNamespace(t *testing.T) {
	Skip(t) // in the isolated namespace, so that a failure starts tor only there
	n := Shared(t)
	own, err := namespaces("self")
	if err != nil {
		t.Fatal(err)
	}
	out, err := helper(t, n, helperStart, nil, envHostNS+"="+own.String())
	if err != nil || !strings.Contains(out, "refused:") || !strings.Contains(out, "not one that tortest.Main made") {
		t.Fatalf("a helper outside Main's namespace: %v\n%s", err, out)
	}
	t.Logf("helper: %s", strings.TrimSpace(out))
}

// TestRefusesInterfaceBesideLoopback: a process in a namespace Main
// checked refuses to start tor once an interface other than lo appears
// there. The helper runs in a network namespace of its own, so that its
// interface never shows in the one the other tests use.
func TestRefusesInterfaceBesideLoopback(t *testing.T) {
	Skip(t)
	n := Shared(t)
	out, err := helper(t, n, helperInterface, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL})
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		t.Skipf("no interface can be made here to test with (%s); TestCheckOnlyLoopback covers the check itself", strings.TrimSpace(out))
	}
	if err != nil || !strings.Contains(out, "refused:") || !strings.Contains(out, "tortest0") {
		t.Fatalf("a helper with an interface beside lo: %v\n%s", err, out)
	}
	t.Logf("helper: %s", strings.TrimSpace(out))
}

// TestTorDiesWithItsOwner: a tor whose test process is killed (as go
// test's timeout kills it) does not outlive it. The helper starts a client
// and kills itself with SIGKILL; its tor, now a child of this process (the
// first of the PID namespace), must be gone within ownerDeathWait.
func TestTorDiesWithItsOwner(t *testing.T) {
	Skip(t)
	n := Shared(t)
	if os.Getpid() != 1 {
		t.Fatalf("the tests run as pid %d, not as the first process of Main's PID namespace", os.Getpid())
	}
	out, _ := helper(t, n, helperOrphan, nil)
	var pid int
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "tor pid "); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid == 0 {
		t.Fatalf("the helper started no tor:\n%s", out)
	}
	start := time.Now()
	for {
		// The helper's tor is now this process's child (the first of the
		// PID namespace inherits orphans): reap it. If the dying helper
		// reaped it first (a thread of it waited for tor, which its
		// Pdeathsig killed as the helper's threads exited), it is not
		// ours, and all that counts is that it is gone.
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		switch {
		case got == pid:
			t.Logf("tor %d ended %v after its owner (%v)", pid, time.Since(start).Round(time.Millisecond), ws)
			return
		case errors.Is(err, syscall.ECHILD) && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH):
			t.Logf("tor %d ended with its owner, which reaped it", pid)
			return
		case err != nil && !errors.Is(err, syscall.ECHILD):
			t.Fatalf("wait for tor %d: %v", pid, err)
		}
		if time.Since(start) > ownerDeathWait {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("tor %d still runs %v after the process that started it died", pid, ownerDeathWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEveryTorIsIsolated: every tor in the tests' PID namespace runs in
// the isolated network namespace, not the host's, and the network's are
// among them (pgrep -x tor, namespaces compared).
func TestEveryTorIsIsolated(t *testing.T) {
	Skip(t)
	Shared(t)
	own, err := namespaces("self")
	if err != nil {
		t.Fatal(err)
	}
	host, err := parseNsIDs(os.Getenv(envHostNS))
	if err != nil {
		t.Fatal(err)
	}
	procs, err := torProcesses()
	if err != nil {
		t.Fatal(err)
	}
	mine := 0
	for _, p := range procs {
		if p.ns.pid != own.pid {
			continue
		}
		mine++
		if p.ns.net != own.net || p.ns.net == host.net {
			t.Errorf("tor %d runs in network namespace %s; the tests' is %s, the host's %s", p.pid, p.ns.net, own.net, host.net)
		}
	}
	if mine < numAuthorities+numRelays {
		t.Errorf("found %d tor processes in the tests' PID namespace, want at least the network's %d", mine, numAuthorities+numRelays)
	}
	// What Main's teardown looks for, after stopping every tor, sees them.
	if stray, err := strayTors(); err != nil || len(stray) != mine {
		t.Errorf("strayTors() = %v, %v; want the %d running", stray, err, mine)
	}
}

// TestCheckOnlyLoopback: the interface check accepts lo alone.
func TestCheckOnlyLoopback(t *testing.T) {
	for _, tc := range []struct {
		names []string
		ok    bool
	}{
		{[]string{"lo"}, true},
		{[]string{"lo", "eth0"}, false},
		{[]string{"eth0"}, false},
		{[]string{"lo", "tortest0"}, false},
		{nil, false},
	} {
		if err := checkOnlyLoopback(tc.names); (err == nil) != tc.ok {
			t.Errorf("checkOnlyLoopback(%q) = %v, want ok=%v", tc.names, err, tc.ok)
		}
	}
}

// TestTorrcsNameOnlyLoopback: every torrc this package wrote (the
// network's, and a client's with lines of its own) names the testing
// network, its authorities on 127.0.0.1 and no fallbacks, and no address
// outside 127.0.0.0/8. It reads the files back and checks them with
// patterns of its own, not with CheckTorrc.
func TestTorrcsNameOnlyLoopback(t *testing.T) {
	Skip(t)
	n := Shared(t)
	n.StartClient(t, "HiddenServiceDir "+filepath.Join(t.TempDir(), "hs"), "HiddenServicePort 80 127.0.0.1:1")
	paths := writtenTorrcs()
	if len(paths) < numAuthorities+numRelays+1 {
		t.Fatalf("%d torrcs written, want at least the network's %d and a client's", len(paths), numAuthorities+numRelays)
	}
	dotted := regexp.MustCompile(`\b(\d{1,3})\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, m := range dotted.FindAllStringSubmatch(text, -1) {
			if m[1] != "127" {
				t.Errorf("%s names %s, outside 127.0.0.0/8", p, m[0])
			}
		}
		if strings.Contains(text, "::") || strings.Contains(text, "[") {
			t.Errorf("%s names an IPv6 address", p)
		}
		auths := 0
		for _, line := range strings.Split(text, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			switch strings.ToLower(f[0]) {
			case "dirauthority":
				auths++
				if !strings.Contains(line, " 127.0.0.1:") {
					t.Errorf("%s: authority not on 127.0.0.1: %s", p, line)
				}
			case "fallbackdir", "alternatedirauthority", "usebridges", "bridge":
				t.Errorf("%s: %s", p, line)
			}
		}
		if auths != numAuthorities {
			t.Errorf("%s has %d DirAuthority lines, want the network's %d", p, auths, numAuthorities)
		}
		for _, want := range []string{"\nTestingTorNetwork 1\n", "\nUseDefaultFallbackDirs 0\n"} {
			if !strings.Contains("\n"+text, want) {
				t.Errorf("%s lacks %q", p, strings.TrimSpace(want))
			}
		}
	}
}

// writtenTorrcs returns the paths of every torrc written so far.
func writtenTorrcs() []string {
	written.Lock()
	defer written.Unlock()
	return append([]string(nil), written.paths...)
}
