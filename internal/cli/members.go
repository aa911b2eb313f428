package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

func newMembersCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "members P",
		Short: "List a pursuance's members, their roles and safety fingerprints",
		Long: `List the members, their roles and each one's safety fingerprint. Compare a
fingerprint with the member's own ` + "`pursuance id show`" + ` over a channel you trust
(in person, by phone): if they match, nobody stands between you and the
keys sealed to that member.

A member who has signed nothing for the charter's inactive-after period,
by the members' signed clocks, is shown inactive since its last event
(docs/succession.md). With --json: [{"id","name","roles","inactive_since",
"devices"}], inactive_since RFC 3339 or null when active; devices is how
many current devices the member signs from (docs/devices.md).`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], false, func(_ *app.Node, s *state.State) error {
				type member struct {
					ID            identity.PublicKey `json:"id"`
					Name          string             `json:"name"`
					Roles         []string           `json:"roles"`
					InactiveSince *string            `json:"inactive_since"`
					// Devices counts the member's current devices
					// (docs/devices.md): 1 until it links another.
					Devices int `json:"devices"`
				}
				out := []member{}
				for _, m := range s.Members() {
					roles := m.Roles
					if roles == nil {
						roles = []string{}
					}
					var since *string
					if act, _ := s.Activity(m.ID); act.Inactive {
						t := rfc3339(act.Since)
						since = &t
					}
					devices := 0
					for _, d := range s.Devices(m.ID) {
						if !d.Revoked {
							devices++
						}
					}
					out = append(out, member{m.ID, m.Name, roles, since, devices})
				}
				if e.json {
					return e.printJSON(out)
				}
				for i, m := range s.Members() {
					fmt.Fprintf(e.Stdout, "%-20s %s  %s\n%-20s fingerprint %s\n", m.Name, m.ID, joinRoles(m.Roles), "", identity.Fingerprint(m.ID, m.KEM))
					if since := out[i].InactiveSince; since != nil {
						fmt.Fprintf(e.Stdout, "%-20s inactive since %s\n", "", *since)
					}
				}
				e.warnLookAlikes(s)
				return nil
			})
		},
	}
}

func newRoleCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "role",
		Short: "Assign or revoke a member's role",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}
	for _, assign := range []bool{true, false} {
		use, short := "assign P MEMBER ROLE", "Give a member a role"
		if !assign {
			use, short = "revoke P MEMBER ROLE", "Take a role from a member"
		}
		cmd.AddCommand(&cobra.Command{
			Use:   use,
			Short: short,
			Args:  exactArgs(3, "P MEMBER ROLE"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
					m, err := app.ResolveMember(s, args[1])
					if err != nil {
						return err
					}
					do := n.RevokeRole
					if assign {
						do = n.AssignRole
					}
					res, stale, err := do(cmd.Context(), s.Pursuance(), m, args[2], app.DoOptions{Unchecked: e.unchecked})
					if err != nil {
						return err
					}
					e.report(res)
					e.reportStale(stale)
					return nil
				})
			},
		})
	}
	return cmd
}

func newRemoveCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "remove P MEMBER",
		Short: "Remove a member (proposed instead when the charter asks a quorum)",
		Long: `Remove a member from the pursuance. Actions the member took concurrently
with the removal, that the removal would have forbidden, are invalidated
on every replica (strong removal, docs/rules.md). The group key and the
keys of the roles the member held are re-keyed to those who remain, so the
member opens nothing written afterwards; a key you may not rotate is named,
and the next member who may rotates it before writing under it.`,
		Args: exactArgs(2, "P MEMBER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				m, err := app.ResolveMember(s, args[1])
				if err != nil {
					return err
				}
				res, stale, err := n.Remove(cmd.Context(), s.Pursuance(), m, app.DoOptions{Unchecked: e.unchecked})
				if err != nil {
					return err
				}
				e.report(res)
				e.reportStale(stale)
				return nil
			})
		},
	}
}

func newLeaveCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "leave P",
		Short: "Leave a pursuance",
		Args:  exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := e.act(cmd, args[0], func(*state.State, *app.Node) (state.Op, error) { return &state.Leave{}, nil })
			return err
		},
	}
}

func newProposalsCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "proposals P",
		Short: "List the open proposals waiting for approvals",
		Long: `List the open proposals waiting for approvals; expired ones (the charter's
proposals-expire, docs/succession.md) are left out. With --json:
[{"id","author","action","approvals","needed","expires"}], expires RFC 3339
or null when proposals never expire.`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], false, func(_ *app.Node, s *state.State) error {
				type prop struct {
					ID        event.ID `json:"id"`
					Author    string   `json:"author"`
					Action    string   `json:"action"`
					Approvals int      `json:"approvals"`
					Needed    int      `json:"needed"`
					Expires   *string  `json:"expires"`
				}
				out := []prop{}
				var open []state.ProposalInfo
				for _, p := range s.Proposals() {
					if p.Expired {
						continue
					}
					var exp *string
					if p.Expires != 0 {
						t := rfc3339(p.Expires)
						exp = &t
					}
					open = append(open, p)
					out = append(out, prop{p.ID, p.Author.String(), string(p.Action), len(p.Approvals), p.Needed, exp})
				}
				if e.json {
					return e.printJSON(out)
				}
				if len(out) == 0 {
					fmt.Fprintln(e.Stderr, "No open proposals.")
				}
				for i, p := range out {
					fmt.Fprintf(e.Stdout, "%s  %s by %s: %d of %d approvals\n", p.ID.Short(), p.Action, s.NameOf(open[i].Author), p.Approvals, p.Needed)
				}
				return nil
			})
		},
	}
}

func newApproveCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "approve P PROPOSAL",
		Short: "Approve an open proposal",
		Args:  exactArgs(2, "P PROPOSAL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				var match []event.ID
				for _, p := range s.Proposals() {
					if strings.HasPrefix(p.ID.String(), strings.ToLower(args[1])) && len(args[1]) >= 4 {
						match = append(match, p.ID)
					}
				}
				switch len(match) {
				case 0:
					return fmt.Errorf("no open proposal %q", args[1])
				case 1:
				default:
					return fmt.Errorf("%w: proposal %q matches %d", app.ErrAmbiguous, args[1], len(match))
				}
				res, stale, err := n.Approve(cmd.Context(), s.Pursuance(), match[0], app.DoOptions{Unchecked: e.unchecked})
				if err != nil {
					return err
				}
				e.report(res)
				e.reportStale(stale)
				return nil
			})
		},
	}
}

// warnLookAlikes warns on stderr of members whose names look alike: one
// may be posing as the other, and only fingerprints tell them apart.
func (e *Env) warnLookAlikes(s *state.State) {
	for _, l := range app.LookAlikes(s) {
		fmt.Fprintf(e.Stderr, "warning: %q (%s) and %q (%s) have names that look alike; compare their fingerprints with them before trusting either\n", l.A.Name, l.A.ID.String()[:12], l.B.Name, l.B.ID.String()[:12])
	}
}
