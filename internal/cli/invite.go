package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

func newInviteCmd(e *Env) *cobra.Command {
	var role string
	var expires time.Duration
	var uses uint64
	cmd := &cobra.Command{
		Use:   "invite P --role ROLE [--expires DURATION] [--uses N]",
		Short: "Create an invite code into a role",
		Long: `Publish an invite into ROLE and print its code, one line. Hand the code to
the newcomer over a channel you trust: whoever holds it can join, and
reads the pursuance until the invite is used, revoked or expires (then
the keys it carried are rotated before anything new is written). By
default an invite admits one person within 7 days.

Expiry has no trusted clock behind it. A join is refused when it claims a
time past the expiry, or when it had not reached a member who wrote after
the expiry: so a join must reach the members in time, and a holder of the
code who backdates a join after the expiry is refused on every replica as
soon as any member has written past it. Until some member writes after the
expiry, a backdated join still stands; a member whose clock runs fast
closes invites early. To close a code for certain, revoke it
(pursuance invite revoke).`,
		Example: `  pursuance invite "Night Desk" --role researcher
  pursuance invite desk --role editor --expires 24h --uses 3`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role == "" {
				return usageErrorf("missing --role ROLE")
			}
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				code, res, err := n.Invite(cmd.Context(), s.Pursuance(), role, expires, uses, app.DoOptions{Unchecked: e.unchecked})
				if err != nil {
					return err
				}
				e.report(res)
				switch code.Reach() {
				case app.ReachNowhere:
					fmt.Fprintln(e.Stderr, "note: the code names no relay, so the newcomer needs the log as a file (`pursuance export P --out FILE`, then `pursuance join CODE --log FILE`). Add a relay first (`pursuance relays add P URL`), or run `pursuance up`, and invite again.")
				case app.ReachTor:
					fmt.Fprintf(e.Stderr, "note: needs Tor: the code names only onion services (%s). The newcomer joins with `pursuance --tor join CODE`, or runs `pursuance up --tor` and joins there.\n", strings.Join(code.Relays, ", "))
				case app.ReachThisMachine:
					fmt.Fprintf(e.Stderr, "note: the code names only relays on this machine (%s): it works for a member on this machine while they run. For members elsewhere, add a relay they can reach (`pursuance relays add P URL`) and invite again.\n", strings.Join(code.Relays, ", "))
				}
				if e.json {
					return e.printJSON(struct {
						Code     string   `json:"code"`
						Invite   event.ID `json:"invite"`
						Proposed bool     `json:"proposed"`
					}{code.String(), code.Invite, res.Proposed})
				}
				fmt.Fprintln(e.Stdout, code)
				return nil
			})
		},
	}
	cmd.AddCommand(newInviteRevokeCmd(e))
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "the `ROLE` the newcomer gets")
	f.DurationVar(&expires, "expires", 7*24*time.Hour, "how long the invite stays valid (0: forever)")
	f.Uint64Var(&uses, "uses", 1, "how many people may join with it (0: no limit)")
	return cmd
}

func newInviteRevokeCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke P CODE|INVITE",
		Short: "Revoke an invite, so that its code admits nobody more",
		Long: `Revoke an invite, named by its code or by its event ID (or a prefix of at
least 4 hex digits). A join that had not seen the revocation when it was
signed is invalidated on every replica; the keys the code carried are
rotated before anything more is sealed under them.`,
		Args: exactArgs(2, "P CODE|INVITE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := e.act(cmd, args[0], func(s *state.State, n *app.Node) (state.Op, error) {
				id, err := resolveInvite(s, args[1])
				if err != nil {
					return nil, err
				}
				return &state.InviteRevoke{Invite: id}, nil
			})
			return err
		},
	}
}

