package tor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/internal/tor/faketor"
)

// Roles this test binary plays when run by a test (TestMain): a tor
// (faketor.Main), or a process that starts one and waits to be killed.
const (
	roleFakeTor = "PURSUANCE_TEST_ROLE_FAKETOR"
	roleStarter = "PURSUANCE_TEST_ROLE_STARTER"
)

func TestMain(m *testing.M) {
	if os.Getenv(roleFakeTor) == "1" {
		os.Exit(faketor.Main())
	}
	if dir := os.Getenv(roleStarter); dir != "" {
		os.Exit(starter(dir))
	}
	os.Exit(m.Run())
}

// fakeTorBinary makes Start run this test binary as a test double of tor.
func fakeTorBinary(t *testing.T) string {
	t.Setenv(roleFakeTor, "1")
	return os.Args[0]
}

// TestStartNotInstalled: without a tor binary, Start fails with
// ErrNotInstalled, whose text is one line saying how to install it, and
// creates nothing.
func TestStartNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	data := filepath.Join(t.TempDir(), "tor")
	_, err := Start(context.Background(), Config{DataDir: data})
	if !errors.Is(err, ErrNotInstalled) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "apt-get install tor") {
		t.Fatalf("Start without tor: %v", err)
	}
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the data directory was made: %v", err)
	}
	if _, err := Start(context.Background(), Config{Binary: "/nonexistent/tor", DataDir: data}); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("a missing binary named: %v", err)
	}
}

// TestStart: Start runs tor with its own torrc in a 0700 data directory,
// returns when the control port answers, owns the process (TAKEOWNERSHIP),
// and Close stops it.
func TestStart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "tor data") // a space: the torrc quotes it
	tr, err := Start(context.Background(), Config{Binary: fakeTorBinary(t), DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if !tr.Owned() || tr.SOCKSAddr() == "" || !strings.HasPrefix(tr.ControlAddr(), "127.0.0.1:") {
		t.Errorf("owned %v, SOCKS %q, control %q", tr.Owned(), tr.SOCKSAddr(), tr.ControlAddr())
	}
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory: %v %v", fi.Mode(), err)
	}
	torrc, _ := os.ReadFile(filepath.Join(data, "torrc"))
	for _, want := range []string{"SocksPort auto IsolateSOCKSAuth ExtendedErrors", "CookieAuthentication 1", fmt.Sprintf("__OwningControllerProcess %d", os.Getpid()), `DataDirectory "` + data + `"`} {
		if !strings.Contains(string(torrc), want) {
			t.Errorf("the torrc lacks %q:\n%s", want, torrc)
		}
	}
	if st, err := tr.Status(context.Background()); err != nil || st.Bootstrap != 100 {
		t.Errorf("Status: %+v %v", st, err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tr.exited:
	default:
		t.Error("Close returned with tor still running")
	}
	// Another attach finds nothing there.
	if _, err := Attach(context.Background(), tr.ControlAddr()); err == nil {
		t.Error("the control port answers after Close")
	}
}

// TestStartFails: a tor that exits at once makes Start fail with its last
// log line.
func TestStartFails(t *testing.T) {
	_, err := Start(context.Background(), Config{Binary: fakeTorBinary(t), DataDir: t.TempDir(),
		Torrc: []string{"FakeTorFail Could not bind to 127.0.0.1:9050: Address already in use"}})
	if err == nil || !strings.Contains(err.Error(), "Address already in use") || !strings.Contains(err.Error(), "exited at start") {
		t.Fatalf("a failing tor: %v", err)
	}
	if _, err := Start(context.Background(), Config{Binary: fakeTorBinary(t), DataDir: t.TempDir(), Torrc: []string{"Log notice stdout\nSocksPort 0"}}); err == nil {
		t.Error("a torrc line with a line break was taken")
	}
}

// TestStartSafety: a configuration for a private test network
// (TestingTorNetwork) is refused outside a network namespace that has
// only loopback; in a test, a real tor (one whose --version does not say
// it is a test double) is refused without one. The stand-in for a real
// tor here is a script that records whether anything but --version ran.
func TestStartSafety(t *testing.T) {
	// Here or, when the tests run inside internal/tortest's namespace, as
	// if here: a namespace with more than loopback.
	if err := onlyLoopback(); err == nil {
		isolatedNetwork = func() error { return errors.New("this network namespace has interfaces beyond loopback (eth0)") }
		t.Cleanup(func() { isolatedNetwork = onlyLoopback })
	} else if !strings.Contains(err.Error(), "beyond loopback") {
		t.Fatalf("outside an isolated namespace: %v", err)
	}
	_, err := Start(context.Background(), Config{Binary: fakeTorBinary(t), DataDir: t.TempDir(), Torrc: []string{"TestingTorNetwork 1"}})
	if err == nil || !strings.Contains(err.Error(), "TestingTorNetwork") || !strings.Contains(err.Error(), "beyond loopback") {
		t.Errorf("a private network's configuration outside a namespace: %v", err)
	}
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	script := filepath.Join(dir, "tor")
	os.WriteFile(script, []byte("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Tor version 0.4.9.1.'; exit 0; fi\ntouch "+ran+"\nexit 1\n"), 0o755)
	_, err = Start(context.Background(), Config{Binary: script, DataDir: filepath.Join(dir, "data")})
	if !errors.Is(err, errPublicFromTest) {
		t.Errorf("a real tor in a test without a private network: %v", err)
	}
	_, err = Start(context.Background(), Config{Binary: script, DataDir: filepath.Join(dir, "data"), Torrc: []string{"TestingTorNetwork 0"}})
	if !errors.Is(err, errPublicFromTest) {
		t.Errorf("TestingTorNetwork 0: %v", err)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("Start ran the real tor beyond --version")
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("Start made the data directory of a refused tor")
	}
}
