//go:build linux

package tortest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// survivorWait bounds how long Main's outer process waits for the tor
// processes of a namespace whose tests ended to be gone. The kernel kills
// them with the namespace's first process, so this is a check, not a wait.
const survivorWait = 5 * time.Second

// runIsolated runs this test binary again in new network and PID
// namespaces and returns its exit status. It returns an error only when
// the namespaces could not be made or the binary not started.
func runIsolated() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find the test binary: %w", err)
	}
	host, err := namespaces("self")
	if err != nil {
		return 0, err
	}
	// Pdeathsig follows the thread that started the child: keep this one
	// for the child's whole life (Main exits the process afterwards).
	runtime.LockOSThread()
	// As root, new network and PID namespaces; where even root may not
	// make them (a container without CAP_SYS_ADMIN), and for any other
	// user, a user namespace first, in which this user is root.
	attempts := []bool{true}
	if os.Geteuid() == 0 {
		attempts = []bool{false, true}
	}
	var cmd *exec.Cmd
	for _, userns := range attempts {
		cmd = isolatedCommand(exe, host, userns)
		if err = cmd.Start(); err == nil {
			break
		}
	}
	if err != nil {
		runtime.UnlockOSThread()
		return 0, err
	}
	// Hold the child's namespaces open: they then outlive it, so their
	// names cannot pass to another process's new namespaces (the kernel
	// reuses them) before the survivors are looked for.
	child, hold := holdNamespaces(cmd.Process.Pid)
	defer func() {
		for _, f := range hold {
			f.Close()
		}
	}()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			fmt.Fprintf(os.Stderr, "tortest: the tests' process in the namespace died of %v\n", ws.Signal())
			code = 1
		}
	case err != nil:
		fmt.Fprintf(os.Stderr, "tortest: waiting for the tests' process: %v\n", err)
		code = 1
	}
	if child.net != "" {
		if err := killSurvivors(child); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	warnHostTor(host)
	return code, nil
}

// holdNamespaces opens the network and PID namespaces of process pid and
// returns their names and the open files; on any error, none.
func holdNamespaces(pid int) (nsIDs, []*os.File) {
	var files []*os.File
	for _, kind := range []string{"net", "pid"} {
		f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/" + kind)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nsIDs{}, nil
		}
		files = append(files, f)
	}
	ids, err := namespaces(strconv.Itoa(pid))
	if err != nil {
		for _, f := range files {
			f.Close()
		}
		return nsIDs{}, nil
	}
	return ids, files
}

// isolatedCommand returns the command that runs this test binary (exe)
// again in new network and PID namespaces, and in a new user namespace
// too if userns is set, marked with the host's namespaces.
func isolatedCommand(exe string, host nsIDs, userns bool) *exec.Cmd {
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envHostNS+"="+host.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWPID,
		// If this process dies (go test's timeout kills it), so do the
		// tests, and with the first process of their PID namespace
		// every tor they started.
		Pdeathsig: syscall.SIGKILL,
	}
	if userns {
		a := cmd.SysProcAttr
		a.Cloneflags |= syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	return cmd
}

