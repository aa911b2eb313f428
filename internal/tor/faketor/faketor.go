// Package faketor is a test double of tor for Pursuance's tests: a control
// port and a SOCKS5 port on loopback that answer as tor's do, and a pretend
// Tor network in which every onion service published with ADD_ONION is
// reachable through the SOCKS port of every double sharing the same
// network directory. It never connects anywhere but to a loopback address
// or a Unix socket a test named: clear-net names reach only what a test
// maps them to (Map), so a test also sees every host name a client asked
// for, unresolved (Requests).
//
// It runs in a test process (New), or as a "tor" binary (Main) that
// Pursuance's tor.Start can run: its --version says it is a test double,
// which tor.Start requires before it runs a tor without a private
// network's configuration inside a test. Real tor runs only in
// internal/tortest's private network.
package faketor

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is what the double says it is; "pursuance test double" is what
// tor.Start looks for.
const Version = "0.4.9.0 (pursuance test double)"

// Options configure a double.
type Options struct {
	// Dir holds the cookie file (control_auth_cookie).
	Dir string
	// Network is a directory shared by the doubles that form one
	// pretend Tor network: each one's onion services are listed there.
	// "": Dir/network, a network of this double alone.
	Network string
	// Auth is the authentication the control port asks for: "" (COOKIE
	// and SAFECOOKIE), "COOKIE", "SAFECOOKIE", "NULL" or
	// "HASHEDPASSWORD".
	Auth string
	// ExtendedErrors makes onion failures answer with tor's extended
	// SOCKS codes (0xF0 and on), as tor does with that flag.
	ExtendedErrors bool
	// Bootstrap is the starting progress (0: 100, bootstrapped).
	Bootstrap int
	// UploadDelay is how long after ADD_ONION the descriptor is
	// "uploaded" (HS_DESC UPLOADED).
	UploadDelay time.Duration
}

// Request is one SOCKS5 CONNECT the double received.
type Request struct {
	Method     byte   // authentication: 0 none, 2 user name and password
	User, Pass string // the credentials, when Method is 2
	Atyp       byte   // 1 IPv4, 3 a name, 4 IPv6
	Host       string // as sent: the name itself for Atyp 3
	Port       uint16
}

// Tor is a running double. Its methods are safe for concurrent use.
type Tor struct {
	opts       Options
	control    net.Listener
	socks      net.Listener
	cookie     []byte
	cookieFile string
	network    string

	mu        sync.Mutex
	bootstrap int
	summary   string
	warning   string
	hosts     map[string]string // "host:port" → "127.0.0.1:N", "unix:/path" or "!CODE"
	requests  []Request
	commands  []string
	sessions  map[*session]bool
	socksConn map[net.Conn]bool // open SOCKS connections, both sides
	owned     chan struct{}     // closed when an owning session ends
	ownedOnce sync.Once
	closed    bool
	wg        sync.WaitGroup
}

// New starts a double on loopback ports.
func New(opts Options) (*Tor, error) {
	if opts.Dir == "" {
		return nil, errors.New("faketor: no Dir")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	f := &Tor{opts: opts, hosts: map[string]string{}, sessions: map[*session]bool{}, socksConn: map[net.Conn]bool{}, owned: make(chan struct{}),
		bootstrap: opts.Bootstrap, summary: "Starting"}
	if f.bootstrap == 0 {
		f.bootstrap, f.summary = 100, "Done"
	}
	f.network = opts.Network
	if f.network == "" {
		f.network = filepath.Join(opts.Dir, "network")
	}
	if err := os.MkdirAll(f.network, 0o700); err != nil {
		return nil, err
	}
	f.cookie = make([]byte, 32)
	rand.Read(f.cookie)
	f.cookieFile = filepath.Join(opts.Dir, "control_auth_cookie")
	if err := os.WriteFile(f.cookieFile, f.cookie, 0o600); err != nil {
		return nil, err
	}
	var err error
	if f.control, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	if f.socks, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		f.control.Close()
		return nil, err
	}
	f.wg.Add(2)
	go f.acceptControl()
	go f.acceptSOCKS()
	return f, nil
}

