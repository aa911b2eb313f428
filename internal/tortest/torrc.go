package tortest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
)

// loopbackNet is the only network a torrc of this package may name.
var loopbackNet = netip.MustParsePrefix("127.0.0.0/8")

// forbiddenOptions would make a tor use directories, bridges, proxies or
// programs other than the private network's (keys in lower case, as tor
// matches options without regard to case). DirServer is tor's old name for
// DirAuthority.
var forbiddenOptions = map[string]string{
	"fallbackdir":              "a fallback directory",
	"alternatedirauthority":    "an authority beside the private network's",
	"alternatebridgeauthority": "a bridge authority",
	"dirserver":                "an authority under DirAuthority's old name",
	"usebridges":               "bridges",
	"bridge":                   "a bridge",
	"clienttransportplugin":    "a pluggable transport",
	"servertransportplugin":    "a pluggable transport",
	"socks4proxy":              "a proxy",
	"socks5proxy":              "a proxy",
	"httpsproxy":               "a proxy",
	"httpproxy":                "a proxy",
	"tcpproxy":                 "a proxy",
}

// ipv4Literal finds dotted quads anywhere in a line, whatever surrounds
// them (an exit policy, a host:port, a CIDR).
var ipv4Literal = regexp.MustCompile(`\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}`)

// CheckTorrc returns nil when the torrc lines keep a tor on a private
// testing network on loopback, and an error naming the first line that
// does not otherwise. It requires TestingTorNetwork 1, at least one
// DirAuthority (each on 127.0.0.0/8) and UseDefaultFallbackDirs 0, every
// time the option appears (tor keeps the last); it refuses fallback
// directories, other authorities, bridges, proxies, transports, %include,
// continued lines, and any address outside 127.0.0.0/8 (IPv6 included)
// or host name, wherever it appears.
//
// Every torrc this package writes passes it; a test that writes its own
// torrc for this network (Network.ClientTorrc plus its own lines) can
// check it too.
func CheckTorrc(lines []string) error {
	var testing, auths, noFallbacks int
	for i, raw := range lines {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("torrc line %d %q: %s", i+1, raw, fmt.Sprintf(format, a...))
		}
		if strings.HasPrefix(line, "%") {
			return bad("no %%include or other directive")
		}
		if strings.HasSuffix(line, `\`) || strings.ContainsAny(line, "\n\r") {
			return bad("no continued lines")
		}
		fields := strings.Fields(line)
		key := strings.ToLower(fields[0])
		if strings.HasPrefix(key, "/") {
			return bad("no clearing of options with /")
		}
		key = strings.TrimPrefix(key, "+")
		if what, ok := forbiddenOptions[key]; ok {
			return bad("%s is not allowed: tests use the private network's authorities only", what)
		}
		if err := checkAddresses(fields[1:]); err != nil {
			return bad("%v", err)
		}
		value := strings.Join(fields[1:], " ")
		switch key {
		case "testingtornetwork":
			if value != "1" {
				return bad("TestingTorNetwork must be 1")
			}
			testing++
		case "usedefaultfallbackdirs":
			if value != "0" {
				return bad("UseDefaultFallbackDirs must be 0")
			}
			noFallbacks++
		case "dirauthority":
			if !dirAuthorityOnLoopback(fields[1:]) {
				return bad("a DirAuthority must name an address in 127.0.0.0/8")
			}
			auths++
		}
	}
	switch {
	case testing == 0:
		return errors.New("torrc: no TestingTorNetwork 1")
	case auths == 0:
		return errors.New("torrc: no DirAuthority line: tor would use the public network's authorities")
	case noFallbacks == 0:
		return errors.New("torrc: no UseDefaultFallbackDirs 0")
	}
	return nil
}

// dirAuthorityOnLoopback reports whether the arguments of a DirAuthority
// line hold its address:dirport, in 127.0.0.0/8.
func dirAuthorityOnLoopback(args []string) bool {
	for _, a := range args {
		if ap, err := netip.ParseAddrPort(a); err == nil {
			return loopbackNet.Contains(ap.Addr())
		}
	}
	return false
}

// checkAddresses returns an error for any address in args outside
// 127.0.0.0/8, any IPv6 address, and any host name in a host:port.
func checkAddresses(args []string) error {
	for _, a := range args {
		for _, m := range ipv4Literal.FindAllString(a, -1) {
			ip, err := netip.ParseAddr(m)
			if err != nil || !loopbackNet.Contains(ip) {
				return fmt.Errorf("address %s is outside 127.0.0.0/8", m)
			}
		}
		// key=value arguments (orport=…, ipv6=…) carry their address
		// after the =.
		if _, v, ok := strings.Cut(a, "="); ok {
			a = v
		}
		if strings.HasPrefix(a, "unix:") {
			continue // a local socket
		}
		if strings.HasPrefix(a, "[") || strings.Count(a, ":") > 1 {
			return fmt.Errorf("%s: no IPv6 addresses, only 127.0.0.0/8", a)
		}
		host, port, ok := strings.Cut(a, ":")
		if !ok || host == "" || !isPort(port) {
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%s: a host name; only addresses in 127.0.0.0/8", a)
		}
		if !loopbackNet.Contains(ip) {
			return fmt.Errorf("address %s is outside 127.0.0.0/8", host)
		}
	}
	return nil
}

// isPort reports whether s is what tor accepts after host: a number, a
// range, auto, or *.
func isPort(s string) bool {
	if s == "auto" || s == "*" {
		return true
	}
	lo, hi, _ := strings.Cut(s, "-")
	for _, p := range []string{lo, hi} {
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return lo != ""
}

// written records every torrc file this package wrote, for the test that
// reads them all back.
var written struct {
	sync.Mutex
	paths []string
}

// writeTorrc checks lines with CheckTorrc and writes them to path.
func writeTorrc(path string, lines []string) error {
	if err := CheckTorrc(lines); err != nil {
		return fmt.Errorf("tortest: refusing to write %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("tortest: write torrc: %w", err)
	}
	written.Lock()
	written.paths = append(written.paths, path)
	written.Unlock()
	return nil
}
