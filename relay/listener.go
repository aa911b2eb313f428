package relay

import (
	"context"
	"log/slog"
	"net"
	"sync"
)

// maxRefusing bounds the connections being refused at once (each gets a
// short 429 on its way out); beyond it, refused connections are closed
// at once.
const maxRefusing = 64

// limitListener lets at most MaxConnections be open at once (Accept waits
// for one to close) and at most ConnsPerAddr from one client address (more
// are answered 429 and closed). Connections from trusted proxies count
// only against MaxConnections.
func (s *Server) limitListener(ln net.Listener) net.Listener {
	return &limited{Listener: ln, sem: make(chan struct{}, s.cfg.MaxConnections), s: s, refusing: make(chan struct{}, maxRefusing)}
}

type limited struct {
	net.Listener
	sem      chan struct{}
	refusing chan struct{}
	s        *Server
}

func (l *limited) Accept() (net.Conn, error) {
	for {
		l.sem <- struct{}{}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.sem
			return nil, err
		}
		l.s.logAccepted(c)
		release := func() { <-l.sem }
		if a, ok := addrOf(c.RemoteAddr().String()); ok && !trusted(l.s.cfg.TrustedProxies, a) {
			if !l.s.clients.acquire(a, holdConn, l.s.now()) {
				<-l.sem
				l.s.refused("conns_per_addr")
				select {
				case l.refusing <- struct{}{}:
					go func() {
						refuseConn(c, "too many connections from your address; close some and retry")
						<-l.refusing
					}()
				default:
					c.Close()
				}
				continue
			}
			release = func() {
				l.s.clients.release(a, holdConn, l.s.now())
				<-l.sem
			}
		}
		return &limitedConn{Conn: c, release: release}, nil
	}
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// logAccepted logs, at Debug, where a connection comes from: its network,
// the address it was accepted on, its remote address and, for a Unix
// socket on Linux, the process ID of its peer (SO_PEERCRED). An operator
// (or a test) can check from it that connections to an onion service's
// socket come from the local tor and from nothing else: a Unix socket has
// no remote address, and its peer is the tor process.
func (s *Server) logAccepted(c net.Conn) {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{"network", c.LocalAddr().Network(), "local", c.LocalAddr().String(), "remote", addrString(c.RemoteAddr())}
	if pid := peerPID(c); pid > 0 {
		attrs = append(attrs, "peer_pid", pid)
	}
	s.log.Debug("connection accepted", attrs...)
}

// addrString is a's text, "" for none. (An unnamed Unix socket's peer,
// as a connecting client's is, shows as "@" on Linux.)
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
