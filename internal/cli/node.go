package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/state"
)

// openNode opens this home's node. It asks for the passphrase (unless a
// long-running command unlocked the identity already): everything the home
// keeps is encrypted under keys derived from the identity
// (docs/keystore.md), so reading needs it as much as signing does.
func (e *Env) openNode(ctx context.Context) (*app.Node, error) {
	home, err := e.Home()
	if err != nil {
		return nil, err
	}
	id := e.unlocked
	if id == nil {
		if id, _, err = e.unlock(home); err != nil {
			return nil, err
		}
	} else if _, err := keystore.ReadPublic(home); err != nil {
		return nil, explain(err, home)
	}
	now, err := e.clock()
	if err != nil {
		return nil, err
	}
	n, err := app.Open(ctx, home, id, app.Options{Rand: e.Rand, NodeRelay: e.nodeInvite(), RelayTimeout: e.relayTimeout, Logger: e.logger(), Dial: e.dialFunc(), Now: now, Folds: e.folds})
	if err != nil || !n.RotationPending() {
		return n, err
	}
	// `id rotate` stopped between writing the new signing key and
	// publishing its replacement (a crash, a lost relay): finish it
	// before anything is signed with the new key.
	if _, err := e.finishRotation(ctx, home, n); err != nil {
		fmt.Fprintf(e.Stderr, "Your signing key rotation is not finished yet (the next command tries again): %v\n", err)
	}
	return n, nil
}

// finishRotation publishes the pending replacement of the home's signing
// key (app.Node.FinishRotation), drops the previous key from the keystore
// and unlocks n with the settled identity, which it returns with what
// healing left by pursuance.
func (e *Env) finishRotation(ctx context.Context, home string, n *app.Node) (map[event.ID][]string, error) {
	_, left, err := n.FinishRotation(ctx)
	if err != nil {
		return left, err
	}
	pass := e.rotatePass
	if pass == nil {
		if pass, err = e.Passphrase(false); err != nil {
			return left, err
		}
	}
	id, err := keystore.Settle(home, pass, e.Rand)
	if err != nil {
		return left, explain(err, home)
	}
	if err := n.Unlock(id); err != nil {
		return left, err
	}
	e.rotated = left
	if e.unlocked != nil {
		e.unlocked = id
	}
	return left, nil
}

// nodeInvite is the URL of this home's node that invite codes name
// (app.Options.NodeRelay): its onion service when it runs with Tor, else
// its relay's loopback URL.
func (e *Env) nodeInvite() string {
	if e.nodeOnion != "" {
		return e.nodeOnion
	}
	return e.nodeRelay
}

// withState runs fn with an open node and the state of the pursuance named
// by ref, closing the node afterwards. With fetch, and relays to ask, it
// reads what is new first and sends what fn wrote afterwards; commands that
// only show something pass false.
func (e *Env) withState(cmd *cobra.Command, ref string, fetch bool, fn func(n *app.Node, s *state.State) error) error {
	ctx := cmd.Context()
	online := fetch && !e.offline
	if online && e.nodeRelay == "" {
		// While this home's node runs, its relay is one more to sync with
		// (it holds all the node has, and the node follows it live), and
		// invites name it when the pursuance has no relay of its own.
		if home, err := e.Home(); err == nil {
			if rf, ok := runningNode(home); ok {
				e.nodeRelay = rf.Relay
				if rf.Onion != "" {
					e.nodeOnion = "http://" + rf.Onion
				}
			}
		}
	}
	var extra []string
	if e.nodeRelay != "" {
		extra = []string{e.nodeRelay}
	}
	n, err := e.openNode(ctx)
	if err != nil {
		return err
	}
	defer n.Close()
	p, err := n.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	// With the keys at hand and relays to ask, read what is new first, and
	// send what this command wrote afterwards (a quick sync each way; a
	// full one is `pursuance sync`).
	if online {
		if urls, _ := n.RelayURLs(ctx, p); len(urls)+len(extra) == 0 {
			online = false
		}
	}
	if online {
		if res, err := n.Sync(ctx, p, app.SyncOptions{PullOnly: true, Quick: true, Relays: extra}); err == nil && res.Received > 0 {
			fmt.Fprintf(e.Stderr, "Received %d new events from the relays.\n", res.Received)
		}
	}
	s, err := n.State(ctx, p)
	if err != nil {
		return err
	}
	heads := func() string {
		hs, _ := n.Store().Heads(ctx, p)
		return fmt.Sprint(hs)
	}
	before := heads()
	if err := fn(n, s); err != nil {
		return err
	}
	if online && heads() != before {
		res, err := n.Sync(ctx, p, app.SyncOptions{Quick: true, Relays: extra})
		if err != nil || relayErrorCount(res) > 0 {
			fmt.Fprintln(e.Stderr, "Not every relay took it yet; `pursuance sync` sends it later.")
		}
	}
	return nil
}

// relayErrorCount counts the relays a sync failed with.
func relayErrorCount(res app.SyncResult) int {
	n := 0
	for _, r := range res.Relays {
		if r.Err != nil {
			n++
		}
	}
	return n
}

// act performs op in the pursuance named by ref and reports the outcome on
// stderr: done, proposed, or (with --unchecked) signed though the rules
// reject it.
func (e *Env) act(cmd *cobra.Command, ref string, build func(s *state.State, n *app.Node) (state.Op, error)) (app.Result, error) {
	var res app.Result
	err := e.withState(cmd, ref, true, func(n *app.Node, s *state.State) error {
		if _, ok := s.Member(n.Me().ID); !ok && !e.unchecked {
			// Before anything is looked up: a former member sees no task.
			return fmt.Errorf("%w: you are not a member of %s", app.ErrNotPermitted, s.Name())
		}
		op, err := build(s, n)
		if err != nil {
			return err
		}
		res, err = n.Act(cmd.Context(), s.Pursuance(), op, app.DoOptions{Unchecked: e.unchecked})
		if err != nil {
			return err
		}
		e.report(res)
		return nil
	})
	return res, err
}

// report tells the user on stderr what an action came to.
func (e *Env) report(res app.Result) {
	switch {
	case !res.Accepted:
		fmt.Fprintf(e.Stderr, "Signed and stored unchecked; the rules reject it: %s\n", res.Reason)
	case res.Proposed:
		fmt.Fprintf(e.Stderr, "The charter puts this under a quorum of %d approvals: proposed as %s.\nOthers approve it with `pursuance approve P %s`.\n",
			res.Needed, res.Event.ID().Short(), res.Event.ID().Short())
	}
}

// joinRoles renders a role list for humans.
func joinRoles(roles []string) string {
	if len(roles) == 0 {
		return "(no role)"
	}
	return strings.Join(roles, ", ")
}

// reportStale tells the user which keys an action should have re-keyed but
// could not: a holder must rotate them.
func (e *Env) reportStale(stale []string) {
	for _, st := range stale {
		fmt.Fprintf(e.Stderr, "Not re-keyed (a holder must rotate it): %s\n", st)
	}
}