// resolveInvite finds an invite by its code, full ID or ID prefix.
func resolveInvite(s *state.State, ref string) (event.ID, error) {
	if strings.HasPrefix(ref, "pi1") {
		code, err := app.ParseInviteCode(ref)
		if err != nil {
			return event.ID{}, err
		}
		if code.Pursuance != s.Pursuance() {
			return event.ID{}, fmt.Errorf("the code is for another pursuance (%s)", code.Pursuance.Short())
		}
		return code.Invite, nil
	}
	low := strings.ToLower(ref)
	var found []event.ID
	for _, en := range s.Log() {
		if en.Kind != event.KindInvite && en.Kind != event.KindProposal {
			continue
		}
		if id := en.ID.String(); id == low || len(low) >= 4 && strings.HasPrefix(id, low) {
			found = append(found, en.ID)
		}
	}
	switch len(found) {
	case 0:
		return event.ID{}, fmt.Errorf("no invite %q in %s", ref, s.Name())
	case 1:
		return found[0], nil
	}
	return event.ID{}, fmt.Errorf("%w: invite %q could be any of %d events", app.ErrAmbiguous, ref, len(found))
}

func newJoinCmd(e *Env) *cobra.Command {
	var logFile string
	var peers []string
	cmd := &cobra.Command{
		Use:   "join CODE [--log FILE]",
		Short: "Join a pursuance with an invite code",
		Long: `Join the pursuance an invite code names. The code carries the keys that
open the pursuance's log and the relays that hold it: join fetches the log
from them (or reads a member's ` + "`pursuance export`" + ` file, --log FILE),
verifies every event, signs the join on top of it and publishes it. A join
that fails (a used-up or expired code, a log that cannot be fetched) leaves
nothing on this home.`,
		Example: `  pursuance join pi1… --log night-desk.plog`,
		Args:    exactArgs(1, "CODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := app.ParseInviteCode(args[0])
			if err != nil {
				return err
			}
			if code.Reach() == app.ReachTor && logFile == "" && len(peers) == 0 && e.dialFunc() == nil {
				return fmt.Errorf("this invite code names only onion services (%s): it needs Tor: join with `pursuance --tor join CODE` (or `pursuance tor on` first, or while `pursuance up --tor` runs)", strings.Join(code.Relays, ", "))
			}
			n, err := e.openNode(cmd.Context())
			if err != nil {
				return err
			}
			defer n.Close()
			if n.IsDevice() && logFile == "" {
				// A linked device asks its root to join (docs/devices.md §8).
				if err := n.AskJoin(cmd.Context(), code); err != nil {
					return err
				}
				if !e.offline {
					if _, err := n.PostDeviceMailbox(cmd.Context()); err != nil {
						fmt.Fprintf(e.Stderr, "note: the ask did not reach the relays yet (%s); `pursuance sync` sends it\n", oneLine(err.Error()))
					}
				}
				fmt.Fprintln(e.Stderr, "Asked your root home to join: it does at its next sync (`pursuance up` there keeps syncing); then this device takes the pursuance up at its own next sync.")
				return nil
			}
			opts := app.DoOptions{Unchecked: e.unchecked, Peers: peers}
			if logFile != "" {
				f, err := os.Open(logFile)
				if err != nil {
					return err
				}
				defer f.Close()
				opts.Export, opts.Imported = f, new(app.ImportResult)
			}
			res, err := n.Join(cmd.Context(), code, opts)
			if opts.Imported != nil && opts.Imported.Read > 0 {
				e.reportImport(*opts.Imported)
			}
			if err != nil {
				return err
			}
			e.report(res)
			if s, err := n.State(cmd.Context(), code.Pursuance); err == nil {
				e.warnSameName(cmd.Context(), n, code.Pursuance, s.Name())
				for _, m := range app.LooksLike(s, n.Me().ID, n.Me().Name) {
					fmt.Fprintf(e.Stderr, "warning: your name looks like that of member %q (%s): the others will be told so; tell them your fingerprint (`pursuance id show`)\n", m.Name, m.ID.String()[:12])
				}
			}
			if e.json {
				return e.printJSON(struct {
					Pursuance event.ID `json:"pursuance"`
				}{code.Pursuance})
			}
			fmt.Fprintln(e.Stdout, code.Pursuance)
			return nil
		},
	}
	cmd.Flags().StringVar(&logFile, "log", "", "read the pursuance's log from `FILE` (a member's export)")
	cmd.Flags().StringArrayVar(&peers, "peer", nil, "also fetch the log from the relay or member node at `URL` (repeatable)")
	return cmd
}