// ControlAddr returns the control port's address.
func (f *Tor) ControlAddr() string { return f.control.Addr().String() }

// SOCKSAddr returns the SOCKS port's address.
func (f *Tor) SOCKSAddr() string { return f.socks.Addr().String() }

// CookieFile returns the path of the authentication cookie.
func (f *Tor) CookieFile() string { return f.cookieFile }

// Owned is closed when a connection that took ownership (TAKEOWNERSHIP)
// closes: a real tor would exit then.
func (f *Tor) Owned() <-chan struct{} { return f.owned }

// SetBootstrap sets the progress and summary GETINFO reports, and a
// warning (WARN severity) when not "".
func (f *Tor) SetBootstrap(progress int, summary, warning string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bootstrap, f.summary, f.warning = progress, summary, warning
}

// Map makes the SOCKS port connect hostport ("name:port", as a client
// asks for it) to target: "127.0.0.1:N" or "unix:/path".
func (f *Tor) Map(hostport, target string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[strings.ToLower(hostport)] = target
}

// Refuse makes the SOCKS port answer a CONNECT to hostport with code.
func (f *Tor) Refuse(hostport string, code byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[strings.ToLower(hostport)] = fmt.Sprintf("!%d", code)
}

// Requests returns the SOCKS requests so far, in order.
func (f *Tor) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// Commands returns the control commands so far (AUTHENTICATE's argument
// left out), in order.
func (f *Tor) Commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.commands)
}

// Onions returns the onion services this double publishes: address
// (without ".onion") to "VIRTPORT TARGET".
func (f *Tor) Onions() map[string]string {
	out := map[string]string{}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.sessions {
		for id, v := range s.onions {
			out[id] = v
		}
	}
	return out
}

// Close stops the double: its ports close, its onion services go.
func (f *Tor) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	var cs []net.Conn
	for s := range f.sessions {
		cs = append(cs, s.c)
	}
	for c := range f.socksConn {
		cs = append(cs, c)
	}
	f.mu.Unlock()
	f.control.Close()
	f.socks.Close()
	for _, c := range cs {
		c.Close()
	}
	f.wg.Wait()
}

func (f *Tor) acceptControl() {
	defer f.wg.Done()
	for {
		c, err := f.control.Accept()
		if err != nil {
			return
		}
		s := &session{f: f, c: c, onions: map[string]string{}}
		f.mu.Lock()
		f.sessions[s] = true
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			s.serve()
			f.mu.Lock()
			delete(f.sessions, s)
			f.mu.Unlock()
			for id := range s.onions {
				os.Remove(filepath.Join(f.network, id))
			}
			if s.owner {
				f.ownedOnce.Do(func() { close(f.owned) })
			}
		}()
	}
}

// session is one control connection.
type session struct {
	f           *Tor
	c           net.Conn
	wmu         sync.Mutex
	authed      bool
	owner       bool
	events      []string
	clientNonce []byte
	serverNonce []byte
	onions      map[string]string // published by this session
}

func (s *session) write(lines ...string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, l := range lines {
		io.WriteString(s.c, l+"\r\n")
	}
}

