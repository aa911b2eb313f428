package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

func newRelaysCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "relays P",
		Short: "The pursuance's relay list",
		Long: `List the relays the pursuance publishes to. ` + "`relays add`" + ` and ` + "`relays remove`" + `
change the list (a signed event; the charter says who may: manage-relays).
Moving servers: add the new relay, sync, remove the old one.`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], false, func(_ *app.Node, s *state.State) error {
				list := s.Relays()
				if e.json {
					out := []struct {
						URL string `json:"url"`
					}{}
					for _, u := range list {
						out = append(out, struct {
							URL string `json:"url"`
						}{u})
					}
					return e.printJSON(out)
				}
				if len(list) == 0 {
					fmt.Fprintln(e.Stderr, "No relays: add one with `pursuance relays add P URL`.")
				}
				for _, u := range list {
					fmt.Fprintln(e.Stdout, u)
				}
				return nil
			})
		},
	}
	change := func(use, short string, add bool) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  exactArgs(2, "P URL"),
			RunE: func(cmd *cobra.Command, args []string) error {
				u := strings.TrimRight(args[1], "/")
				if err := state.CheckRelayURL(u); err != nil {
					return usageErrorf("%v", err)
				}
				if add && !e.offline {
					// Refuse what is not a relay before the list names it;
					// one that is down now may be added (it is told later).
					if err := app.ProbeRelay(cmd.Context(), u, e.dialFunc()); errors.Is(err, app.ErrNotRelay) {
						return fmt.Errorf("%w; check the address (a relay answers GET %s/v1)", err, u)
					} else if err != nil {
						fmt.Fprintf(e.Stderr, "warning: %v; adding it anyway (members send it what it lacks once it answers)\n", err)
					}
				}
				return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
					var res app.Result
					var err error
					if add {
						res, err = n.SetRelays(cmd.Context(), s.Pursuance(), []string{u}, nil, app.DoOptions{Unchecked: e.unchecked})
					} else {
						res, err = n.SetRelays(cmd.Context(), s.Pursuance(), nil, []string{u}, app.DoOptions{Unchecked: e.unchecked})
					}
					if err != nil {
						return err
					}
					e.report(res)
					if e.offline {
						fmt.Fprintln(e.Stderr, "Not sent (--offline): `pursuance sync` tells the relays.")
						return nil
					}
					// Tell the relays (the new one included) at once.
					e.syncReport(n.Sync(cmd.Context(), s.Pursuance(), app.SyncOptions{Progress: e.progress(), Relays: []string{u}}))
					return nil
				})
			},
		}
	}
	cmd.AddCommand(change("add P URL", "Add a relay to the list", true), change("remove P URL", "Remove a relay from the list", false))
	return cmd
}

