package tor

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// TestReadReply reads every reply form of control-spec §2.3/§4 from
// canned bytes: one line, several, data with dot-stuffing, a refusal, an
// event; and refuses malformed ones.
func TestReadReply(t *testing.T) {
	cases := []struct {
		name, in string
		status   int
		texts    []string
		data     []string
	}{
		{"one line", "250 OK\r\n", 250, []string{"OK"}, []string{""}},
		{"bare LF", "250 OK\n", 250, []string{"OK"}, []string{""}},
		{"mid lines", "250-version=0.4.9.1\r\n250-net/listeners/socks=\"127.0.0.1:9050\"\r\n250 OK\r\n", 250,
			[]string{"version=0.4.9.1", `net/listeners/socks="127.0.0.1:9050"`, "OK"}, []string{"", "", ""}},
		{"data", "250+config-text=\r\nSocksPort 9050\r\n..dotted line\r\n\r\nlast\r\n.\r\n250 OK\r\n", 250,
			[]string{"config-text=", "OK"}, []string{"SocksPort 9050\n.dotted line\n\nlast", ""}},
		{"refusal", "552 Unrecognized key \"nope\"\r\n", 552, []string{`Unrecognized key "nope"`}, []string{""}},
		{"event", "650 HS_DESC UPLOADED abc UNKNOWN $X\r\n", 650, []string{"HS_DESC UPLOADED abc UNKNOWN $X"}, []string{""}},
		{"multi-line event", "650-CONF_CHANGED\r\n650-SocksPort=9050\r\n650 OK\r\n", 650, []string{"CONF_CHANGED", "SocksPort=9050", "OK"}, []string{"", "", ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := readReply(bufio.NewReader(strings.NewReader(c.in)))
			if err != nil {
				t.Fatal(err)
			}
			if rep.status != c.status || len(rep.lines) != len(c.texts) {
				t.Fatalf("status %d, %d lines; want %d, %d", rep.status, len(rep.lines), c.status, len(c.texts))
			}
			for i, l := range rep.lines {
				if l.text != c.texts[i] || l.data != c.data[i] {
					t.Errorf("line %d: %q / %q, want %q / %q", i, l.text, l.data, c.texts[i], c.data[i])
				}
			}
		})
	}
	for _, bad := range []string{
		"OK\r\n",                // no status
		"25x OK\r\n",            // not a number
		"250*OK\r\n",            // unknown separator
		"250-first\r\n",         // cut short
		"250+data=\r\nline\r\n", // data without its end
		"250 " + strings.Repeat("x", maxLine+1) + "\r\n",
		strings.Repeat("250-x\r\n", maxReplyLines+1) + "250 OK\r\n",
	} {
		if _, err := readReply(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%.40q: read without an error", bad)
		}
	}
}

