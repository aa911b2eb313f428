package cli

import (
	"time"

	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

func newKeysCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "keys P",
		Short: "List the key generations of a pursuance and which you hold",
		Long: `List every generation of the group key and of each role's key, and
whether you hold it (sealed to you, or chained under one sealed to you).
Needs the passphrase: keys are opened with your identity.`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				ring, err := n.KeyRing(cmd.Context(), s)
				if err != nil {
					return err
				}
				held := map[event.ID]string{}
				for _, h := range ring {
					held[h.Update] = h.Via
				}
				type gen struct {
					Scope   string   `json:"scope"`
					Gen     uint64   `json:"gen"`
					Update  event.ID `json:"update"`
					Current bool     `json:"current"`
					Held    string   `json:"held"`
					Stale   []string `json:"stale,omitempty"` // current only: who holds it unentitled
					Owed    []string `json:"owed,omitempty"`  // current only: who is entitled and lacks it
				}
				names := func(ids []identity.PublicKey) []string {
					var out []string
					for _, id := range ids {
						if n := s.NameOf(id); n != "" {
							out = append(out, n)
						} else {
							out = append(out, "invite "+id.Short())
						}
					}
					return out
				}
				out := []gen{}
				for _, role := range append([]string{""}, s.Charter().RoleNames()...) {
					st, _ := s.KeyStatusAt(role, uint64(time.Now().UnixMilli()))
					scope := "group"
					if role != "" {
						scope = "role:" + role
					}
					for _, kg := range s.KeyGenerations(role) {
						g := gen{Scope: scope, Gen: kg.Gen, Update: kg.Update, Current: kg.Update == st.Current.Update, Held: held[kg.Update]}
						if g.Current {
							g.Stale, g.Owed = names(st.Stale), names(st.Owed)
						}
						out = append(out, g)
					}
				}
				if e.json {
					return e.printJSON(out)
				}
				for _, g := range out {
					h := "not held"
					if g.Held != "" {
						h = "held (" + g.Held + ")"
					}
					cur := ""
					if g.Current {
						cur = "  current"
					}
					if len(g.Stale) > 0 {
						cur += "  STALE: still held by " + strings.Join(g.Stale, ", ")
					}
					if len(g.Owed) > 0 {
						cur += "  owed to " + strings.Join(g.Owed, ", ")
					}
					fmt.Fprintf(e.Stdout, "%-20s gen %-3d %s  %s%s\n", g.Scope, g.Gen, g.Update.Short(), h, cur)
				}
				return nil
			})
		},
	}
}

func newRotateCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate P [ROLE]",
		Short: "Publish a new generation of the group key, or of a role's key",
		Long: `Publish a new generation of the group key (no ROLE) or of ROLE's key: a
fresh seed sealed to every member entitled to it, with the current
generation chained under it if you hold it, so its holders keep reading
the history. A role's holders may rotate its key; the group key needs a
role that may rotate-keys.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErrorf("%q takes P [ROLE], got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			role := ""
			if len(args) == 2 {
				role = strings.TrimPrefix(args[1], "role:")
			}
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				res, err := n.Rotate(cmd.Context(), s.Pursuance(), role, app.DoOptions{Unchecked: e.unchecked})
				if err != nil {
					return err
				}
				e.report(res)
				return nil
			})
		},
	}
}
