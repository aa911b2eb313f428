// Package natstest runs NATS JetStream servers for tests of the relay's
// NATS store: embedded in the test process, or as real child processes
// (the test binary itself, running an embedded server) that a test can
// kill with SIGKILL and start again. Every server listens on 127.0.0.1
// only and keeps its JetStream store in a directory the caller gives
// (a t.TempDir()).
package natstest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options describe one server.
type Options struct {
	Name        string `json:"name"`
	Dir         string `json:"dir"`          // JetStream store
	Port        int    `json:"port"`         // clients; -1: any
	Cluster     string `json:"cluster"`      // "": a single server
	ClusterPort int    `json:"cluster_port"` // routes
	Routes      []int  `json:"routes"`       // the other servers' cluster ports
}

// readyTimeout bounds a server's start.
const readyTimeout = 20 * time.Second

// maxMemory bounds a test server's JetStream memory (the relay's streams
// are on disk).
const maxMemory = 64 << 20

// MaxPayload is the servers' max_payload: above the relay's largest
// envelope (1 MiB) and its headers, as the relay's NATS store requires.
const MaxPayload = 2 << 20

// New makes an embedded server (not started).
func New(o Options) (*server.Server, error) {
	opts := &server.Options{
		ServerName:         o.Name,
		Host:               "127.0.0.1",
		Port:               o.Port,
		JetStream:          true,
		StoreDir:           o.Dir,
		JetStreamMaxMemory: maxMemory,
		MaxPayload:         MaxPayload,
		NoSigs:             true,
		NoLog:              true,
	}
	if o.Cluster != "" {
		opts.Cluster = server.ClusterOpts{Name: o.Cluster, Host: "127.0.0.1", Port: o.ClusterPort}
		for _, p := range o.Routes {
			opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
		}
	}
	return server.NewServer(opts)
}

// Start runs one embedded server for the test (stopped when it ends) and
// returns its client URL.
func Start(t testing.TB) string {
	t.Helper()
	s, err := New(Options{Name: "single", Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(readyTimeout) {
		t.Fatal("the embedded NATS server did not start")
	}
	return s.ClientURL()
}

// FreePorts returns n loopback ports free a moment ago (a cluster's
// servers must know each other's ports before they start).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// childEnv names the options of a server the test binary runs as a child.
const childEnv = "PURSUANCE_NATSTEST_SERVER"

// Main runs a server and never returns when the test binary was started
// as one (by a Proc); it returns at once otherwise. Call it first in the
// TestMain of a package that starts Procs.
func Main() {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	var o Options
	if err := json.Unmarshal([]byte(spec), &o); err != nil {
		fmt.Fprintln(os.Stderr, "natstest:", err)
		os.Exit(2)
	}
	s, err := New(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natstest:", err)
		os.Exit(2)
	}
	s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		fmt.Fprintln(os.Stderr, "natstest: not ready")
		os.Exit(2)
	}
	fmt.Printf("ready %s\n", s.ClientURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Shutdown()
	os.Exit(0)
}

// Proc is a server run as a child process of the test binary (or
// another child, StartChild).
type Proc struct {
	Opts Options
	URL  string // what the child printed after "ready "
	env  string // NAME=VALUE that tells the child what to run
	t    testing.TB
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// StartChild runs the test binary as a child process with env
// (NAME=VALUE) set, for a TestMain that runs something else than the
// tests when it sees it and prints "ready URL" once it serves. It waits
// for that line; the child is killed when the test ends.
func StartChild(t testing.TB, env string) *Proc {
	t.Helper()
	p := &Proc{env: env, t: t}
	p.Restart()
	t.Cleanup(p.Kill)
	return p
}

// StartProc starts a server in a child process (the test binary, whose
// TestMain calls Main) and waits until it takes connections. It is
// stopped when the test ends.
func StartProc(t testing.TB, o Options) *Proc {
	t.Helper()
	p := &Proc{Opts: o, t: t}
	p.Restart()
	t.Cleanup(p.Kill)
	return p
}

// Restart starts the server again (after Kill), with the same store and
// ports.
func (p *Proc) Restart() {
	p.t.Helper()
	if err := p.restart(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *Proc) restart() error {
	env := p.env
	if env == "" {
		spec, _ := json.Marshal(p.Opts)
		env = childEnv + "=" + string(spec)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- u
			}
		}
	}()
	select {
	case u := <-ready:
		p.mu.Lock()
		p.cmd, p.URL = cmd, u
		p.mu.Unlock()
		return nil
	case <-time.After(readyTimeout):
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("child %s did not start", env)
	}
}

// WaitJetStream waits until the servers answer JetStream requests: a
// cluster has elected its meta leader.
func WaitJetStream(t testing.TB, servers string) {
	t.Helper()
	nc, err := nats.Connect(servers)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the NATS cluster's JetStream is not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL.
func (p *Proc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
		p.cmd = nil
	}
}

// Cluster starts n servers as child processes forming one JetStream
// cluster, and returns them and the URL list a store is given.
func Cluster(t testing.TB, n int) ([]*Proc, string) {
	t.Helper()
	ports := FreePorts(t, 2*n)
	var procs []*Proc
	var urls []string
	for i := range n {
		o := Options{Name: fmt.Sprintf("n%d", i), Dir: t.TempDir(), Port: ports[2*i], Cluster: "pursuance-test", ClusterPort: ports[2*i+1]}
		for j := range n {
			if j != i {
				o.Routes = append(o.Routes, ports[2*j+1])
			}
		}
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
		procs = append(procs, &Proc{Opts: o, t: t})
	}
	// Start them together: a server waits for its routes' peers to elect
	// JetStream's meta leader.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.restart()
		}()
	}
	wg.Wait()
	for _, p := range procs {
		t.Cleanup(p.Kill)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	servers := strings.Join(urls, ",")
	WaitJetStream(t, servers)
	return procs, servers
}
