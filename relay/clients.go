package relay

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A client address is what the relay's per-client limits count by: an
// IPv4 address, or an IPv6 /64 (one host's or one site's share of the
// address space, which a single attacker can fill with addresses).
func clientKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// What a client address holds at once.
type holding int

const (
	holdConn holding = iota
	holdRead
	holdAppend
	holdSub
	numHoldings
)

// maxTrackedAddrs bounds the table of client addresses (about 100 bytes
// each). Beyond it, addresses that hold nothing are forgotten (and so
// their hourly count of new topics): an attacker with more addresses than
// this is bounded by the relay-wide limits instead.
const maxTrackedAddrs = 1 << 16

// clients counts, per client address, what it holds (connections, reads,
// appends, subscriptions) and the topics it created lately (a token
// bucket of NewTopicsPerHour). The table is bounded: an address is
// dropped as soon as it holds nothing and its bucket is full again, and
// when the table is full anyway, the addresses holding nothing go first.
type clients struct {
	mu     sync.Mutex
	m      map[netip.Addr]*client
	max    int
	perH   float64 // new topics per hour and address; the bucket's size
	limits [numHoldings]int
}

type client struct {
	held   [numHoldings]int
	topics float64       // new-topic tokens at 'at'
	at     time.Time     //
	wake   chan struct{} // closed when it releases something, if someone waits
}

func newClients(max int, topicsPerHour float64, limits [numHoldings]int) *clients {
	return &clients{m: map[netip.Addr]*client{}, max: max, perH: topicsPerHour, limits: limits}
}

// get returns a's entry, making room for it. Called with mu held.
func (cs *clients) get(a netip.Addr, now time.Time) *client {
	c := cs.m[a]
	if c != nil {
		return c
	}
	if len(cs.m) >= cs.max {
		cs.sweep(now)
	}
	c = &client{topics: cs.perH, at: now}
	cs.m[a] = c
	return c
}

// sweep forgets addresses that hold nothing: first those whose bucket is
// full again (nothing is lost), then, if the table is still above 7/8 of
// its size, any (their hourly count is lost).
func (cs *clients) sweep(now time.Time) {
	for a, c := range cs.m {
		if c.idle() && cs.refill(c, now) >= cs.perH {
			delete(cs.m, a)
		}
	}
	for a, c := range cs.m {
		if len(cs.m) < cs.max*7/8 {
			break
		}
		if c.idle() {
			delete(cs.m, a)
		}
	}
}

func (c *client) idle() bool { return c.held == [numHoldings]int{} }

// refill brings c's new-topic tokens up to now.
func (cs *clients) refill(c *client, now time.Time) float64 {
	if d := now.Sub(c.at); d > 0 {
		c.topics = min(cs.perH, c.topics+d.Hours()*cs.perH)
		c.at = now
	}
	return c.topics
}

// acquire takes one of kind for a, if a holds fewer than the limit.
func (cs *clients) acquire(a netip.Addr, kind holding, now time.Time) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.get(a, now)
	if c.held[kind] >= cs.limits[kind] {
		cs.forget(a, c, now)
		return false
	}
	c.held[kind]++
	return true
}

// acquireWait is acquire, waiting until ctx ends for a to release one.
func (cs *clients) acquireWait(ctx context.Context, a netip.Addr, kind holding, now func() time.Time) error {
	for {
		cs.mu.Lock()
		c := cs.get(a, now())
		if c.held[kind] < cs.limits[kind] {
			c.held[kind]++
			cs.mu.Unlock()
			return nil
		}
		if c.wake == nil {
			c.wake = make(chan struct{})
		}
		wake := c.wake
		cs.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives back one of kind that a held.
func (cs *clients) release(a netip.Addr, kind holding, now time.Time) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.m[a]
	if c == nil || c.held[kind] == 0 {
		return // forgotten meanwhile: cannot happen while it held something
	}
	c.held[kind]--
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
	cs.forget(a, c, now)
}

// forget drops a's entry if it carries nothing.
func (cs *clients) forget(a netip.Addr, c *client, now time.Time) {
	if c.idle() && cs.refill(c, now) >= cs.perH {
		delete(cs.m, a)
	}
}

// holding returns how many of kind a holds.
func (cs *clients) holding(a netip.Addr, kind holding) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c := cs.m[a]; c != nil {
		return c.held[kind]
	}
	return 0
}

