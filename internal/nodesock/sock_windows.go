//go:build windows

package nodesock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
)

// tokenBytes is the size of the Windows server's token.
const tokenBytes = 32

// addrFile is what a Windows server writes beside its name: where it
// listens and the token a client presents.
type addrFile struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
}

// Listen listens on the loopback and writes its address and a random
// token to the file name in home's socket directory (inside the home,
// whose ACL is the member's): a client proves it could read that file.
func Listen(home, name string) (*Listener, error) {
	dir := filepath.Join(home, Dir)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("the node's socket directory: %w", err)
	}
	var t [tokenBytes]byte
	if _, err := rand.Read(t[:]); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("the node's socket: %w", err)
	}
	b, _ := json.Marshal(addrFile{Addr: ln.Addr().String(), Token: hex.EncodeToString(t[:])})
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, err
	}
	return &Listener{Listener: &removeListener{Listener: ln, path: path}, Token: hex.EncodeToString(t[:])}, nil
}

// removeListener removes the address file when closed.
type removeListener struct {
	net.Listener
	path string
}

func (l *removeListener) Close() error {
	os.Remove(l.path)
	return l.Listener.Close()
}

// Dial reads the address file name in home's socket directory and
// connects to the loopback address it names; it returns the token to
// present. A file left by a crashed server names a port nobody listens
// on (ErrNoServer), or one another program took, which does not answer
// with a hello.
func Dial(ctx context.Context, home, name string) (net.Conn, string, error) {
	b, err := os.ReadFile(filepath.Join(home, Dir, name))
	if err != nil {
		return nil, "", ErrNoServer
	}
	var a addrFile
	if json.Unmarshal(b, &a) != nil {
		return nil, "", ErrNoServer
	}
	host, _, err := net.SplitHostPort(a.Addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, "", ErrUnsafe
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", a.Addr)
	if err != nil {
		return nil, "", fmt.Errorf("%w (%v)", ErrNoServer, err)
	}
	return c, a.Token, nil
}
