package cli

import (
	"bytes"
	"context"
	"crypto/subtle"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/internal/nodesock"
)

// Limits of the node's socket server.
const (
	// maxServedConns bounds the connections the node holds at once; more
	// wait in the kernel's backlog.
	maxServedConns = 16
	// requestTimeout is how long the node waits for a request once it
	// has said hello.
	requestTimeout = 10 * time.Second
)

// commandServer runs, for clients on the node's socket, the commands of
// forwarded with the node's unlocked identity (remote.go, and
// docs/node-socket.md).
type commandServer struct {
	home  string
	id    func() *identity.Identity // the identity unlocked by up or agent
	node  *Env                      // the serving process's Env: relay, onion, timeouts
	token string                    // the listener's (Windows)
	log   *slog.Logger
	// run serializes the commands: one at a time, as processes taking the
	// home's lock would be.
	run sync.Mutex
	// folds are the states the commands folded, kept for the next: the
	// serving Env's own when it has one (its rounds and requests then
	// share them), else the commands' alone.
	folds *app.FoldCache
	// served counts the commands run, for tests.
	served int
	done   chan struct{} // closed when serve has returned
	ln     net.Listener
}

// shutdown stops the server listening and returns once every command
// it was running has ended (those end early when the server's ctx has).
func (s *commandServer) shutdown() {
	s.ln.Close()
	<-s.done
}

// serveCommands listens on the socket name of home and serves commands
// until ctx ends. The caller holds the lock that makes it the socket's
// only server (the node lock, or the agent's).
func (e *Env) serveCommands(ctx context.Context, home, name string, id *identity.Identity, log *slog.Logger) (*commandServer, error) {
	ln, err := nodesock.Listen(home, name)
	if err != nil {
		return nil, err
	}
	s := &commandServer{home: home, id: func() *identity.Identity { return id }, node: e, token: ln.Token, log: log, done: make(chan struct{}), folds: e.folds, ln: ln}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	// s.folds nil: the Nodes it opens share the states this process
	// keeps for the home, with up's web UI and rounds (docs/fold.md).
	go s.serve(ctx, ln)
	if e.onServe != nil {
		e.onServe(s)
	}
	return s, nil
}

func (s *commandServer) serve(ctx context.Context, ln net.Listener) {
	defer close(s.done)
	sem := make(chan struct{}, maxServedConns)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			c.Close()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			defer c.Close()
			s.handle(ctx, c)
		})
	}
}

// handle answers one connection: hello, the request, the command's
// output and exit status.
func (s *commandServer) handle(ctx context.Context, c net.Conn) {
	if err := nodesock.WriteJSON(c, nodesock.KindHello, nodesock.Hello{Version: nodesock.Version}); err != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(requestTimeout))
	req, err := nodesock.ReadRequest(c)
	if err != nil {
		s.log.Warn("the node's socket read a bad request", "err", oneLine(err.Error()))
		return
	}
	c.SetReadDeadline(time.Time{})
	if subtle.ConstantTimeCompare([]byte(req.Token), []byte(s.token)) != 1 {
		s.log.Warn("the node's socket refused a request without the token")
		return
	}
	if !s.allowed(req) || !s.current() {
		nodesock.WriteFrame(c, nodesock.KindRefused, nil)
		return
	}
	// The command ends when the client goes: it sends nothing after its
	// request, so a read returns only when the connection closes.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, c)
		cancel()
	}()
	s.run.Lock()
	defer s.run.Unlock()
	if cctx.Err() != nil {
		return
	}
	stdout, stderr := nodesock.NewStreams(c)
	fe := s.env(cctx, req, stdout, stderr)
	code := Run(req.Args, fe)
	s.served++
	stdout.WriteExit(code)
}

// current reports whether the identity the server holds is still the
// home's: after `id rotate` (run in its own process) it is not, and the
// commands run in their own processes, with the passphrase, until the
// node is started again.
func (s *commandServer) current() bool {
	pub, err := keystore.ReadPublic(s.home)
	if err != nil {
		return false
	}
	mine := s.id().Public()
	return pub.ID == mine.ID && bytes.Equal(pub.KEM.Bytes(), mine.KEM.Bytes())
}

// allowed reports whether req is a command the node runs (the client
// checked too, but the server decides).
func (s *commandServer) allowed(req *nodesock.Request) bool {
	for k := range req.Env {
		if !strings.HasPrefix(k, "PURSUANCE_") || k == "PURSUANCE_PASSPHRASE" {
			return false
		}
	}
	_, ok := forwardable(req.Args, func(k string) string { return req.Env[k] })
	return ok
}

// env is the Env a served command runs in: the client's command line and
// variables, the node's home, identity and relay, its output to the
// client.
func (s *commandServer) env(ctx context.Context, req *nodesock.Request, stdout, stderr io.Writer) *Env {
	return &Env{
		Stdin:        strings.NewReader(""),
		Stdout:       stdout,
		Stderr:       stderr,
		Getenv:       func(k string) string { return req.Env[k] },
		Rand:         s.node.Rand,
		Context:      ctx,
		unlocked:     s.id(),
		nodeRelay:    s.node.nodeRelay,
		nodeOnion:    s.node.nodeOnion,
		relayTimeout: s.node.relayTimeout,
		served:       true,
		servedHome:   s.home,
		folds:        s.folds,
	}
}
