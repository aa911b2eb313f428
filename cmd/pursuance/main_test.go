package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pursuance/pursuance/internal/cli"
	"github.com/pursuance/pursuance/internal/testca"
	"github.com/pursuance/pursuance/internal/tor/faketor"
)

// TestMain lets the test binary act as the pursuance command inside scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"pursuance":       func() { os.Exit(cli.Main()) },
		"pursuance-probe": func() { os.Exit(probeMain()) }, // up_test.go
		// A test double of tor for the Tor tests (tor_test.go), run as
		// the tor binary through PURSUANCE_TOR_BINARY.
		"pursuance-faketor": func() { os.Exit(faketor.Main()) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/script, each against the
// real command in a fresh working directory.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// Each script starts with its own home and no passphrase.
			env.Setenv("PURSUANCE_HOME", env.WorkDir+"/home")
			// Under -race, each process otherwise sleeps a second at exit.
			if os.Getenv("GORACE") == "" {
				env.Setenv("GORACE", "atexit_sleep_ms=0")
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"capture": capture,
			"relay":   relayCmd,
			"node":    nodeCmd,
			"athome":  athome,
			"server":  serverCmd,
			// eventually_test.go
			"eventually": eventually,
			"tlsca":      tlsCA,
			// attach_test.go
			"randfile": randFile,
			"editfile": editFile,
			"noplain":  noPlain,
		},
	})
}

// capture VAR [REGEXP] sets the environment variable VAR to the last
// command's stdout, trimmed, or to REGEXP's first submatch in it. Scripts
// use it to carry IDs and invite codes from one command to the next.
func capture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: capture VAR [REGEXP]")
	}
	out := ts.ReadFile("stdout")
	val := strings.TrimSpace(out)
	if len(args) == 2 {
		m := regexp.MustCompile(args[1]).FindStringSubmatch(out)
		if len(m) < 2 {
			ts.Fatalf("capture: %q does not match stdout %q", args[1], out)
		}
		val = m[1]
	}
	ts.Setenv(args[0], val)
}

// node start NAME HOME [INTERVAL] | stop NAME: runs `pursuance up` for the
// home as a real process, its embedded relay on loopback, syncing every
// INTERVAL (300ms unless given: a long one shows what the node does
// between rounds, on what it follows live), setting $NAME to that relay's
// URL once the node has synced; stop sends SIGTERM and waits.
func nodeCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: node start NAME HOME [INTERVAL] | node stop NAME")
	}
	op, name := args[0], args[1]
	key := fmt.Sprintf("%p/node/%s", ts, name)
	switch op {
	case "start":
		if len(args) != 3 && len(args) != 4 {
			ts.Fatalf("usage: node start NAME HOME [INTERVAL]")
		}
		interval := "300ms"
		if len(args) == 4 {
			interval = args[3]
		}
		bin, err := exec.LookPath("pursuance")
		ts.Check(err)
		cmd := exec.Command(bin, "--home", ts.MkAbs(args[2]), "up", "--relay-listen", "127.0.0.1:0", "--interval", interval)
		cmd.Env = append(os.Environ(), "PURSUANCE_PASSPHRASE="+ts.Getenv("PURSUANCE_PASSPHRASE"))
		stderr, err := cmd.StderrPipe()
		ts.Check(err)
		ts.Check(cmd.Start())
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				cmd.Process.Kill()
				ts.Fatalf("node %s did not start: %v", name, err)
			}
			if _, url, ok := strings.Cut(line, "Relay for other members' nodes (not a web page): "); ok {
				ts.Setenv(name, strings.TrimSpace(url))
				break
			}
		}
		go io.Copy(io.Discard, r)
		// The node is up once its node file names it (commands find the
		// node's relay there), which it writes after the relay's line.
		nodeFile := filepath.Join(ts.MkAbs(args[2]), "node.json")
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if b, err := os.ReadFile(nodeFile); err == nil && strings.Contains(string(b), ts.Getenv(name)) {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				ts.Fatalf("node %s did not write %s naming %s", name, nodeFile, ts.Getenv(name))
			}
		}
		scriptRelays.Store(key, cmd)
		ts.Defer(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	case "stop":
		v, ok := scriptRelays.Load(key)
		if !ok {
			ts.Fatalf("no node %s", name)
		}
		cmd := v.(*exec.Cmd)
		ts.Check(cmd.Process.Signal(syscall.SIGTERM))
		if err := cmd.Wait(); err != nil {
			ts.Fatalf("node %s stopped with %v", name, err)
		}
	default:
		ts.Fatalf("usage: node start NAME HOME [INTERVAL] | node stop NAME")
	}
}

// relays started by scripts, by script and name.
var scriptRelays sync.Map // map[string]*exec.Cmd, key: fmt.Sprint(ts) + name

