package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/internal/flock"
)

// nodeFile is home/node.json: the addresses this home's node (`pursuance
// up`) last served on. up listens on them again, so that the web UI's URL
// and the relay address that invite codes name stay the same across runs.
type nodeFile struct {
	Relay string `json:"relay,omitempty"` // the embedded relay's URL
	UI    string `json:"ui,omitempty"`    // the web UI's URL
}

const nodeFileName = "node.json"

// readNodeFile reads home's node file; a home without one has the zero
// nodeFile.
func readNodeFile(home string) (nodeFile, error) {
	return readJSONFile[nodeFile](filepath.Join(home, nodeFileName))
}

// readJSONFile reads the JSON file at path into a T; a file that does not
// exist is the zero T. An error names the file.
func readJSONFile[T any](path string) (T, error) {
	var v T
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return v, nil
	}
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func writeNodeFile(home string, nf nodeFile) error {
	b, err := json.MarshalIndent(nf, "", "  ")
	if err != nil {
		return err
	}
	return keystore.WriteFileAtomic(home, nodeFileName, append(b, '\n'))
}

// hostPort returns the host:port of an http:// URL such as the node file
// holds ("http://127.0.0.1:8765/" gives "127.0.0.1:8765").
func hostPort(url string) string {
	return strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
}

// listenAgain listens on the address flag gives, or, when the user left
// the flag at its default, on the address of the last run (last, a URL)
// if it is a loopback one, falling back to the default when it is taken.
// (An address the user once gave to serve peers beyond this machine is
// not taken again unasked.)
func listenAgain(flag string, changed bool, last string) (net.Listener, error) {
	if reusable(last, changed) {
		if ln, err := net.Listen("tcp", hostPort(last)); err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", flag)
}

// reusable reports whether up tries the last run's address (a URL) again:
// the user left the flag alone and it is a loopback address.
func reusable(last string, changed bool) bool {
	h, _, err := net.SplitHostPort(hostPort(last))
	return !changed && err == nil && net.ParseIP(h).IsLoopback()
}

// runningNodeRelay returns the URL of the relay of this home's node if the
// node is running, else "".
func runningNodeRelay(home string) string {
	rf, ok := runningNode(home)
	if !ok {
		return ""
	}
	return rf.Relay
}

// runFile is home/running.json, there while `pursuance up` runs on the
// home: the node's addresses and the web UI's secrets, for `pursuance ui`
// and for scripts (docs/web.md). It is written atomically with mode 0600
// in the home (0700), so only the member's own account reads it. The
// secrets live in the node's memory: after a crash the file is stale and
// opens nothing; readers trust it only while the node's lock is held, and
// the next `up` removes it.
type runFile struct {
	PID    int    `json:"pid"`
	Relay  string `json:"relay"`  // the embedded relay's URL
	UI     string `json:"ui"`     // the web UI's URL
	Login  string `json:"login"`  // the single-use login link in force
	Bearer string `json:"bearer"` // for scripts: "Authorization: Bearer …"
	// With Tor (up --tor): the control port of the node's tor, which the
	// home's other commands use, and the node's onion address.
	TorControl string `json:"tor_control,omitempty"`
	Onion      string `json:"onion,omitempty"`
}

const (
	runFileName  = "running.json"
	nodeLockName = "node.lock"
	// nodeLockWait is how long up tries the node lock: a command that
	// asks whether a node runs holds it (shared) for a moment.
	nodeLockWait = time.Second
)

// errLocked is tryLock's answer when the lock is held.
var errLocked = errors.New("locked")

// tryLock opens the file at path (creating it, mode 0600) and takes a
// lock on it without waiting: an exclusive one, or a shared one, which
// only tells whether someone holds the exclusive one (askers do not keep
// each other from their answers). It returns errLocked when the lock is
// held. The lock goes when the file is closed or the process ends, a
// crash included.
func tryLock(path string, exclusive bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	lock := flock.TryLockShared
	if exclusive {
		lock = flock.TryLock
	}
	ok, err := lock(f)
	if !ok || err != nil {
		f.Close()
		if err == nil {
			err = errLocked
		}
		return nil, err
	}
	return f, nil
}

// lockNode takes home's node lock, held by `pursuance up` for as long as
// it runs, so that one home runs one node. The kernel releases it when
// the process ends, a crash or kill -9 included, so a lock is never
// stale. When another node holds it, the error says where that node's
// web UI is.
func lockNode(ctx context.Context, home string) (*os.File, error) {
	deadline := time.Now().Add(nodeLockWait)
	for {
		f, err := tryLock(filepath.Join(home, nodeLockName), true)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, errLocked) {
			return nil, fmt.Errorf("the node lock in %s: %w", home, err)
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if rf, ok := runningNode(home); ok {
		return nil, fmt.Errorf("a node is already running on this home (%s, pid %d): its web UI is at %s (`pursuance ui` prints a login link); stop it (Ctrl-C where it runs) before starting another", home, rf.PID, rf.UI)
	}
	return nil, fmt.Errorf("a node is already starting on this home (%s); once it is up, `pursuance ui` prints a login link to its web UI", home)
}

// runningNode returns the run file of the node running on home, and
// whether one runs and is up: its lock is held and it wrote the file. A
// file without the lock held is a crashed node's, and is ignored.
func runningNode(home string) (runFile, bool) {
	var rf runFile
	b, err := os.ReadFile(filepath.Join(home, runFileName))
	if err != nil || json.Unmarshal(b, &rf) != nil {
		return runFile{}, false // no node up (the lock is not even asked)
	}
	if !nodeLocked(home) {
		return runFile{}, false
	}
	return rf, true
}

// nodeLocked reports whether a node holds home's node lock: it runs, or
// is starting.
func nodeLocked(home string) bool {
	f, err := tryLock(filepath.Join(home, nodeLockName), false)
	if err == nil {
		f.Close()
	}
	return errors.Is(err, errLocked)
}

func writeRunFile(home string, rf runFile) error {
	b, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return err
	}
	return keystore.WriteFileAtomic(home, runFileName, append(b, '\n'))
}

// runWriter keeps the home's run file (runFile) while the node runs.
type runWriter struct {
	home string
	mu   sync.Mutex
	rf   runFile
	up   bool // between start and remove
	errs io.Writer
}

// start writes the run file, once the node is up.
func (w *runWriter) start(rf runFile, errs io.Writer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rf, w.up, w.errs = rf, true, errs
	w.writeLocked()
}

// login records the login link in force after a login.
func (w *runWriter) login(link string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rf.Login = link
	if w.up {
		w.writeLocked()
	}
}

func (w *runWriter) writeLocked() {
	if err := writeRunFile(w.home, w.rf); err != nil {
		fmt.Fprintf(w.errs, "warning: %v; `pursuance ui` cannot give a login link\n", err)
	}
}

// remove removes the run file: the node is stopping (or a crashed one's
// is left).
func (w *runWriter) remove() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.up = false
	os.Remove(filepath.Join(w.home, runFileName))
}
