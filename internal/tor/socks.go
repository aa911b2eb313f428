package tor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// SOCKS5 (RFC 1928) and its username/password authentication (RFC 1929),
// as much of them as a client of tor needs.
const (
	socksVersion      = 5
	socksAuthNone     = 0x00
	socksAuthPassword = 0x02
	socksNoMethod     = 0xff
	socksCmdConnect   = 0x01
	socksAtypIPv4     = 0x01
	socksAtypName     = 0x03
	socksAtypIPv6     = 0x04
	socksPasswordVer  = 0x01

	// maxSOCKSField is the longest user name, password or host name
	// SOCKS5 carries (one length byte).
	maxSOCKSField = 255
)

// Errors a connection through tor fails with; a *SOCKSError wraps one of
// them when tor's answer says which.
var (
	// ErrUnreachable: tor could not reach the host or onion service (no
	// descriptor, no introduction, no route, or the name did not
	// resolve at the exit).
	ErrUnreachable = errors.New("unreachable through tor")
	// ErrRefused: the host, or the onion service's target, refused
	// the connection: nothing listens there.
	ErrRefused = errors.New("connection refused")
	// ErrTimedOut: the circuit or the service did not answer in time
	// (SOCKS5 "TTL expired").
	ErrTimedOut = errors.New("timed out through tor")
	// ErrSOCKS: tor refused the request otherwise (general failure,
	// not allowed, a bad address).
	ErrSOCKS = errors.New("tor refused the connection")
)

// SOCKSError is tor's SOCKS5 refusal of one connection: the reply code
// and the host asked for.
type SOCKSError struct {
	Code byte
	Host string
}

func (e *SOCKSError) Error() string {
	onion := strings.HasSuffix(e.Host, ".onion")
	why := ""
	switch e.Code {
	case 0x01:
		why = "tor's general failure (the circuit failed; try again)"
	case 0x02:
		why = "not allowed by tor's configuration or the exits' policies"
	case 0x03:
		why = "network unreachable"
	case 0x04:
		why = "host unreachable"
		if onion {
			why = "the onion service is unreachable (it is not running, or not published yet)"
		}
	case 0x05:
		why = "connection refused (nothing listens there)"
	case 0x06:
		why = "timed out (SOCKS TTL expired): no answer through tor in time"
		if onion {
			why = "timed out (SOCKS TTL expired): the onion service did not answer in time (it may be down)"
		}
	case 0x07:
		why = "tor does not support the command"
	case 0x08:
		why = "tor does not support the address type"
	case 0xf0:
		why = "the onion service is unreachable: its descriptor was not found (it is not running, or not published yet)"
	case 0xf1:
		why = "the onion service's descriptor is invalid"
	case 0xf2:
		why = "the onion service is unreachable: its introduction failed"
	case 0xf3:
		why = "the onion service is unreachable: the rendezvous failed"
	case 0xf4:
		why = "the onion service needs client authorization"
	case 0xf5:
		why = "the onion service refused this client's authorization"
	case 0xf6:
		why = "not a valid onion address"
	case 0xf7:
		why = "timed out: the onion service's introduction did not complete in time"
	default:
		why = fmt.Sprintf("tor's SOCKS reply %#02x", e.Code)
	}
	return e.Host + ": " + why
}

// Unwrap returns the error class of the reply code.
func (e *SOCKSError) Unwrap() error {
	switch e.Code {
	case 0x03, 0x04, 0xf0, 0xf1, 0xf2, 0xf3, 0xf6:
		return ErrUnreachable
	case 0x05:
		return ErrRefused
	case 0x06, 0xf7:
		return ErrTimedOut
	}
	return ErrSOCKS
}

// Dialer opens TCP connections through tor's SOCKS5 port. Host names are
// never resolved on this machine: the name goes to tor (SOCKS5 address
// type 3), which resolves it at the exit, or, for an onion address, finds
// the service. Connections of different isolation strings never share a
// circuit: the string is sent as the SOCKS5 user name and password, and
// tor isolates streams by them (IsolateSOCKSAuth, on by default on every
// SocksPort). A Dialer is safe for concurrent use.
type Dialer struct {
	network, addr string // of tor's SOCKS port: "tcp" or "unix"
	isolation     string
}

// NewDialer returns a dialer through the SOCKS5 port at addr ("host:port"
// or "unix:/path"), with connections isolated by isolation (see Dialer).
func NewDialer(addr, isolation string) *Dialer {
	d := &Dialer{network: "tcp", addr: addr, isolation: isolation}
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		d.network, d.addr = "unix", p
	}
	return d
}

// Isolation returns the isolation string of d's connections.
func (d *Dialer) Isolation() string { return d.isolation }