func newSyncCmd(e *Env) *cobra.Command {
	var peers []string
	cmd := &cobra.Command{
		Use:   "sync [P]",
		Short: "Exchange events with the relays (and peers)",
		Long: `Read what is new from every relay of the pursuance (every pursuance on this
home without P), verify it, and send each relay what it lacks. Progress on
stderr. A relay that is down is retried with backoff and does not stop the
others. --peer URL also syncs with a member's node or any other relay.
Without P, a home with linked devices also takes up the pursuances your
other devices joined or founded, and tells them of its own (the device
mailbox, docs/devices.md).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := e.openNode(cmd.Context())
			if err != nil {
				return err
			}
			defer n.Close()
			var ps []event.ID
			if len(args) == 1 {
				p, err := n.Resolve(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				ps = append(ps, p)
			} else {
				all, err := n.Pursuances(cmd.Context())
				if err != nil {
					return err
				}
				for _, s := range all {
					ps = append(ps, s.ID)
				}
			}
			var total app.SyncResult
			failed, noRelay := 0, 0
			var lastErr error
			for _, p := range ps {
				res, err := n.Sync(cmd.Context(), p, app.SyncOptions{Relays: peers, Progress: e.progress()})
				if err != nil {
					if len(ps) > 1 {
						fmt.Fprintf(e.Stderr, "%s: %v\n", p.Short(), oneLine(err.Error()))
					}
					if errors.Is(err, app.ErrNoRelay) {
						noRelay++
					}
					failed++
					lastErr = err
					continue
				}
				e.syncReport(res, nil)
				if relayErrorCount(res) == len(res.Relays) {
					failed++ // no relay answered
				}
				total.Received += res.Received
				total.Sent += res.Sent
			}
			if len(args) == 0 {
				added := e.deviceMailbox(cmd.Context(), n, func(err error) {
					fmt.Fprintln(e.Stderr, oneLine(err.Error()))
				})
				for _, p := range added {
					fmt.Fprintf(e.Stderr, "%s: taken up from your other devices\n", p.Short())
				}
			}
			if e.json {
				if err := e.printJSON(struct {
					Received int `json:"received"`
					Sent     int `json:"sent"`
				}{total.Received, total.Sent}); err != nil {
					return err
				}
			}
			switch {
			case len(ps) == 1 && lastErr != nil:
				return lastErr
			case noRelay > 0 && noRelay == len(ps):
				return fmt.Errorf("nothing to sync: %w", lastErr)
			case failed > 0 && failed == len(ps):
				return fmt.Errorf("sync failed: no relay could be reached (see above); check the relay list (`pursuance relays P`) or add one")
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&peers, "peer", nil, "also sync with the relay or member node at `URL` (repeatable)")
	return cmd
}

// progress returns a progress printer for stderr: at most a line a second.
func (e *Env) progress() func(string, ...any) {
	var last time.Time
	return func(format string, args ...any) {
		if time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		fmt.Fprintf(e.Stderr, "sync: "+format+"\n", args...)
	}
}

// relayNotes says, for people, what a sync found wrong with a relay that
// did not fail: lost data, lost appends, events it lacked, a read cut
// short.
func relayNotes(r app.RelayResult) []string {
	var out []string
	if r.Reset != "" {
		out = append(out, r.Reset+": read again from the start and refilled from this home")
	}
	if r.Lost > 0 {
		out = append(out, fmt.Sprintf("acknowledged %s it did not keep: sent again", plural(r.Lost, "envelope")))
	}
	if r.Behind > 0 {
		out = append(out, fmt.Sprintf("behind: it lacked %s another relay or peer had (sent to it now; a relay behind at every sync withholds or drops them)", plural(r.Behind, "event")))
	}
	if r.Partial {
		out = append(out, "read in part (a sync reads a bounded amount from each relay): the rest at the next sync")
	}
	return out
}

// plural says "1 event", "2 events".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// syncReport tells on stderr what a sync did, and which relays failed.
func (e *Env) syncReport(res app.SyncResult, err error) {
	if err != nil {
		fmt.Fprintf(e.Stderr, "sync: %s\n", oneLine(err.Error()))
		return
	}
	if down := relayErrorCount(res); down > 0 {
		fmt.Fprintf(e.Stderr, "Synced with %d of %d relays (%d failed, below): %d events received, %d envelopes sent", len(res.Relays)-down, len(res.Relays), down, res.Received, res.Sent)
	} else {
		fmt.Fprintf(e.Stderr, "Synced with %d relays: %d events received, %d envelopes sent", len(res.Relays), res.Received, res.Sent)
	}
	if res.Tampered > 0 {
		fmt.Fprintf(e.Stderr, ", %d envelopes that do not open (altered or forged by a relay)", res.Tampered)
	}
	if res.Refused > 0 {
		fmt.Fprintf(e.Stderr, ", %d refused (forged or invalid)", res.Refused)
	}
	fmt.Fprintln(e.Stderr, ".")
	for _, r := range res.Relays {
		if r.Err != nil {
			fmt.Fprintf(e.Stderr, "  %s: %s\n", r.URL, oneLine(app.RelayError(r.Err)))
		}
		for _, line := range relayNotes(r) {
			fmt.Fprintf(e.Stderr, "  %s: %s\n", r.URL, line)
		}
	}
	if len(res.Missing) > 0 {
		var ids []string
		for _, id := range res.Missing {
			ids = append(ids, id.Short())
		}
		fmt.Fprintf(e.Stderr, "  %d events that others name are on no relay asked (withheld or pruned): %s; ask a peer (sync --peer URL)\n", len(ids), strings.Join(ids, ", "))
	}
}