// newTopic takes one of a's new-topic tokens; when none is left it says
// how long until one is.
func (cs *clients) newTopic(a netip.Addr, now time.Time) (bool, time.Duration) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.get(a, now)
	if cs.refill(c, now) < 1 {
		return false, time.Duration((1 - c.topics) / cs.perH * float64(time.Hour))
	}
	c.topics--
	return true, 0
}

func (cs *clients) size() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.m)
}

// addrOf returns the client address of a connection's remote address;
// ok is false for one it cannot parse (a Unix socket, a test's pipe).
func addrOf(remote string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		a, err := netip.ParseAddr(remote)
		return clientKey(a), err == nil
	}
	return clientKey(ap.Addr()), true
}

// trusted reports whether a is one of the operator's trusted proxies.
func trusted(proxies []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// requestAddr returns the client address a request counts against: its
// connection's remote address, or, when that is a trusted proxy, the
// nearest address in X-Forwarded-For that is not one (the header's
// earlier entries are the client's own word, so they are not believed).
func (s *Server) requestAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	a := ap.Addr().Unmap()
	if len(s.cfg.TrustedProxies) == 0 || !trusted(s.cfg.TrustedProxies, a) {
		return clientKey(a), true
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // garbage: stop at the last proxy we trust
		}
		a = h.Unmap()
		if !trusted(s.cfg.TrustedProxies, a) {
			break
		}
	}
	return clientKey(a), true
}

// hold takes one of kind for the request's client address, waiting up to
// wait for one; the answer when it is refused is the caller's. release is
// never nil.
func (s *Server) hold(r *http.Request, kind holding, wait time.Duration) (release func(), ok bool) {
	a, known := s.requestAddr(r)
	if !known {
		return func() {}, true
	}
	return s.holdAddr(r.Context(), a, kind, wait)
}

func (s *Server) holdAddr(ctx context.Context, a netip.Addr, kind holding, wait time.Duration) (release func(), ok bool) {
	if wait <= 0 {
		if !s.clients.acquire(a, kind, s.now()) {
			return func() {}, false
		}
	} else {
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if s.clients.acquireWait(ctx, a, kind, s.now) != nil {
			return func() {}, false
		}
	}
	var once sync.Once
	return func() { once.Do(func() { s.clients.release(a, kind, s.now()) }) }, true
}

// budget is a weighted semaphore of bytes, first come first served.
type budget struct {
	mu    sync.Mutex
	size  int64
	used  int64
	queue []*waiter
}

type waiter struct {
	n, prio int64
	ready   chan struct{}
}

func newBudget(size int64) *budget { return &budget{size: size} }

// acquire takes n bytes (at most the whole budget), waiting until they
// are free or ctx ends; first come, first served.
func (b *budget) acquire(ctx context.Context, n int64) error { return b.acquireFor(ctx, n, 0) }

// acquireFor is acquire for a waiter of priority prio: lower goes first.
func (b *budget) acquireFor(ctx context.Context, n, prio int64) error {
	n = min(n, b.size)
	b.mu.Lock()
	if len(b.queue) == 0 && b.used+n <= b.size {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	w := &waiter{n: n, prio: prio, ready: make(chan struct{})}
	b.queue = append(b.queue, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			b.used -= n
			b.grant()
		default:
			for i, q := range b.queue {
				if q == w {
					b.queue = append(b.queue[:i], b.queue[i+1:]...)
					break
				}
			}
			b.grant() // the head may have been waiting behind w
		}
		return ctx.Err()
	}
}

// release gives back n bytes taken with acquire.
func (b *budget) release(n int64) {
	n = min(n, b.size)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.grant()
}

// grant wakes the waiters that now fit, lowest priority first, then
// first come. Called with mu held.
func (b *budget) grant() {
	for len(b.queue) > 0 {
		i := 0
		for j, w := range b.queue {
			if w.prio < b.queue[i].prio {
				i = j
			}
		}
		w := b.queue[i]
		if b.used+w.n > b.size {
			return
		}
		b.queue = append(b.queue[:i], b.queue[i+1:]...)
		b.used += w.n
		close(w.ready)
	}
}

// refuseConn answers a connection the relay will not serve with a 429
// and closes it, without waiting on the client for long.
func refuseConn(c net.Conn, msg string) {
	c.SetDeadline(time.Now().Add(time.Second))
	body := `{"error":"` + msg + `"}` + "\n"
	c.Write([]byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 10\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body))
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		// Take what the client sent, so closing does not reset the
		// connection before it reads the answer.
		var buf [4096]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				break
			}
		}
	}
	c.Close()
}
