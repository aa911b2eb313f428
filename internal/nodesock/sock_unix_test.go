//go:build unix

package nodesock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// probeEnv makes the test binary a probe: it dials the socket at the
// path given and prints what it got ("hello", "closed" or "dial: …").
const probeEnv = "NODESOCK_TEST_PROBE"

func TestMain(m *testing.M) {
	if path := os.Getenv(probeEnv); path != "" {
		fmt.Print(probe(path))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func probe(path string) string {
	c, err := net.Dial("unix", path)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return "dial: " + err.Error()
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	kind, _, err := ReadFrame(c)
	if err != nil || kind != KindHello {
		return "closed"
	}
	return "hello"
}

// serveHello listens on home's node socket and says hello to whoever it
// accepts.
func serveHello(t *testing.T, home string) *Listener {
	t.Helper()
	ln, err := Listen(home, Node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			WriteJSON(c, KindHello, Hello{Version: Version})
			c.Close()
		}
	}()
	return ln
}

// TestOtherUserCannotConnect runs a probe as another Unix user (nobody,
// through setpriv: CI runs as root) against a node's socket: the socket's
// directory (0700) keeps it out; and where the modes were loosened (a
// mistake), the node closes its connection unanswered (SO_PEERCRED, on
// Linux), and the member's own client no longer trusts the directory.
func TestOtherUserCannotConnect(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run a probe as another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv, to run a probe as another user")
	}
	// A directory others may enter, with a copy of this binary they may
	// run.
	dir, err := os.MkdirTemp("", "nodesock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	home := filepath.Join(dir, "home")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	probeBin := filepath.Join(dir, "probe")
	if err := os.WriteFile(probeBin, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	serveHello(t, home)
	path := filepath.Join(home, Dir, Node)
	run := func(asNobody bool) string {
		t.Helper()
		args := []string{probeBin}
		if asNobody {
			args = []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", probeBin}
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), probeEnv+"="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("probe: %v: %s", err, out)
		}
		return string(out)
	}
	if got := run(false); got != "hello" {
		t.Fatalf("the member's own process: %q, want hello", got)
	}
	if got := run(true); !strings.Contains(got, "permission denied") {
		t.Errorf("another user through the 0700 directory: %q, want permission denied", got)
	}
	// Loosened modes: the kernel lets the other user connect.
	if err := os.Chmod(filepath.Join(home, Dir), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" {
		if got := run(true); got != "closed" {
			t.Errorf("another user through loosened modes: %q, want closed unanswered", got)
		}
	}
	if _, _, err := Dial(context.Background(), home, Node); !errors.Is(err, ErrUnsafe) {
		t.Errorf("Dial through a directory others may enter: %v, want ErrUnsafe", err)
	}
}

// TestStaleSocket dials a socket file no one listens on (its server
// gone without removing it): ErrNoServer at once; Listen takes the name
// over.
func TestStaleSocket(t *testing.T) {
	home := t.TempDir()
	ln := serveHello(t, home)
	ln.Listener.(*ownerListener).Listener.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(filepath.Join(home, Dir, Node)); err != nil {
		t.Fatalf("the stale file is gone: %v", err)
	}
	if _, _, err := Dial(context.Background(), home, Node); !errors.Is(err, ErrNoServer) {
		t.Errorf("Dial of a stale socket: %v, want ErrNoServer", err)
	}
	serveHello(t, home)
	if got := probe(filepath.Join(home, Dir, Node)); got != "hello" {
		t.Errorf("after Listen again: %q", got)
	}
	if _, _, err := Dial(context.Background(), t.TempDir(), Node); !errors.Is(err, ErrNoServer) {
		t.Errorf("Dial of a home without a socket: %v, want ErrNoServer", err)
	}
}

// TestListenTightensDir: a socket directory open to others (made by hand)
// is taken back to 0700, and the socket is 0600.
func TestListenTightensDir(t *testing.T) {
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	serveHello(t, home)
	for path, want := range map[string]os.FileMode{filepath.Join(home, Dir): 0o700, filepath.Join(home, Dir, Node): 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", path, fi.Mode().Perm(), err, want)
		}
	}
}
