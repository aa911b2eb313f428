//go:build unix

package nodesock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// maxSocketPath is the longest socket path every Unix takes (macOS's
// sun_path holds 104 bytes, Linux's 108).
const maxSocketPath = 103

// Listen listens on the socket name in home's socket directory, which it
// creates (0700) or tightens; a file left there by a crashed server is
// removed first: the caller holds the lock that makes it name's only
// server. Connections from processes of another user are closed unread
// where the OS tells (peerUID).
func Listen(home, name string) (*Listener, error) {
	dir := filepath.Join(home, Dir)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("the node's socket directory: %w", err)
	}
	if err := checkDir(dir, true); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("the node's socket path %s is longer than the %d bytes a Unix socket takes: use a home with a shorter path", path, maxSocketPath)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("removing the old socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("the node's socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("the node's socket: %w", err)
	}
	return &Listener{Listener: &ownerListener{Listener: ln}}, nil
}

// checkDir checks that dir is a directory (not a link) of this user that
// no other user may enter; with fix, it takes a mode open to others back
// to 0700 (a directory an older version or the user made) before judging.
func checkDir(dir string, fix bool) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%w: %s is not a directory of this user", ErrUnsafe, dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if !fix {
			return fmt.Errorf("%w: %s has mode %v", ErrUnsafe, dir, fi.Mode().Perm())
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrUnsafe, dir, err)
		}
	}
	return nil
}

// Dial connects to the socket name in home's socket directory. It fails
// with ErrUnsafe when the directory is not private to this user, and with
// ErrNoServer when nothing listens there (no node, or a crashed one's
// file). The token to present is "" on Unix.
func Dial(ctx context.Context, home, name string) (net.Conn, string, error) {
	dir := filepath.Join(home, Dir)
	if err := checkDir(dir, false); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", ErrNoServer
		}
		return nil, "", err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(dir, name))
	if err != nil {
		return nil, "", fmt.Errorf("%w (%v)", ErrNoServer, err)
	}
	return c, "", nil
}

// ownerListener closes, unread, the connections of processes of other
// users.
type ownerListener struct{ net.Listener }

func (l *ownerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if uid, ok := peerUID(c); ok && uid != os.Getuid() {
			slog.Warn("the node's socket refused a process of another user", "uid", uid)
			c.Close()
			continue
		}
		return c, nil
	}
}