func (s *session) serve() {
	defer s.c.Close()
	r := bufio.NewReader(s.c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		word, rest, _ := strings.Cut(line, " ")
		word = strings.ToUpper(word)
		logged := line
		if word == "AUTHENTICATE" {
			logged = word
		}
		s.f.mu.Lock()
		s.f.commands = append(s.f.commands, logged)
		s.f.mu.Unlock()
		if !s.authed && word != "PROTOCOLINFO" && word != "AUTHCHALLENGE" && word != "AUTHENTICATE" && word != "QUIT" {
			s.write("514 Authentication required.")
			return
		}
		switch word {
		case "PROTOCOLINFO":
			s.protocolInfo()
		case "AUTHCHALLENGE":
			s.authChallenge(rest)
		case "AUTHENTICATE":
			if !s.authenticate(rest) {
				s.write("515 Authentication failed: Wrong length on authentication cookie.")
				return
			}
			s.authed = true
			s.write("250 OK")
		case "TAKEOWNERSHIP":
			s.owner = true
			s.write("250 OK")
		case "GETINFO":
			s.getinfo(strings.Fields(rest))
		case "SETEVENTS":
			evs := strings.Fields(strings.ToUpper(rest))
			for _, e := range evs {
				if e != "HS_DESC" && e != "STATUS_CLIENT" && e != "CIRC" && e != "STREAM" {
					s.write(fmt.Sprintf("552 Unrecognized event %q", e))
					evs = nil
					break
				}
			}
			if evs != nil || rest == "" {
				s.f.mu.Lock()
				s.events = evs
				s.f.mu.Unlock()
				s.write("250 OK")
			}
		case "ADD_ONION":
			s.addOnion(rest)
		case "DEL_ONION":
			id := strings.ToLower(strings.TrimSpace(rest))
			if _, ok := s.onions[id]; !ok {
				s.write("552 Unknown Onion Service id")
				continue
			}
			s.f.mu.Lock()
			delete(s.onions, id)
			s.f.mu.Unlock()
			os.Remove(filepath.Join(s.f.network, id))
			s.write("250 OK")
		case "SIGNAL":
			s.write("250 OK")
		case "QUIT":
			s.write("250 closing connection")
			return
		default:
			s.write(fmt.Sprintf("510 Unrecognized command %q", word))
		}
	}
}

func (s *session) protocolInfo() {
	methods := s.f.opts.Auth
	if methods == "" {
		methods = "COOKIE,SAFECOOKIE"
	}
	s.write("250-PROTOCOLINFO 1",
		fmt.Sprintf("250-AUTH METHODS=%s COOKIEFILE=%s", methods, quote(s.f.cookieFile)),
		fmt.Sprintf("250-VERSION Tor=%s", quote(Version)),
		"250 OK")
}

const (
	serverKey = "Tor safe cookie authentication server-to-controller hash"
	clientKey = "Tor safe cookie authentication controller-to-server hash"
)

func hmacOf(key string, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, []byte(key))
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func (s *session) authChallenge(rest string) {
	f := strings.Fields(rest)
	if len(f) != 2 || f[0] != "SAFECOOKIE" {
		s.write("513 AUTHCHALLENGE only supports SAFECOOKIE authentication")
		return
	}
	nonce, err := hex.DecodeString(f[1])
	if err != nil || len(nonce) != 32 {
		s.write("513 Invalid base16 client nonce")
		return
	}
	s.clientNonce = nonce
	s.serverNonce = make([]byte, 32)
	rand.Read(s.serverNonce)
	sh := hmacOf(serverKey, s.f.cookie, s.clientNonce, s.serverNonce)
	s.write(fmt.Sprintf("250 AUTHCHALLENGE SERVERHASH=%X SERVERNONCE=%X", sh, s.serverNonce))
}

func (s *session) authenticate(rest string) bool {
	methods := s.f.opts.Auth
	if methods == "" {
		methods = "COOKIE,SAFECOOKIE"
	}
	if strings.Contains(methods, "NULL") {
		return true
	}
	got, err := hex.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return false
	}
	if s.clientNonce != nil && strings.Contains(methods, "SAFECOOKIE") {
		return hmac.Equal(got, hmacOf(clientKey, s.f.cookie, s.clientNonce, s.serverNonce))
	}
	return strings.Contains(strings.ReplaceAll(methods, "SAFECOOKIE", ""), "COOKIE") && hmac.Equal(got, s.f.cookie)
}