// killSurvivors kills, and reports, every tor process still in the
// namespaces of a test process that has ended, which the caller holds
// open. The kernel kills every process of a PID namespace with its first,
// so this finds none unless something is badly wrong.
func killSurvivors(child nsIDs) error {
	deadline := time.Now().Add(survivorWait)
	for {
		var left []int
		procs, _ := torProcesses()
		for _, p := range procs {
			if p.ns.net == child.net || p.ns.pid == child.pid {
				left = append(left, p.pid)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return fmt.Errorf("tortest: tor processes %v outlived the tests' namespace; killed them", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// warnHostTor says so when a tor runs in the namespace Main was started
// in. Tests never start one there; it may be a system tor, so it is left
// alone, but the person running the tests should know.
func warnHostTor(host nsIDs) {
	procs, _ := torProcesses()
	var pids []int
	for _, p := range procs {
		if p.ns.net == host.net {
			pids = append(pids, p.pid)
		}
	}
	if len(pids) > 0 {
		fmt.Fprintf(os.Stderr, "tortest: warning: tor processes %v run in this machine's own network namespace; Pursuance's tests never start tor there (docs/testing-tor.md)\n", pids)
	}
}

// nsIDs names a process's network and PID namespaces the way
// /proc/PID/ns/* links do ("net:[4026531840]").
type nsIDs struct{ net, pid string }

func (n nsIDs) String() string { return n.net + " " + n.pid }

func parseNsIDs(s string) (nsIDs, error) {
	f := strings.Fields(s)
	if len(f) != 2 || !strings.HasPrefix(f[0], "net:[") || !strings.HasPrefix(f[1], "pid:[") {
		return nsIDs{}, fmt.Errorf("tortest: %s=%q is not two namespaces", envHostNS, s)
	}
	return nsIDs{net: f[0], pid: f[1]}, nil
}

// namespaces reads the namespaces of /proc/<which> ("self", a PID,
// "thread-self").
func namespaces(which string) (nsIDs, error) {
	n, err := os.Readlink("/proc/" + which + "/ns/net")
	if err != nil {
		return nsIDs{}, fmt.Errorf("tortest: read network namespace: %w", err)
	}
	p, err := os.Readlink("/proc/" + which + "/ns/pid")
	if err != nil {
		return nsIDs{}, fmt.Errorf("tortest: read PID namespace: %w", err)
	}
	return nsIDs{net: n, pid: p}, nil
}

// enterIsolation checks, in the process Main re-executed, that it is in
// namespaces other than the host's (named by the marker), brings lo up
// and checks that lo is the only interface. It returns the network
// namespace, which every later start of tor checks it is still in.
func enterIsolation(marker string) (string, error) {
	host, err := parseNsIDs(marker)
	if err != nil {
		return "", err
	}
	own, err := namespaces("self")
	if err != nil {
		return "", err
	}
	if own.net == host.net {
		return "", fmt.Errorf("this process is in the network namespace it was started from (%s), not one that tortest.Main made", own.net)
	}
	if own.pid == host.pid {
		return "", fmt.Errorf("this process is in the PID namespace it was started from (%s), not one that tortest.Main made", own.pid)
	}
	if err := loopbackUp(); err != nil {
		return "", err
	}
	names, err := interfaceNames("self")
	if err != nil {
		return "", err
	}
	if err := checkOnlyLoopback(names); err != nil {
		return "", err
	}
	return own.net, nil
}

// loopbackUp sets the IFF_UP flag of lo, which a new network namespace
// starts without (what `ip link set lo up` does).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("tortest: bring lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("tortest: bring lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("tortest: bring lo up: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("tortest: bring lo up: %w", err)
	}
	return nil
}

// interfaceNames lists the network interfaces of the namespace of
// /proc/<which> two ways, and returns both lists merged: from the kernel
// over netlink (net.Interfaces; its socket is in the calling thread's
// namespace) and from /proc/<which>/net/dev. Not from /sys/class/net: that
// shows the interfaces of whoever mounted /sys, which in a namespace made
// without a new mount of /sys are the host's.
func interfaceNames(which string) ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("tortest: list network interfaces: %w", err)
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	f, err := os.Open("/proc/" + which + "/net/dev")
	if err != nil {
		return nil, fmt.Errorf("tortest: list network interfaces: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, _, ok := strings.Cut(sc.Text(), ":")
		if ok && !strings.Contains(name, "|") {
			names = append(names, strings.TrimSpace(name))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tortest: list network interfaces: %w", err)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// checkOnlyLoopback returns an error unless names (a namespace's network
// interfaces) is lo and nothing else.
func checkOnlyLoopback(names []string) error {
	var others []string
	hasLo := false
	for _, n := range names {
		if n == "lo" {
			hasLo = true
		} else {
			others = append(others, n)
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("the network namespace has interfaces besides lo: %s", strings.Join(others, ", "))
	}
	if !hasLo {
		return errors.New("the network namespace has no loopback interface")
	}
	return nil
}

// checkIsolated is the check every start of tor or tor-gencert makes first,
// on the thread that forks it: this process is in the namespace Main made
// and checked, this thread has not left it, and the namespace still has no
// interface but lo.
func checkIsolated() error {
	isolation.Lock()
	inside, netns, why := isolation.inside, isolation.netns, isolation.why
	isolation.Unlock()
	if !inside {
		if why == "" {
			why = "tortest.Main did not run the tests in a namespace"
		}
		return fmt.Errorf("%w: %s", errNotIsolated, why)
	}
	cur, err := namespaces("thread-self")
	if err != nil {
		return fmt.Errorf("%w: %v", errNotIsolated, err)
	}
	if cur.net != netns {
		return fmt.Errorf("%w: this thread is in network namespace %s, not the isolated %s", errNotIsolated, cur.net, netns)
	}
	names, err := interfaceNames("thread-self")
	if err != nil {
		return fmt.Errorf("%w: %v", errNotIsolated, err)
	}
	if err := checkOnlyLoopback(names); err != nil {
		return fmt.Errorf("%w: %v", errNotIsolated, err)
	}
	return nil
}

// The spawner is one goroutine locked to its OS thread for the life of
// the process: every tor is started from it, so that the check above runs
// on the thread that forks, and so that the Pdeathsig of every tor (which
// the kernel ties to the thread that started it) fires only when the whole
// process dies.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// spawn checks isolation and starts cmd, which dies when this process
// does (SIGKILL) and runs in a process group of its own.
func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: see spawner
			for r := range spawner.reqs {
				if err := checkIsolated(); err != nil {
					r.done <- err
					continue
				}
				r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := spawnRequest{cmd: cmd, done: make(chan error, 1)}
	spawner.reqs <- r
	return <-r.done
}

// signalGroup sends sig to the process group a spawned process leads.
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}

// torProc is a running process named tor and its namespaces.
type torProc struct {
	pid int
	ns  nsIDs
}

// torProcesses lists the processes named tor that this process can see
// in /proc (pgrep -x tor), with their namespaces where it may read them.
func torProcesses() ([]torProc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []torProc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "tor" || zombie(e.Name()) {
			continue
		}
		ns, _ := namespaces(e.Name())
		out = append(out, torProc{pid: pid, ns: ns})
	}
	return out, nil
}

// zombie reports whether /proc/<pid> is a process that has exited and
// waits to be reaped (state Z in /proc/PID/stat, after the command in
// parentheses).
func zombie(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return true // gone
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// strayTors names the tor processes still running in this process's PID
// namespace, which after the tests stopped everything must be none.
func strayTors() ([]int, error) {
	own, err := namespaces("self")
	if err != nil {
		return nil, err
	}
	procs, err := torProcesses()
	if err != nil {
		return nil, err
	}
	var left []int
	for _, p := range procs {
		if p.ns.pid == own.pid {
			left = append(left, p.pid)
		}
	}
	return left, nil
}
