package torsuite

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// What the tests read of processes and sockets in /proc. The network
// namespace's sockets (/proc/net/*) are the tests' own, which the
// processes they start share. /proc itself is the host's mount (tortest
// makes a PID namespace without a new /proc): it shows every process of
// the machine under its host PID, so the tests keep to the processes of
// their own PID namespace and name them by their PIDs there, as
// exec.Cmd and SO_PEERCRED do.

// process is a running process of the tests' PID namespace.
type process struct {
	pid, ppid int    // in the tests' PID namespace (ppid 0: outside it)
	host      int    // its directory in /proc
	comm      string // its command name
	cmdline   string // its arguments, space-separated
}

// processes returns the running processes (not zombies) of this
// process's PID namespace, by their PID there.
func processes() map[int]process {
	ownNS, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return nil
	}
	own := nsPIDs("self")
	if len(own) == 0 {
		return nil
	}
	level := len(own) - 1 // this namespace's place in the NSpid lists
	ents, _ := os.ReadDir("/proc")
	byHost := map[int]process{}
	for _, e := range ents {
		host, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", host)); err != nil || ns != ownNS {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", host))
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		ids := nsPIDs(strconv.Itoa(host))
		if len(f) < 2 || f[0] == "Z" || len(ids) <= level {
			continue
		}
		hostPPID, _ := strconv.Atoi(f[1])
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", host))
		byHost[host] = process{pid: ids[level], ppid: hostPPID, host: host, comm: string(b[open+1 : end]),
			cmdline: strings.ReplaceAll(string(bytes.TrimRight(cl, "\x00")), "\x00", " ")}
	}
	out := map[int]process{}
	for _, p := range byHost {
		parent, ok := byHost[p.ppid]
		p.ppid = 0
		if ok {
			p.ppid = parent.pid
		}
		out[p.pid] = p
	}
	return out
}

// nsPIDs returns the NSpid line of /proc/<which>/status: the process's
// PID in each PID namespace from /proc's own down to its own.
func nsPIDs(which string) []int {
	b, err := os.ReadFile("/proc/" + which + "/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			var out []int
			for _, f := range strings.Fields(v) {
				n, _ := strconv.Atoi(f)
				out = append(out, n)
			}
			return out
		}
	}
	return nil
}

// alive reports whether process pid (of the tests' namespace) runs.
func alive(pid int) bool {
	_, ok := processes()[pid]
	return ok
}

// torProcesses returns the running processes named tor (pgrep -x tor) in
// the tests' PID namespace.
func torProcesses() map[int]process {
	out := map[int]process{}
	for pid, p := range processes() {
		if p.comm == "tor" {
			out[pid] = p
		}
	}
	return out
}

// torChildren returns the running tor processes whose parent is pid.
func torChildren(pid int) []int {
	var out []int
	for p, tp := range torProcesses() {
		if tp.ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// socketInodes returns the inodes of the sockets process pid holds open.
func socketInodes(pid int) (map[uint64]bool, error) {
	p, ok := processes()[pid]
	if !ok {
		return nil, fmt.Errorf("no process %d in the tests' PID namespace", pid)
	}
	dir := fmt.Sprintf("/proc/%d/fd", p.host)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[uint64]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				out[n] = true
			}
		}
	}
	return out, nil
}

// tcpSocket is a line of /proc/net/tcp or tcp6.
type tcpSocket struct {
	local, remote netip.AddrPort
	listening     bool
}

func (s tcpSocket) String() string {
	if s.listening {
		return "listening on " + s.local.String()
	}
	return s.local.String() + " to " + s.remote.String()
}

// tcpSockets returns the TCP sockets (IPv4 and IPv6) whose inode is in
// inodes.
func tcpSockets(inodes map[uint64]bool) ([]tcpSocket, error) {
	var out []tcpSocket
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			if os.IsNotExist(err) {
				continue // no IPv6
			}
			return nil, err
		}
		s := bufio.NewScanner(f)
		s.Scan() // the header
		for s.Scan() {
			fl := strings.Fields(s.Text())
			if len(fl) < 10 {
				continue
			}
			ino, _ := strconv.ParseUint(fl[9], 10, 64)
			if !inodes[ino] {
				continue
			}
			local, err1 := procAddr(fl[1])
			remote, err2 := procAddr(fl[2])
			if err1 != nil || err2 != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %q: %v %v", file, s.Text(), err1, err2)
			}
			out = append(out, tcpSocket{local: local, remote: remote, listening: fl[3] == "0A"})
		}
		f.Close()
	}
	return out, nil
}

// procAddr parses /proc/net/tcp's ADDR:PORT, the address in hex as the
// kernel holds it (32-bit words in host order: little-endian here).
func procAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q", a)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// unixListeners returns the paths of the listening Unix sockets whose
// inode is in inodes.
func unixListeners(inodes map[uint64]bool) ([]string, error) {
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return nil, err
	}
	const acceptCon = 0x10000 // __SO_ACCEPTCON: a listening socket
	var out []string
	for _, line := range strings.Split(string(b), "\n")[1:] {
		fl := strings.Fields(line)
		if len(fl) < 7 {
			continue
		}
		ino, _ := strconv.ParseUint(fl[6], 10, 64)
		flags, _ := strconv.ParseUint(fl[3], 16, 32)
		if !inodes[ino] || flags&acceptCon == 0 {
			continue
		}
		path := ""
		if len(fl) >= 8 {
			path = fl[7]
		}
		out = append(out, path)
	}
	return out, nil
}
