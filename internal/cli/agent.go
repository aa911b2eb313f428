package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/internal/nodesock"
)

// Bounds of the agent's lifetime.
const (
	defaultAgentTimeout = 15 * time.Minute
	maxAgentTimeout     = 24 * time.Hour
	agentLockName       = "agent.lock"
)

func newAgentCmd(e *Env) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Keep the keystore unlocked for a while, so that commands need no passphrase (like ssh-agent)",
		Long: `Unlock this home's keystore once and keep it unlocked for --timeout
(15 minutes unless told), as ssh-agent keeps keys: meanwhile the commands
that read or change a pursuance run in the agent (through a socket of the
home that only your account opens) and ask for no passphrase. When the time
is up, or on Ctrl-C, the agent forgets the keys and stops: commands ask for
the passphrase again.

Nothing is kept unlocked unless you run it. While ` + "`pursuance up`" + ` runs, commands
go to the node instead, which holds the keys for as long as it runs; the
agent is for when no node runs. It runs in the foreground: put it in the
background with your shell (` + "`pursuance agent &`" + `).`,
		Example: `  pursuance agent --timeout 30m &
  pursuance task list Desk`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 || timeout > maxAgentTimeout {
				return usageErrorf("--timeout: give a duration above 0 and at most %s, such as 15m", maxAgentTimeout)
			}
			home, err := e.Home()
			if err != nil {
				return err
			}
			pub, err := keystore.ReadPublic(home)
			if err != nil {
				return explain(err, home)
			}
			lock, err := tryLock(filepath.Join(home, agentLockName), true)
			if errors.Is(err, errLocked) {
				return fmt.Errorf("an agent already runs on this home (%s): stop it (Ctrl-C where it runs) to start another", home)
			}
			if err != nil {
				return fmt.Errorf("the agent lock in %s: %w", home, err)
			}
			defer lock.Close()
			pass, err := e.Passphrase(false)
			if err != nil {
				return err
			}
			id, err := keystore.Open(home, pass)
			if err != nil {
				return explain(err, home)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "agent")
			srv, err := e.serveCommands(ctx, home, nodesock.Agent, id, log)
			if err != nil {
				return err
			}
			until := time.Now().Add(timeout)
			fmt.Fprintf(e.Stderr, "Agent of %s: the keystore stays unlocked until %s (%s); commands need no passphrase meanwhile. Ctrl-C locks it now.\n", pub.Name, until.Format("15:04:05"), timeout)
			t := time.NewTimer(timeout)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			stop()
			srv.shutdown()
			fmt.Fprintln(e.Stderr, "Agent stopped: the keystore is locked; commands ask for the passphrase again.")
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", defaultAgentTimeout, "how long to keep the keystore unlocked (at most 24h)")
	return cmd
}
