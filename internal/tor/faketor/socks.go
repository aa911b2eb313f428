package faketor

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func (f *Tor) acceptSOCKS() {
	defer f.wg.Done()
	for {
		c, err := f.socks.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(c)
			f.serveSOCKS(c)
		}()
	}
}

// serveSOCKS answers one SOCKS5 connection: authentication (none, or a
// user name and password, which it records), one CONNECT, then the bytes
// both ways.
func (f *Tor) serveSOCKS(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var req Request
	head := make([]byte, 2)
	if _, err := io.ReadFull(c, head); err != nil || head[0] != 5 {
		return
	}
	methods := make([]byte, head[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	switch {
	case strings.IndexByte(string(methods), 2) >= 0:
		req.Method = 2
	case strings.IndexByte(string(methods), 0) >= 0:
		req.Method = 0
	default:
		c.Write([]byte{5, 0xff})
		return
	}
	c.Write([]byte{5, req.Method})
	if req.Method == 2 {
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 1 {
			return
		}
		read := func() (string, bool) {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return "", false
			}
			s := make([]byte, b[0])
			_, err := io.ReadFull(c, s)
			return string(s), err == nil
		}
		var ok bool
		if req.User, ok = read(); !ok {
			return
		}
		if req.Pass, ok = read(); !ok {
			return
		}
		c.Write([]byte{1, 0})
	}
	h := make([]byte, 4)
	if _, err := io.ReadFull(c, h); err != nil || h[0] != 5 {
		return
	}
	if h[1] != 1 {
		reply(c, 7)
		return
	}
	req.Atyp = h[3]
	switch req.Atyp {
	case 1, 4:
		n := 4
		if req.Atyp == 4 {
			n = 16
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		a, _ := netip.AddrFromSlice(b)
		req.Host = a.String()
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		b := make([]byte, l[0])
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		req.Host = string(b)
	default:
		reply(c, 8)
		return
	}
	var p [2]byte
	if _, err := io.ReadFull(c, p[:]); err != nil {
		return
	}
	req.Port = binary.BigEndian.Uint16(p[:])
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()

	target, code := f.route(req.Host, req.Port)
	if code != 0 {
		reply(c, code)
		return
	}
	network, addr := "tcp", target
	if p, ok := strings.CutPrefix(target, "unix:"); ok {
		network, addr = "unix", p
	}
	if network == "tcp" {
		// Only ever loopback: the double reaches nothing else.
		ap, err := netip.ParseAddrPort(addr)
		if err != nil || !ap.Addr().IsLoopback() {
			reply(c, 2)
			return
		}
	}
	up, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		reply(c, 5)
		return
	}
	if !f.track(up) {
		up.Close()
		return
	}
	defer f.untrack(up)
	defer up.Close()
	reply(c, 0)
	c.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
	go func() { io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

// track records an open connection for Close; false once closed.
func (f *Tor) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.socksConn[c] = true
	return true
}

func (f *Tor) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.socksConn, c)
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// route finds where a CONNECT goes: an onion service of the network, or
// what a test mapped; else a refusal code.
func (f *Tor) route(host string, port uint16) (string, byte) {
	hostport := strings.ToLower(net.JoinHostPort(host, strconv.Itoa(int(port))))
	f.mu.Lock()
	t, mapped := f.hosts[hostport]
	f.mu.Unlock()
	if mapped {
		if code, ok := strings.CutPrefix(t, "!"); ok {
			n, _ := strconv.Atoi(code)
			return "", byte(n)
		}
		return t, 0
	}
	h := strings.ToLower(host)
	if !strings.HasSuffix(h, ".onion") {
		return "", 4 // host unreachable: the double resolves nothing
	}
	id := strings.TrimSuffix(h, ".onion")
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		id = id[i+1:]
	}
	b, err := os.ReadFile(filepath.Join(f.network, id))
	if err != nil {
		if f.opts.ExtendedErrors {
			return "", 0xf0
		}
		return "", 4
	}
	for _, l := range strings.Split(string(b), "\n") {
		virt, target, _ := strings.Cut(l, " ")
		if virt == strconv.Itoa(int(port)) {
			return target, 0
		}
	}
	return "", 1 // no such port on the service: tor closes the circuit
}

func reply(c net.Conn, code byte) {
	c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
}
