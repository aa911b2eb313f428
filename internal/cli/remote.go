package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pursuance/pursuance/internal/nodesock"
)

// The command asks this home's running node (`pursuance up`), else its
// agent (`pursuance agent`), to run it (docs/node-socket.md): the node
// has the keystore unlocked and the state in memory, so the command costs
// neither the passphrase's key derivation nor a fold of the log. The node
// runs the very command line given, in its own process, with the same
// code (Run) a direct run would; what it writes comes back as it is
// written, with the exit status. Without a node, or for a command not
// listed in forwarded, the command runs here as it always did.

// directVar, set to anything, makes every command run in its own process
// even while a node runs (for comparisons, and a way out).
const directVar = "PURSUANCE_DIRECT"

// helloTimeout is how long a client waits for the node's hello before it
// runs the command itself: a node that accepted the connection but does
// not answer (stopped with SIGSTOP, wedged) costs this much once. Nothing
// has been sent by then, so the command never runs twice.
const helloTimeout = 5 * time.Second

// forwarded are the commands the node runs for a client: those that read
// nothing of the client's but its command line and the variables in
// forwardedVars. Commands that read a file named on the command line
// (create --charter, charter amend, export, import, join --log, task
// attach, task comment --attach), write one (task fetch), ask for a
// passphrase (id new, id rotate, device request/accept), or run for long
// (up, ui, relay, sync, agent) run in the client's process.
var forwarded = map[string]bool{
	"list":          true,
	"members":       true,
	"charter show":  true,
	"log":           true,
	"keys":          true,
	"proposals":     true,
	"approve":       true,
	"links":         true,
	"link end":      true,
	"handoff":       true,
	"requests":      true,
	"answers":       true,
	"device list":   true,
	"invite":        true,
	"remove":        true,
	"rotate":        true,
	"role assign":   true,
	"role revoke":   true,
	"relays":        true,
	"relays add":    true,
	"relays remove": true,
	"task list":     true,
	"task show":     true,
	"task search":   true,
	"task report":   true,
	"task add":      true,
	"task status":   true,
	"task assign":   true,
	"task unassign": true,
	"task comment":  true,
	"task edit":     true,
	"task archive":  true,
}

// forwardedVars are the environment variables a forwarded command may
// read, sent with the request. The passphrase is not among them: the node
// needs none. TestForwardedVarsCoverCommands checks that every
// PURSUANCE_ variable the package names is here or in localVars.
var forwardedVars = []string{clockOffsetVar, torBinaryEnv, torrcEnv}

// localVars are the PURSUANCE_ variables deliberately not sent: the
// home and the passphrase (the node has both), the switch to run here,
// and variables only local commands read.
var localVars = []string{"PURSUANCE_HOME", "PURSUANCE_PASSPHRASE", directVar, stopAfterKeystoreVar, killAfterEnv}

// forwardable reports whether the node may run the command line args,
// and returns the Env it parsed into: a listed command that parses (a
// usage error is reported by a direct run), not asking for help, not
// naming a tor of its own.
func forwardable(args []string, getenv func(string) string) (*Env, bool) {
	probe := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: getenv}
	root := NewRoot(probe)
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		return nil, false
	}
	if !forwarded[strings.TrimPrefix(cmd.CommandPath(), root.Name()+" ")] {
		return nil, false
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return nil, false
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		return nil, false
	}
	// --attach (task comment) reads files named on the command line.
	for _, local := range []string{"help", "tor-control", "attach"} {
		if f := cmd.Flags().Lookup(local); f != nil && f.Changed {
			return nil, false
		}
	}
	return probe, true
}

// viaNode runs args in this home's node or agent when one serves and the
// command is forwarded, and returns the exit status; false when the
// command is to run here.
func (e *Env) viaNode(args []string) (int, bool) {
	if e.served || e.Getenv(directVar) != "" {
		return 0, false
	}
	probe, ok := forwardable(args, e.Getenv)
	if !ok {
		return 0, false
	}
	home, err := probe.Home()
	if err != nil {
		return 0, false
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	for _, name := range []string{nodesock.Node, nodesock.Agent} {
		if code, ok := e.askServer(ctx, home, name, args); ok {
			return code, true
		}
	}
	return 0, false
}

// askServer sends args to the server of the socket name; false when none
// answers, or it refuses before running anything.
func (e *Env) askServer(ctx context.Context, home, name string, args []string) (int, bool) {
	c, token, err := nodesock.Dial(ctx, home, name)
	if err != nil {
		return 0, false
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.SetReadDeadline(time.Now().Add(helloTimeout))
	kind, data, err := nodesock.ReadFrame(c)
	var hello nodesock.Hello
	if err != nil || kind != nodesock.KindHello || json.Unmarshal(data, &hello) != nil || hello.Version != nodesock.Version {
		return 0, false
	}
	c.SetReadDeadline(time.Time{})
	req := nodesock.Request{Version: nodesock.Version, Args: args, Token: token, Env: map[string]string{}}
	for _, k := range forwardedVars {
		if v := e.Getenv(k); v != "" {
			req.Env[k] = v
		}
	}
	if err := nodesock.WriteJSON(c, nodesock.KindRequest, req); err != nil {
		return 0, false
	}
	// From here on the node may have run the command: it is never run
	// again here, whatever happens.
	started := false
	for {
		kind, data, err := nodesock.ReadFrame(c)
		if err != nil {
			fmt.Fprintf(e.Stderr, "pursuance: the node stopped answering while it ran the command (%s); check with `pursuance log P` whether it took effect\n", oneLine(err.Error()))
			return 1, true
		}
		switch kind {
		case nodesock.KindRefused:
			if !started {
				return 0, false
			}
		case nodesock.KindStdout:
			started = true
			e.Stdout.Write(data)
		case nodesock.KindStderr:
			started = true
			e.Stderr.Write(data)
		case nodesock.KindExit:
			var x nodesock.Exit
			if json.Unmarshal(data, &x) != nil {
				return 1, true
			}
			return x.Code, true
		}
	}
}