// Dial is DialContext without a context.
func (d *Dialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

// DialContext connects to addr ("host:port") through tor. network must
// be "tcp", "tcp4" or "tcp6" (tor carries nothing else). The host goes to
// tor as it is; an IP address goes as an address. A refusal is a
// *net.OpError (Op "dial") wrapping a *SOCKSError; ctx bounds the whole
// handshake.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	fail := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Source: nil, Addr: socksAddr(addr), Err: err}
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fail(fmt.Errorf("tor carries TCP only, not %q", network))
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fail(err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return nil, fail(fmt.Errorf("bad port %q", portText))
	}
	if len(host) == 0 || len(host) > maxSOCKSField {
		return nil, fail(fmt.Errorf("a host name of %d bytes (1 to %d)", len(host), maxSOCKSField))
	}
	req, err := connectRequest(host, uint16(port))
	if err != nil {
		return nil, fail(err)
	}
	// Tor's SOCKS port is an IP literal or a path: dialing it resolves
	// nothing.
	var nd net.Dialer
	c, err := nd.DialContext(ctx, d.network, d.addr)
	if err != nil {
		return nil, fail(fmt.Errorf("tor's SOCKS port %s does not answer (is tor running?): %w", d.addr, err))
	}
	// The handshake ends with ctx: a deadline, and a cancel closes the
	// connection.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	err = d.handshake(c, host, req)
	if !stop() || err != nil && ctx.Err() != nil {
		// ctx ended during the handshake (a cancel that cut the
		// connection short): that is the answer either way.
		err = ctx.Err()
	} else if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		err = context.DeadlineExceeded // the socket's deadline is ctx's
	}
	if err != nil {
		c.Close()
		return nil, fail(err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

type socksAddr string

func (a socksAddr) Network() string { return "tcp" }
func (a socksAddr) String() string  { return string(a) }

// connectRequest returns the CONNECT request for host and port: an IPv4
// or IPv6 address as such, anything else as a name (ATYP 3).
func connectRequest(host string, port uint16) ([]byte, error) {
	req := []byte{socksVersion, socksCmdConnect, 0}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && ip.Zone() == "" {
		if ip.Is4() || ip.Is4In6() {
			b := ip.Unmap().As4()
			req = append(req, socksAtypIPv4)
			req = append(req, b[:]...)
		} else {
			b := ip.As16()
			req = append(req, socksAtypIPv6)
			req = append(req, b[:]...)
		}
	} else {
		if strings.ContainsAny(host, "\x00/ ") {
			return nil, fmt.Errorf("not a host name: %q", host)
		}
		req = append(req, socksAtypName, byte(len(host)))
		req = append(req, host...)
	}
	return binary.BigEndian.AppendUint16(req, port), nil
}

// handshake negotiates authentication (the isolation string as user name
// and password when set), sends the CONNECT request and reads tor's reply.
func (d *Dialer) handshake(c net.Conn, host string, req []byte) error {
	method := byte(socksAuthNone)
	if d.isolation != "" {
		method = socksAuthPassword
	}
	if _, err := c.Write([]byte{socksVersion, 1, method}); err != nil {
		return err
	}
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return socksIOError(err)
	}
	if b[0] != socksVersion {
		return fmt.Errorf("%s does not speak SOCKS5: is it tor's SOCKS port?", d.addr)
	}
	switch {
	case b[1] == socksNoMethod:
		return fmt.Errorf("%w: tor accepted none of the authentication methods offered", ErrSOCKS)
	case b[1] != method:
		return fmt.Errorf("%w: tor chose authentication method %d, not the one offered (%d)", ErrSOCKS, b[1], method)
	}
	if method == socksAuthPassword {
		iso := d.isolation
		if len(iso) > maxSOCKSField {
			return fmt.Errorf("an isolation string of %d bytes (at most %d)", len(iso), maxSOCKSField)
		}
		auth := []byte{socksPasswordVer, byte(len(iso))}
		auth = append(auth, iso...)
		auth = append(auth, byte(len(iso)))
		auth = append(auth, iso...)
		if _, err := c.Write(auth); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return socksIOError(err)
		}
		if b[1] != 0 {
			return fmt.Errorf("%w: tor refused the SOCKS credentials (status %d)", ErrSOCKS, b[1])
		}
	}
	if _, err := c.Write(req); err != nil {
		return err
	}
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return socksIOError(err)
	}
	if head[0] != socksVersion {
		return fmt.Errorf("%w: a malformed SOCKS reply", ErrSOCKS)
	}
	if head[1] != 0 {
		return &SOCKSError{Code: head[1], Host: host}
	}
	// The bound address, which tor fills with zeros: read and dropped.
	var skip int
	switch head[3] {
	case socksAtypIPv4:
		skip = 4
	case socksAtypIPv6:
		skip = 16
	case socksAtypName:
		if _, err := io.ReadFull(c, b[:1]); err != nil {
			return socksIOError(err)
		}
		skip = int(b[0])
	default:
		return fmt.Errorf("%w: a SOCKS reply with address type %d", ErrSOCKS, head[3])
	}
	if _, err := io.ReadFull(c, make([]byte, skip+2)); err != nil {
		return socksIOError(err)
	}
	return nil
}

func socksIOError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the SOCKS port closed the connection mid-handshake", ErrSOCKS)
	}
	return err
}
