package relay

import "net"

// AnonymousListener wraps the listener an onion service's tor forwards
// to. Every connection on it comes from the local tor, whoever the client
// is, so its remote address says nothing about the client: where the
// target is a loopback port (an attached tor, Windows) it would make all
// of the service's clients one address, and one member's parallel reads
// or connections would use up every other member's per-address share.
// Connections accepted from it report the remote address "onion", which
// no per-address limit counts (as with a Unix socket); the relay's global
// limits still hold.
func AnonymousListener(ln net.Listener) net.Listener { return anonListener{ln} }

type anonListener struct{ net.Listener }

func (l anonListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return anonConn{c}, nil
}

type anonConn struct{ net.Conn }

func (anonConn) RemoteAddr() net.Addr { return onionAddr{} }

// onionAddr is the remote address of a connection through an onion
// service: none that names the client.
type onionAddr struct{}

func (onionAddr) Network() string { return "onion" }
func (onionAddr) String() string  { return "onion" }
