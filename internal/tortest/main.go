package tortest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// envHostNS marks a test binary that Main re-executed in namespaces: it
// holds the network and PID namespaces of the process that did so (the
// host's, as /proc/self/ns/{net,pid} name them), which the child's own
// must differ from.
const envHostNS = "PURSUANCE_TORTEST_HOST_NS"

// errNotIsolated is what every start of tor returns when the process is
// not in the private namespace Main made, or the namespace has another
// interface than lo.
var errNotIsolated = errors.New("tortest: refusing to start tor outside an isolated network namespace")

// isolation is what Main found out about the process it runs the tests in.
var isolation struct {
	sync.Mutex
	mainCalled bool
	inside     bool   // in a namespace Main made, checked to hold only lo
	netns      string // that namespace, as /proc/self/ns/net names it
	hostNS     string // the namespaces Main was started in (the marker)
	why        string // why Tor tests cannot run, when they cannot
	tor        string // path of the tor binary
	gencert    string // path of tor-gencert
}

// Main runs the package's tests inside a fresh network namespace that has
// nothing but loopback, and exits with their status; call it from
// TestMain instead of m.Run.
//
// It re-executes the test binary in new network and PID namespaces (the
// kernel's unshare, as `unshare --net --pid --fork` does; as a user other
// than root, in a new user namespace too), with a marker in the
// environment. Inside, it brings lo up and checks that no interface but lo
// exists before any test runs; after the tests it stops the shared network
// and every tor still running, and fails the run if one survives. When the
// kernel starts the tests' binary in the new PID namespace, every tor it
// starts dies with it.
//
// Where namespaces cannot be made (not Linux, not permitted, the re-exec
// fails to start), Main runs the tests here with Available false, so that
// Tor tests skip with the reason; it never lets them fall back to the
// host's network.
func Main(m *testing.M) {
	isolation.Lock()
	isolation.mainCalled = true
	isolation.Unlock()
	if host, ok := os.LookupEnv(envHostNS); ok && host != "" {
		os.Exit(runInside(m, host))
	}
	code, err := runIsolated()
	if err != nil {
		isolation.Lock()
		isolation.why = fmt.Sprintf("cannot make a network namespace for the Tor tests (%v); they need Linux and root, or unprivileged user namespaces", err)
		isolation.Unlock()
		os.Exit(m.Run())
	}
	os.Exit(code)
}

// runInside runs the tests in the namespace Main made, after checking it.
func runInside(m *testing.M, host string) int {
	prepareInside(host)
	code := m.Run()
	if err := teardown(code != 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// prepareInside checks the namespace this process is in against the
// host's (host: the marker's value) and records what it found for
// Available and for every start of tor.
func prepareInside(host string) {
	netns, err := enterIsolation(host)
	isolation.Lock()
	defer isolation.Unlock()
	isolation.mainCalled = true
	isolation.hostNS = host
	if err != nil {
		isolation.why = err.Error()
		return
	}
	isolation.inside = true
	isolation.netns = netns
	isolation.tor, isolation.gencert, isolation.why = findTor()
}

// findTor looks for tor and tor-gencert on PATH and where Debian puts
// them; why says what is missing and how to install it.
func findTor() (tor, gencert, why string) {
	look := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin"} {
			p := dir + "/" + name
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		return ""
	}
	tor, gencert = look("tor"), look("tor-gencert")
	if tor == "" || gencert == "" {
		return "", "", "tor and tor-gencert are not installed; install Debian's tor package with no service started (docs/testing-tor.md, \"Installing tor\")"
	}
	return tor, gencert, ""
}

// Available reports whether Tor tests can run here: the process is in the
// isolated namespace Main made, and tor and tor-gencert are installed.
// When they cannot, why says so in a sentence.
func Available() (ok bool, why string) {
	isolation.Lock()
	defer isolation.Unlock()
	switch {
	case !isolation.mainCalled:
		return false, "tortest.Main was not called from this package's TestMain, so there is no isolated network namespace"
	case isolation.why != "":
		return false, isolation.why
	case !isolation.inside:
		return false, "not in an isolated network namespace"
	}
	return true, ""
}

// Skip skips t, with Available's reason, when Tor tests cannot run here.
func Skip(t testing.TB) {
	t.Helper()
	if ok, why := Available(); !ok {
		t.Skip("Tor tests skipped: " + why)
	}
}

// binaries returns the paths of tor and tor-gencert, or why Tor tests
// cannot run here.
func binaries() (tor, gencert string, err error) {
	if ok, why := Available(); !ok {
		return "", "", fmt.Errorf("tortest: cannot start tor: %s", why)
	}
	isolation.Lock()
	defer isolation.Unlock()
	return isolation.tor, isolation.gencert, nil
}

// CheckIsolated returns nil when this process is in the namespace Main
// made and that namespace has no interface but lo, and an error saying
// which does not hold otherwise. Every start of tor in this package checks
// it first; a test that starts tor by other means (the product's own
// launcher) should too.
func CheckIsolated() error {
	return checkIsolated()
}
