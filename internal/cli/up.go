package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/relay"
)

func newUpCmd(e *Env) *cobra.Command {
	var (
		listen, relayListen string
		interval            time.Duration
		once                bool
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start this member's node: sync in the background and serve peers (web UI not yet)",
		Long: `Start this member's node: it syncs every pursuance on this home with its
relays in the background, and runs an embedded relay that holds everything
this member has, so other members can resync from it as a peer
(` + "`pursuance sync --peer URL`" + `) when the relays have pruned or lost events. It
prints the embedded relay's URL on stderr when ready, and runs until Ctrl-C.
Other commands keep working while it runs (it takes the home only during
each round).

Not yet: the web UI on --listen (issue 6). Without an identity, up says
how to create one and exits.`,
		Example: `  pursuance up
  pursuance --home /tmp/bob up --relay-listen 127.0.0.1:8766 --interval 30s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := e.Home()
			if err != nil {
				return err
			}
			pub, err := keystore.ReadPublic(home)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				fmt.Fprintln(e.Stderr, "pursuance: no identity on this home yet: the node needs one.")
				fmt.Fprintf(e.Stderr, "Create it with `pursuance id new --name NAME` (home: %s), then run `pursuance up` again.\n", home)
				return nil
			case err != nil:
				return err
			}
			// Check the passphrase once, up front.
			n, err := e.openNode(cmd.Context(), true)
			if err != nil {
				return err
			}
			n.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			st, err := relay.OpenSQLite(ctx, filepath.Join(home, "relay", "relay.db"))
			if err != nil {
				return err
			}
			defer st.Close()
			ln, err := net.Listen("tcp", relayListen)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			srv := relay.NewServer(st, relay.Config{Logger: logger})
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ctx, ln) }()
			peer := "http://" + ln.Addr().String()
			round := func() {
				if err := e.upRound(ctx, peer); err != nil && ctx.Err() == nil {
					fmt.Fprintf(e.Stderr, "sync: %s\n", oneLine(err.Error()))
				}
			}
			round() // the embedded relay holds everything before peers are told of it
			fmt.Fprintln(e.Stderr, peer)
			fmt.Fprintf(e.Stderr, "Node of %s is up: syncing every %s; peers may sync from %s. The web UI is not there yet (%s). Ctrl-C stops.\n", pub.Name, interval, peer, listen)
			if once {
				stop()
				return <-served
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					err := <-served
					fmt.Fprintln(e.Stderr, "Node stopped.")
					return err
				case <-t.C:
					round()
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:0", "`ADDR` for the web UI (not yet used)")
	f.StringVar(&relayListen, "relay-listen", "127.0.0.1:0", "`ADDR` of the embedded relay that serves peers")
	f.DurationVar(&interval, "interval", 30*time.Second, "how often to sync")
	f.BoolVar(&once, "once", false, "sync once, then stop")
	return cmd
}

// upRound syncs every pursuance on the home with its relays and the
// embedded one, holding the home only meanwhile.
func (e *Env) upRound(ctx context.Context, peer string) error {
	n, err := e.openNode(ctx, true)
	if err != nil {
		return err
	}
	defer n.Close()
	ps, err := n.Pursuances(ctx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		res, err := n.Sync(ctx, p.ID, app.SyncOptions{Relays: []string{peer}})
		if err != nil {
			fmt.Fprintf(e.Stderr, "sync %s: %s\n", p.Name, oneLine(err.Error()))
			continue
		}
		if res.Received > 0 || len(res.Missing) > 0 || relayErrorCount(res) > 0 {
			fmt.Fprintf(e.Stderr, "%s: ", p.Name)
			e.syncReport(res, nil)
		}
	}
	return nil
}
