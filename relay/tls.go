package relay

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// TLSListener marks ln's connections to be served over TLS with conf.
// Serve counts each against its connection limits first, then makes it a
// TLS connection (the handshake runs in the HTTP server, under its
// timeouts), and serves HTTP/2 or HTTP/1.1 as the client chooses by ALPN:
// Go's clients and browsers make a WebSocket upgrade on an HTTP/1.1
// connection of its own (the relay does not offer RFC 8441's WebSockets
// over HTTP/2). Only the listeners wrapped so are TLS: an onion service's
// socket, merged with them, stays plain HTTP (Tor encrypts it).
func TLSListener(ln net.Listener, conf *tls.Config) net.Listener {
	conf = conf.Clone()
	for _, p := range []string{"h2", "http/1.1"} {
		if !slices.Contains(conf.NextProtos, p) {
			conf.NextProtos = append(conf.NextProtos, p)
		}
	}
	if conf.MinVersion == 0 {
		conf.MinVersion = tls.VersionTLS12
	}
	return &tlsListener{Listener: ln, conf: conf}
}

type tlsListener struct {
	net.Listener
	conf *tls.Config
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsPending{Conn: c, conf: l.conf}, nil
}

// tlsPending is a connection accepted by a TLSListener: not yet TLS.
type tlsPending struct {
	net.Conn
	conf *tls.Config
}

// tlsStarter makes the connections of TLSListeners TLS connections, after
// the limits (limitListener) have counted them, so that the HTTP server
// sees a *tls.Conn and negotiates HTTP/2.
type tlsStarter struct{ net.Listener }

func (l tlsStarter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if lc, ok := c.(*limitedConn); ok {
		if p, ok := lc.Conn.(*tlsPending); ok {
			return tls.Server(lc, p.conf), nil
		}
	}
	return c, nil
}

// certCheckEvery is how often a CertFiles looks whether its files
// changed.
const certCheckEvery = 10 * time.Second

// CertFiles serves the certificate in a pair of PEM files, and reloads it
// when they change (a renewal by certbot or another ACME client) without
// a restart: at most certCheckEvery after the change, at the next
// handshake. A pair that does not load is logged by the caller's
// OnReloadError and the previous certificate kept.
type CertFiles struct {
	cert, key string
	// OnReloadError, if set, is told why a changed pair did not load.
	OnReloadError func(error)

	mu      sync.Mutex
	current *tls.Certificate
	stamp   string // the files' sizes and modification times when loaded
	checked time.Time
	now     func() time.Time
}

// LoadCertFiles loads the certificate chain in certFile and its key in
// keyFile (PEM).
func LoadCertFiles(certFile, keyFile string) (*CertFiles, error) {
	c := &CertFiles{cert: certFile, key: keyFile, now: time.Now}
	stamp, err := c.stampNow()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("the TLS certificate %s with key %s does not load (want PEM files: the certificate chain, and its private key): %w", certFile, keyFile, err)
	}
	c.current, c.stamp, c.checked = &cert, stamp, c.now()
	return c, nil
}

func (c *CertFiles) stampNow() (string, error) {
	var stamp string
	for _, f := range []string{c.cert, c.key} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("the TLS certificate: %w", err)
		}
		stamp += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (c *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.checked) >= certCheckEvery {
		c.checked = now
		if stamp, err := c.stampNow(); err == nil && stamp != c.stamp {
			cert, err := tls.LoadX509KeyPair(c.cert, c.key)
			if err != nil {
				// Half-written by a renewal, perhaps: keep the old one and
				// look again at the next check.
				if c.OnReloadError != nil {
					c.OnReloadError(err)
				}
			} else {
				c.current, c.stamp = &cert, stamp
			}
		}
	}
	return c.current, nil
}
