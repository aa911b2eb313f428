package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/pursuance/pursuance/internal/tor"
	"github.com/pursuance/pursuance/relay"
)

// maxSocketPath is the longest Unix socket path used: sun_path holds 108
// bytes on Linux, 104 on the BSDs and macOS, with its NUL.
const maxSocketPath = 100

// onionListener returns the listener an onion service's tor forwards to,
// and the target to give ADD_ONION. For a tor this process started, a
// Unix socket at sock (mode 0600): then every connection on it comes, by
// construction, from the local tor, and none can come from the network.
// Where that cannot be (a tor another user runs cannot reach this user's
// files, Windows, a path too long for a socket), a loopback port of the
// system's choosing (docs/tor.md, "Where the relay listens").
func onionListener(sock string, owned bool) (net.Listener, string, error) {
	if owned && runtime.GOOS != "windows" && len(sock) <= maxSocketPath && !strings.ContainsAny(sock, " \t\"\\") {
		if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, "", err
		}
		ln, err := net.Listen("unix", sock)
		if err == nil {
			if err := os.Chmod(sock, 0o600); err != nil {
				ln.Close()
				return nil, "", err
			}
			return ln, "unix:" + sock, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	// Every connection comes from tor: no per-address limit may count
	// its loopback address as one client's (a Unix socket's peer has no
	// address to count).
	return relay.AnonymousListener(ln), ln.Addr().String(), nil
}

// announceOnion waits, in the background, until the onion service onion
// is reachable (its descriptor uploaded), then prints its URL on stderr
// and calls reachable. A service not published within a while is
// logged, and waited for still.
func (e *Env) announceOnion(ctx context.Context, wg *sync.WaitGroup, t *tor.Tor, onion string, log *slog.Logger, reachable func()) {
	wg.Go(func() {
		for ctx.Err() == nil {
			wctx, cancel := context.WithTimeout(ctx, onionPublishWarn)
			err := t.WaitPublished(wctx, onion)
			cancel()
			if err == nil {
				fmt.Fprintf(e.Stderr, "http://%s\n", onion)
				log.Info("onion service reachable", "url", "http://"+onion)
				if reachable != nil {
					reachable()
				}
				return
			}
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, tor.ErrControlClosed) {
				log.Error("tor stopped before the onion service was published", "err", oneLine(err.Error()))
				return
			}
			log.Warn("the onion service is not published yet; tor keeps trying", "onion", onion, "waited", onionPublishWarn)
		}
	})
}

// onionPort is the port of onion services: URLs name none.
const onionPort = 80

// onionPublishWarn is how long before a service not yet published is
// logged.
const onionPublishWarn = 2 * time.Minute

// multiListener accepts on several listeners as one: a relay serves its
// clear-net port and the socket its tor forwards to.
type multiListener struct {
	lns   []net.Listener
	conns chan net.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
}

func mergeListeners(lns ...net.Listener) net.Listener {
	if len(lns) == 1 {
		return lns[0]
	}
	m := &multiListener{lns: lns, conns: make(chan net.Conn), errs: make(chan error, len(lns)), done: make(chan struct{})}
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					m.errs <- err
					return
				}
				select {
				case m.conns <- c:
				case <-m.done:
					c.Close()
					return
				}
			}
		}()
	}
	return m
}

func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case err := <-m.errs:
		return nil, err
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *multiListener) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		for _, ln := range m.lns {
			err = errors.Join(err, ln.Close())
		}
	})
	return err
}

func (m *multiListener) Addr() net.Addr { return m.lns[0].Addr() }
