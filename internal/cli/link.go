package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// Links between pursuances and hand-off (docs/links.md).

func newLinkCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "link",
		Short: "Link pursuances, so that one may send tasks to another",
		Long: `A link lets pursuance A send tasks to pursuance B. Each side agrees by its
own rules: A's member who may link-pursuances runs "link create", which
prints a link code; B's runs "link accept" with it. Either side ends it
with "link end". A member of A holding a sending role then hands tasks
off ("pursuance handoff"); B's members see them with their origin, which
each of them checks against A's own rules, and may report back
("pursuance task report").

The code carries the link's secret: whoever holds it reads what goes over
the link (A's and B's authority history, hand-offs and reports, never
their tasks). Hand it over a channel you trust.`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	cmd.AddCommand(newLinkCreateCmd(e), newLinkAcceptCmd(e), newLinkEndCmd(e))
	return cmd
}

// resolveOther names another pursuance (app.ResolvePeer), as a usage
// error when it names none.
func resolveOther(ctx context.Context, n *app.Node, ref string) (event.ID, error) {
	id, err := n.ResolvePeer(ctx, ref)
	if err != nil {
		return event.ID{}, usageErrorf("%v", err)
	}
	return id, nil
}

func newLinkCreateCmd(e *Env) *cobra.Command {
	var to string
	var roles []string
	cmd := &cobra.Command{
		Use:   "create A --to B_ID --send-role ROLE...",
		Short: "Offer a link from A to pursuance B; prints the link code for B",
		Long: `Sign A's side of a link (under A's rules: the link-pursuances permission,
and its quorum if the charter sets one) and print the link code, one line,
to hand to a member of B who may link it. Members of A holding a
--send-role may then hand tasks off to B.`,
		Example: `  pursuance link create desk --to 3f2a…(B's 64-digit ID) --send-role editor`,
		Args:    exactArgs(1, "A"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageErrorf("missing --to B_ID")
			}
			if len(roles) == 0 {
				return usageErrorf("missing --send-role ROLE")
			}
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				peer, err := resolveOther(cmd.Context(), n, to)
				if err != nil {
					return err
				}
				code, res, err := n.LinkCreate(cmd.Context(), s.Pursuance(), peer, roles, app.DoOptions{Unchecked: e.unchecked})
				if err != nil {
					return err
				}
				e.report(res)
				if e.json {
					return e.printJSON(struct {
						Link     string `json:"link"`
						Code     string `json:"code"`
						Proposed bool   `json:"proposed"`
					}{code.Secret.ID().String(), code.String(), res.Proposed})
				}
				fmt.Fprintln(e.Stdout, code)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the ID of the pursuance `B_ID` to send tasks to")
	cmd.Flags().StringArrayVar(&roles, "send-role", nil, "a `ROLE` of A whose holders may send (repeatable)")
	return cmd
}

func newLinkAcceptCmd(e *Env) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "accept B CODE --deliver-to ROLE",
		Short: "Accept, for B, the link a code offers: its tasks arrive for ROLE",
		Args:  exactArgs(2, "B CODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role == "" {
				return usageErrorf("missing --deliver-to ROLE")
			}
			code, err := app.ParseLinkCode(args[1])
			if err != nil {
				return usageErrorf("%v", err)
			}
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				id, res, err := n.LinkAccept(cmd.Context(), s.Pursuance(), code, role, app.DoOptions{Unchecked: e.unchecked})
				if err != nil {
					return err
				}
				e.report(res)
				if e.json {
					return e.printJSON(struct {
						Link     string `json:"link"`
						Proposed bool   `json:"proposed"`
					}{id.String(), res.Proposed})
				}
				fmt.Fprintln(e.Stdout, id)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&role, "deliver-to", "", "the `ROLE` of B tasks arrive for")
	return cmd
}

func newLinkEndCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "end P LINK",
		Short: "End a link, from either side",
		Args:  exactArgs(2, "P LINK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				res, err := n.LinkEnd(cmd.Context(), s.Pursuance(), args[1], app.DoOptions{Unchecked: e.unchecked})
				if err != nil {
					return err
				}
				e.report(res)
				return nil
			})
		},
	}
}

func newLinksCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "links P",
		Short: "List the links of P",
		Args:  exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				ls, err := n.Links(cmd.Context(), s.Pursuance())
				if err != nil {
					return err
				}
				if e.json {
					return e.printJSON(ls)
				}
				if len(ls) == 0 {
					fmt.Fprintln(e.Stderr, "No links.")
				}
				for _, l := range ls {
					other := l.Name
					if other == "" {
						other = l.Pursuance
					}
					if other == "" {
						other = "(not known yet)"
					}
					arrow := "->"
					if l.Direction == "in" {
						arrow = "<-"
					}
					state := l.State
					if l.EndedBy != "" {
						state += " (" + l.EndedBy + ")"
					}
					fmt.Fprintf(e.Stdout, "%s  %s %s  %s  %s\n", l.Link[:12], arrow, other, strings.Join(l.Roles, ","), state)
				}
				return nil
			})
		},
	}
}

func newHandoffCmd(e *Env) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "handoff A TASK --to B_ID",
		Short: "Send a task of A to pursuance B over their link",
		Long: `Send a task's title, body and due date to B, over an open link A offered to
it. You must hold one of the link's sending roles: every member of B checks
it, against A's own rules.`,
		Args: exactArgs(2, "A TASK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageErrorf("missing --to B_ID")
			}
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				peer, err := resolveOther(cmd.Context(), n, to)
				if err != nil {
					return err
				}
				hr, res, err := n.Handoff(cmd.Context(), s.Pursuance(), args[1], peer, app.DoOptions{Unchecked: e.unchecked})
				if err != nil {
					return err
				}
				e.report(res)
				if e.json {
					return e.printJSON(hr)
				}
				fmt.Fprintln(e.Stdout, hr.Handoff)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the ID of the pursuance `B_ID` to send it to")
	return cmd
}

func newTaskReportCmd(e *Env) *cobra.Command {
	var status, comment string
	cmd := &cobra.Command{
		Use:   "report P TASK [--status STATUS] [--comment TEXT]",
		Short: "Report on a task received from another pursuance, back to it",
		Long: `Send the pursuance that handed this task off a status, a comment, or both.
Nothing of a received task goes back unless a member reports it: the
choice is yours, per task and per report. (task status --report and task
comment --report do the same along with the change.)`,
		Args: exactArgs(2, "P TASK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st *state.Status
			if status != "" {
				s, err := state.ParseStatus(status)
				if err != nil {
					return usageErrorf("--status: %v", err)
				}
				st = &s
			}
			if st == nil && comment == "" {
				return usageErrorf("give --status, --comment or both")
			}
			return e.reportBack(cmd, args[0], args[1], st, comment)
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "the `STATUS` to report")
	cmd.Flags().StringVar(&comment, "comment", "", "a comment to report")
	return cmd
}

// reportBack reports on task ref of pursuance p.
func (e *Env) reportBack(cmd *cobra.Command, p, ref string, st *state.Status, comment string) error {
	return e.withState(cmd, p, true, func(n *app.Node, s *state.State) error {
		res, err := n.Report(cmd.Context(), s.Pursuance(), ref, st, comment, app.DoOptions{Unchecked: e.unchecked})
		if err != nil {
			return err
		}
		e.report(res)
		return nil
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
