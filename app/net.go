package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/relay"
)

// DialFunc opens a network connection for the node: to addr ("host:port"
// exactly as a URL names it, never resolved by the node), for the
// pursuance isolation stands for. Connections of different isolation
// strings must not be linkable by the network path they take: through
// Tor, they never share a circuit (docs/tor.md, "Isolation").
type DialFunc func(ctx context.Context, network, addr, isolation string) (net.Conn, error)

// ErrNeedsTor is wrapped by the error of a connection to an onion
// service (a .onion URL) made without Tor.
var ErrNeedsTor = errors.New("this relay is an onion service: run with --tor or `pursuance up --tor`")

// IsOnionURL reports whether a relay URL's host is an onion service.
func IsOnionURL(u string) bool {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return false
	}
	host, _, _ := strings.Cut(rest, "/")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.HasSuffix(strings.TrimSuffix(strings.ToLower(host), "."), ".onion")
}

// HTTPClient returns an HTTP client for relays and members' nodes whose
// connections dial (nil: directly, with the environment's proxy
// settings, as Go's default client) for the isolation string. Through
// dial, no proxy from the environment applies and nothing is resolved
// here: the host name goes to dial as the URL has it. Without dial, a
// request to a .onion host fails with ErrNeedsTor before any connection
// or lookup is made.
func HTTPClient(dial DialFunc, isolation string) *http.Client {
	if dial == nil {
		return &http.Client{Transport: onionGuard{http.DefaultTransport}}
	}
	return &http.Client{Transport: &http.Transport{
		Proxy: nil, // never HTTP(S)_PROXY: every byte goes through dial
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dial(ctx, network, addr, isolation)
		},
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second, // through Tor, a handshake takes round trips of a circuit
		ExpectContinueTimeout: time.Second,
	}}
}

// onionGuard refuses requests to onion services, which only Tor reaches.
type onionGuard struct{ rt http.RoundTripper }

func (g onionGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if IsOnionURL("http://" + req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, ErrNeedsTor
	}
	return g.rt.RoundTrip(req)
}

// isolationLabel is the domain of the isolation strings a home derives.
const isolationLabel = "pursuance/v1/tor-isolation"

// isolation returns the isolation string of pursuance p's connections: a
// keyed hash of p under a key of this home (docs/keystore.md), so that
// every connection about p shares circuits with p's only, and the string
// says nothing of p to anyone without the home's key.
func (n *Node) isolation(p event.ID) string {
	m := hmac.New(sha256.New, n.keys.isolation[:])
	m.Write([]byte(isolationLabel))
	m.Write(p[:])
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// linkIsolation returns the isolation string of the connections of link
// l's channel as pursuance p's members read and write it: apart from p's
// own, so that a relay cannot tell by circuit which pursuance a link
// channel belongs to (docs/tor.md, "Isolation").
func (n *Node) linkIsolation(p, l event.ID) string {
	m := hmac.New(sha256.New, n.keys.isolation[:])
	m.Write([]byte(isolationLabel + "/link"))
	m.Write(p[:])
	m.Write(l[:])
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// netClients are the HTTP clients of a node, one per isolation string,
// kept so that connections are reused while the node is open.
type netClients struct {
	mu sync.Mutex
	m  map[string]*http.Client
}

func (c *netClients) get(dial DialFunc, isolation string) *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hc, ok := c.m[isolation]; ok {
		return hc
	}
	if c.m == nil {
		c.m = map[string]*http.Client{}
	}
	hc := HTTPClient(dial, isolation)
	c.m[isolation] = hc
	return hc
}

// close lets the idle connections of every client go.
func (c *netClients) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, hc := range c.m {
		if t, ok := hc.Transport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	}
	c.m = nil
}

// relayClient returns a client of the relay at url for connections about
// pursuance p.
func (n *Node) relayClient(p event.ID, url string) *relay.Client {
	return relay.NewClient(url, n.clients.get(n.opts.Dial, n.isolation(p))).Stall(n.opts.RelayTimeout).OnionStall(n.opts.RelayTimeout)
}

// ParallelReads is how many pages of one topic a sync reads at once from
// a relay it reaches as an onion service, each through its own circuit.
// One onion circuit's transfer is bound by Tor's flow control, not by the
// machine: in the private test network 10 MiB took 4.1 s on one circuit,
// 1.1 s on four, 0.75 s on eight (docs/benchmarks.md, "Tor (private
// network)"). Four keeps most of the gain for half the circuits a member
// builds to each relay.
const ParallelReads = 4

// AheadFirstPage is the size of a topic's first page (entries) when the
// rest may be read ahead (readClients): small, so that the ranges read
// at once start after one round trip rather than after a whole page's
// transfer on one circuit; a sync with no more to read than this still
// makes one request.
const AheadFirstPage = 100

// readClients returns the clients a sync reads the relay at url with, one
// per read in flight, when the relay is an onion service reached through
// Tor: the first is the pursuance's own client, each other one has an
// isolation string derived from the pursuance's (so its own circuit, and
// one no other pursuance of this home uses). Otherwise nil: pages are read
// one after another on the pursuance's client. A clear-net relay reached
// through an exit is left alone: it counts reads per client address, and
// every Tor user of that exit shares its one.
func (n *Node) readClients(p event.ID, url string) []*relay.Client {
	if n.opts.Dial == nil || !IsOnionURL(url) {
		return nil
	}
	iso := n.isolation(p)
	cs := make([]*relay.Client, ParallelReads)
	for i := range cs {
		s := iso
		if i > 0 {
			s = fmt.Sprintf("%s/read-%d", iso, i)
		}
		cs[i] = relay.NewClient(url, n.clients.get(n.opts.Dial, s)).Stall(n.opts.RelayTimeout).OnionStall(n.opts.RelayTimeout)
	}
	return cs
}

// linkClient returns a client of the relay at url for the channel of
// pursuance p's link l.
func (n *Node) linkClient(p, l event.ID, url string) *relay.Client {
	return relay.NewClient(url, n.clients.get(n.opts.Dial, n.linkIsolation(p, l))).Stall(n.opts.RelayTimeout).OnionStall(n.opts.RelayTimeout)
}