// relay start NAME | kill NAME | restart NAME | stop NAME: runs `pursuance
// relay` as a real process on loopback (data in $WORK/NAME), setting $NAME
// to its URL; kill sends SIGKILL, restart starts it again on the same data
// and port, stop sends SIGTERM and waits for exit status 0.
func relayCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: relay start|kill|restart|stop NAME [--retention] [--directory] [--tls]")
	}
	op, name := args[0], args[1]
	var extra []string
	for _, a := range args[2:] {
		switch a {
		case "--retention":
			// Keep only the newest 3 KiB of each topic, pruned every 100 ms.
			extra = append(extra, "--retention-bytes", "3072", "--prune-every", "100ms")
		case "--directory":
			// List public profiles (docs/directory.md).
			extra = append(extra, "--directory")
		case "--tls":
			// HTTPS with the certificate `tlsca` made in $WORK/tls.
			dir := filepath.Join(ts.Getenv("WORK"), "tls")
			extra = append(extra, "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
		default:
			ts.Fatalf("relay: unknown option %s", a)
		}
	}
	key := fmt.Sprintf("%p/%s", ts, name)
	switch op {
	case "start", "restart":
		listen := "127.0.0.1:0"
		if op == "restart" {
			listen = strings.TrimPrefix(strings.TrimPrefix(ts.Getenv(name), "http://"), "https://")
		}
		bin, err := exec.LookPath("pursuance")
		ts.Check(err)
		cmd := exec.Command(bin, append([]string{"relay", "--listen", listen, "--data", filepath.Join(ts.Getenv("WORK"), name), "--log-level", "warn"}, extra...)...)
		stderr, err := cmd.StderrPipe()
		ts.Check(err)
		ts.Check(cmd.Start())
		r := bufio.NewReader(stderr)
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "http://") && !strings.HasPrefix(line, "https://") {
			cmd.Process.Kill()
			ts.Fatalf("relay %s did not start: %q %v", name, line, err)
		}
		go io.Copy(io.Discard, r)
		scriptRelays.Store(key, cmd)
		ts.Setenv(name, strings.TrimSpace(line))
		ts.Defer(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	case "kill", "stop":
		v, ok := scriptRelays.Load(key)
		if !ok {
			ts.Fatalf("no relay %s", name)
		}
		cmd := v.(*exec.Cmd)
		sig := syscall.SIGKILL
		if op == "stop" {
			sig = syscall.SIGTERM
		}
		ts.Check(cmd.Process.Signal(sig))
		err := cmd.Wait()
		if op == "stop" && err != nil {
			ts.Fatalf("relay %s stopped with %v", name, err)
		}
	default:
		ts.Fatalf("usage: relay start|kill|restart|stop NAME")
	}
}

// tlsca: a certificate authority made for the script, and a certificate
// it signs for 127.0.0.1 and localhost: $WORK/tls/ca.pem, cert.pem and
// key.pem (for `relay start NAME --tls`).
func tlsCA(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: tlsca")
	}
	dir := filepath.Join(ts.Getenv("WORK"), "tls")
	ts.Check(os.MkdirAll(dir, 0o700))
	ca, err := testca.New()
	ts.Check(err)
	ts.Check(ca.WriteFiles(dir, "127.0.0.1", "localhost"))
}

// server html|silent NAME: a server on loopback that is not a relay,
// setting $NAME to its URL: html answers every request with a web
// server's 404 page; silent accepts connections and never answers.
// server count NAME N checks how many connections it accepted.
func serverCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: server html|silent NAME | server count NAME N")
	}
	op, name := args[0], args[1]
	key := fmt.Sprintf("%p/server/%s", ts, name)
	switch op {
	case "html", "silent":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		var accepted atomic.Int64
		scriptServers.Store(key, &accepted)
		ts.Defer(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				ts.Defer(func() { c.Close() })
				if op == "html" {
					go func() {
						defer c.Close()
						bufio.NewReader(c).ReadString('\n')
						page := "<!DOCTYPE html><html><head><title>Not Found</title></head><body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>"
						fmt.Fprintf(c, "HTTP/1.1 404 Not Found\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(page), page)
					}()
				}
			}
		}()
		ts.Setenv(name, "http://"+ln.Addr().String())
	case "count":
		if len(args) != 3 {
			ts.Fatalf("usage: server count NAME N")
		}
		v, ok := scriptServers.Load(key)
		if !ok {
			ts.Fatalf("no server %s", name)
		}
		if got := fmt.Sprint(v.(*atomic.Int64).Load()); got != args[2] {
			ts.Fatalf("server %s accepted %s connections, want %s", name, got, args[2])
		}
	default:
		ts.Fatalf("usage: server html|silent NAME | server count NAME N")
	}
}

// servers started by scripts, by script and name.
var scriptServers sync.Map // map[string]*atomic.Int64