// TestParseArgs reads KEY=VALUE pairs, quoted strings with escapes
// (octal included), and bare words.
func TestParseArgs(t *testing.T) {
	args, err := parseArgs(`METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/var/run/tor/control.authcookie" Tor="0.4.9.1" WORD Q="a \"b\" \\ \n\101"`)
	if err != nil {
		t.Fatal(err)
	}
	want := []arg{{"METHODS", "COOKIE,SAFECOOKIE"}, {"COOKIEFILE", "/var/run/tor/control.authcookie"}, {"Tor", "0.4.9.1"}, {"", "WORD"}, {"Q", "a \"b\" \\ \nA"}}
	if len(args) != len(want) {
		t.Fatalf("%q", args)
	}
	for i := range want {
		if args[i] != want[i] {
			t.Errorf("arg %d: %q, want %q", i, args[i], want[i])
		}
	}
	list, err := parseArgs(`"127.0.0.1:9050" "unix:/run/tor/socks"`)
	if err != nil || len(list) != 2 || list[1].Value != "unix:/run/tor/socks" {
		t.Errorf("a list of quoted strings: %q %v", list, err)
	}
	for _, bad := range []string{`K="unterminated`, `K="ends in \`, `"\777"`} {
		if _, err := parseArgs(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if got, _, _ := unquote(quote("a\"b\\c\nd\te")); got != "a\"b\\c\nd\te" {
		t.Errorf("quote and unquote: %q", got)
	}
}

// scripted is a control port on loopback that answers each command line
// with the lines script gives, after sending any events pre gives first.
func scripted(t *testing.T, script func(cmd string) (pre []string, reply []string)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					pre, rep := script(strings.TrimRight(line, "\r\n"))
					for _, l := range append(pre, rep...) {
						if _, err := c.Write([]byte(l + "\r\n")); err != nil {
							return
						}
					}
					if rep == nil && pre == nil {
						return // hang up
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func dialControl(t *testing.T, addr string, onEvent func(*reply)) *controlConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cc := newControlConn(c, onEvent)
	t.Cleanup(func() { cc.close() })
	return cc
}

// TestControlEventsBetweenReplies: events that arrive before and between
// replies go to the event handler; each command still gets its own reply.
func TestControlEventsBetweenReplies(t *testing.T) {
	addr := scripted(t, func(cmd string) ([]string, []string) {
		switch cmd {
		case "GETINFO version":
			return []string{"650 HS_DESC UPLOAD x UNKNOWN $A", "650-CONF_CHANGED", "650 OK"}, []string{"250-version=0.4.9.1", "250 OK"}
		case "GETINFO nope":
			return []string{"650 HS_DESC UPLOADED x UNKNOWN $A"}, []string{`552 Unrecognized key "nope"`}
		}
		return nil, []string{"510 Unrecognized command"}
	})
	events := make(chan string, 10)
	cc := dialControl(t, addr, func(r *reply) { events <- r.lines[0].text })
	ctx := context.Background()
	info, err := cc.getinfo(ctx, "version")
	if err != nil || info["version"] != "0.4.9.1" {
		t.Fatalf("GETINFO version: %v %v", info, err)
	}
	_, err = cc.getinfo(ctx, "nope")
	var ce *ControlError
	if !errors.As(err, &ce) || ce.Status != 552 || ce.Command != "GETINFO" || !strings.Contains(err.Error(), "552") {
		t.Fatalf("GETINFO nope: %v", err)
	}
	for _, want := range []string{"HS_DESC UPLOAD x UNKNOWN $A", "CONF_CHANGED", "HS_DESC UPLOADED x UNKNOWN $A"} {
		select {
		case got := <-events:
			if got != want {
				t.Errorf("event %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event %q", want)
		}
	}
}

// TestControlAbandonedCommand: a command whose context ends before its
// reply leaves the connection in step: the late reply is dropped, the
// next command gets its own.
func TestControlAbandonedCommand(t *testing.T) {
	release := make(chan struct{})
	addr := scripted(t, func(cmd string) ([]string, []string) {
		if cmd == "GETINFO slow" {
			<-release
			return nil, []string{"250-slow=late", "250 OK"}
		}
		return nil, []string{"250-fast=yes", "250 OK"}
	})
	cc := dialControl(t, addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := cc.getinfo(ctx, "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the slow command: %v", err)
	}
	close(release)
	info, err := cc.getinfo(context.Background(), "fast")
	if err != nil || info["fast"] != "yes" {
		t.Fatalf("the next command got %v, %v: out of step", info, err)
	}
}

// TestControlClosed: when the control port hangs up, waiting commands and
// later ones fail with ErrControlClosed, never hang.
func TestControlClosed(t *testing.T) {
	addr := scripted(t, func(cmd string) ([]string, []string) { return nil, nil })
	cc := dialControl(t, addr, nil)
	if _, err := cc.command(context.Background(), "GETINFO version"); !errors.Is(err, ErrControlClosed) {
		t.Fatalf("a command answered by a hang-up: %v", err)
	}
	if _, err := cc.command(context.Background(), "GETINFO version"); !errors.Is(err, ErrControlClosed) {
		t.Fatalf("a command after: %v", err)
	}
	if _, err := cc.command(context.Background(), "GETINFO a\r\nSIGNAL HALT"); err == nil || errors.Is(err, ErrControlClosed) {
		t.Fatalf("a command with a line break: %v", err)
	}
}

// TestParseBootstrap reads tor's bootstrap phase, warnings included.
func TestParseBootstrap(t *testing.T) {
	st, err := parseBootstrap(`NOTICE BOOTSTRAP PROGRESS=45 TAG=requesting_descriptors SUMMARY="Asking for relay descriptors"`)
	if err != nil || st != (Status{Running: true, Bootstrap: 45, Summary: "Asking for relay descriptors"}) {
		t.Errorf("%+v %v", st, err)
	}
	st, err = parseBootstrap(`WARN BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay" WARNING="Network is unreachable" REASON=NOROUTE COUNT=3 RECOMMENDATION=warn`)
	if err != nil || st.Bootstrap != 5 || st.Warning != "Network is unreachable" {
		t.Errorf("%+v %v", st, err)
	}
	for _, bad := range []string{`NOTICE BOOTSTRAP TAG=x`, `NOTICE BOOTSTRAP PROGRESS=101`, `NOTICE BOOTSTRAP PROGRESS=x`} {
		if _, err := parseBootstrap(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