func (s *session) getinfo(keys []string) {
	var out []string
	for _, k := range keys {
		switch k {
		case "net/listeners/socks":
			out = append(out, fmt.Sprintf("250-net/listeners/socks=%s", quote(s.f.SOCKSAddr())))
		case "status/bootstrap-phase":
			s.f.mu.Lock()
			sev, extra := "NOTICE", ""
			if s.f.warning != "" {
				sev, extra = "WARN", fmt.Sprintf(" WARNING=%s REASON=MISC COUNT=1 RECOMMENDATION=warn", quote(s.f.warning))
			}
			out = append(out, fmt.Sprintf("250-status/bootstrap-phase=%s BOOTSTRAP PROGRESS=%d TAG=x SUMMARY=%s%s", sev, s.f.bootstrap, quote(s.f.summary), extra))
			s.f.mu.Unlock()
		case "version":
			out = append(out, "250-version="+Version)
		case "process/pid":
			out = append(out, fmt.Sprintf("250-process/pid=%d", os.Getpid()))
		case "onions/current":
			out = append(out, "250+onions/current=")
			for id := range s.onions {
				out = append(out, id)
			}
			out = append(out, ".")
		default:
			s.write(fmt.Sprintf("552 Unrecognized key %q", k))
			return
		}
	}
	s.write(append(out, "250 OK")...)
}

func (s *session) addOnion(rest string) {
	args := strings.Fields(rest)
	if len(args) < 2 {
		s.write("512 Missing argument to ADD_ONION")
		return
	}
	var key [64]byte
	var newKey bool
	switch {
	case args[0] == "NEW:ED25519-V3" || args[0] == "NEW:BEST":
		var seed [32]byte
		rand.Read(seed[:])
		key = expand(seed)
		newKey = true
	case strings.HasPrefix(args[0], "ED25519-V3:"):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(args[0], "ED25519-V3:"))
		if err != nil || len(raw) != 64 {
			s.write("512 Failed to decode ED25519-V3 key")
			return
		}
		copy(key[:], raw)
	default:
		s.write("513 Invalid key type")
		return
	}
	var ports []string
	for _, a := range args[1:] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "Port":
			virt, target, ok := strings.Cut(v, ",")
			if n, err := strconv.Atoi(virt); err != nil || n < 1 || n > 65535 {
				s.write("512 Invalid VIRTPORT/TARGET")
				return
			}
			if !ok {
				target = "127.0.0.1:" + virt
			}
			ports = append(ports, virt+" "+target)
		case "Flags", "MaxStreams":
		default:
			s.write(fmt.Sprintf("513 Invalid argument %q", k))
			return
		}
	}
	if len(ports) == 0 {
		s.write("512 Missing 'Port' argument")
		return
	}
	id := strings.TrimSuffix(address(publicKey(key)), ".onion")
	file := filepath.Join(s.f.network, id)
	if _, err := os.Stat(file); err == nil {
		s.write("550 Onion address collision")
		return
	}
	if err := os.WriteFile(file, []byte(strings.Join(ports, "\n")), 0o600); err != nil {
		s.write("551 Failed to add Onion Service")
		return
	}
	s.f.mu.Lock()
	s.onions[id] = strings.Join(ports, "\n")
	s.f.mu.Unlock()
	lines := []string{"250-ServiceID=" + id}
	if newKey {
		lines = append(lines, "250-PrivateKey=ED25519-V3:"+base64.StdEncoding.EncodeToString(key[:]))
	}
	s.write(append(lines, "250 OK")...)
	delay := s.f.opts.UploadDelay
	go func() {
		time.Sleep(delay)
		s.f.mu.Lock()
		var to []*session
		for o := range s.f.sessions {
			if slices.Contains(o.events, "HS_DESC") {
				to = append(to, o)
			}
		}
		s.f.mu.Unlock()
		for _, o := range to {
			o.write(fmt.Sprintf("650 HS_DESC UPLOAD %s UNKNOWN $AAAA~fakehsdir AAAA HSDIR_INDEX=00", id),
				fmt.Sprintf("650 HS_DESC UPLOADED %s UNKNOWN $AAAA~fakehsdir", id))
		}
	}()
}

// quote returns s as a control-protocol quoted string.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// Close-down helpers for Main.

// ownerContext returns a context that ends when the owning session ends.
func (f *Tor) ownerContext(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-f.owned:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx
}
