package tortest

import (
	"strings"
	"testing"
	"time"
)

// goodTorrc is a client torrc of a private network, as ClientTorrc and
// StartClient make it.
var goodTorrc = []string{
	"TestingTorNetwork 1",
	"DirAuthority a1 orport=5001 no-v2 v3ident=D4B2070E67E0646D11BD8DD4C505E23C298C1ECC 127.0.0.1:7001 59C2369038C063C6EC4FDF248B53974AAC1F9B56",
	"UseDefaultFallbackDirs 0",
	"DataDirectory /tmp/x",
	"SocksPort 127.0.0.1:auto ExtendedErrors",
	"HiddenServicePort 80 127.0.0.1:8080",
	"HiddenServicePort 81 unix:/tmp/x/sock",
	"TestingDirAuthVoteHSDir *",
}

// TestCheckTorrc: CheckTorrc passes a private network's torrc and refuses
// every way a line could point tor elsewhere.
func TestCheckTorrc(t *testing.T) {
	if err := CheckTorrc(goodTorrc); err != nil {
		t.Fatalf("a good torrc: %v", err)
	}
	with := func(lines ...string) []string { return append(append([]string(nil), goodTorrc...), lines...) }
	without := func(prefix string) []string {
		var out []string
		for _, l := range goodTorrc {
			if !strings.HasPrefix(l, prefix) {
				out = append(out, l)
			}
		}
		return out
	}
	for name, torrc := range map[string][]string{
		"no TestingTorNetwork":           without("TestingTorNetwork"),
		"no DirAuthority":                without("DirAuthority"),
		"no UseDefaultFallbackDirs 0":    without("UseDefaultFallbackDirs"),
		"fallbacks turned back on":       with("UseDefaultFallbackDirs 1"),
		"fallbacks on, other case":       with("usedefaultfallbackdirs 1"),
		"testing network off later":      with("TestingTorNetwork 0"),
		"a public authority":             with("DirAuthority moria1 orport=9201 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232 128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498"),
		"an authority by host name":      with("DirAuthority x orport=1 v3ident=AA example.org:80 BB"),
		"a fallback directory":           with("FallbackDir 127.0.0.1:80 orport=9001 id=AA"),
		"an alternate authority":         with("AlternateDirAuthority 127.0.0.1:80 AA"),
		"the old DirServer":              with("DirServer 127.0.0.1:80 AA"),
		"bridges":                        with("UseBridges 1"),
		"a proxy":                        with("Socks5Proxy 127.0.0.1:1080"),
		"a transport plugin":             with("ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy"),
		"an include":                     with("%include /etc/tor/torrc"),
		"a continued line":               with(`HiddenServicePort 80 \`),
		"clearing authorities":           with("/DirAuthority"),
		"a service to another host":      with("HiddenServicePort 80 10.0.0.1:80"),
		"a service to a host name":       with("HiddenServicePort 80 example.org:80"),
		"an IPv6 address":                with("HiddenServicePort 80 [2001:db8::1]:80"),
		"IPv6 loopback":                  with("SocksPort [::1]:9050"),
		"an exit policy naming the host": with("ExitPolicy accept 192.168.1.1/32:*"),
		"a listener on every address":    with("ORPort 0.0.0.0:9001"),
	} {
		if err := CheckTorrc(torrc); err == nil {
			t.Errorf("%s: CheckTorrc passed %q", name, torrc[len(torrc)-1])
		}
	}
}

// TestVotingOffset: with the offset votingOffset picks, the authorities'
// first period (the next to start after now, periods starting at the
// offset plus multiples of the interval) makes them vote firstVoteAfter
// after now, give or take the second the offset is rounded to.
func TestVotingOffset(t *testing.T) {
	interval := int64(initialInterval / time.Second)
	for _, ms := range []int64{0, 1, 999, 1000, 4321, 9999, 123456789} {
		now := time.UnixMilli(1_800_000_000_000 + ms)
		offset := int64(votingOffset(now))
		if offset < 0 || offset >= interval {
			t.Fatalf("offset %d for %v: not within an interval", offset, now)
		}
		next := now.Unix() + 1
		for (next-offset)%interval != 0 {
			next++
		}
		vote := time.Unix(next, 0).Add(-2 * initialDelay)
		if d := vote.Sub(now); d < firstVoteAfter || d >= firstVoteAfter+time.Second {
			t.Errorf("now %v, offset %d: first vote %v after now, want %v", now, offset, d, firstVoteAfter)
		}
	}
}
