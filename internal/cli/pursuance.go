package cli

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

func newCreateCmd(e *Env) *cobra.Command {
	var name, charterFile, template string
	var relays []string
	cmd := &cobra.Command{
		Use:   "create --name NAME [--charter FILE | --template NAME]",
		Short: "Found a pursuance, with you holding its first role",
		Long: `Found a pursuance: sign its genesis event, which carries the charter (its
roles and rules). You hold the charter's first role. The charter comes from
a YAML file (--charter) or a built-in template (--template, default desk;
see ` + "`pursuance templates`" + `). --name overrides the charter's name.

Prints the pursuance ID.`,
		Example: `  pursuance create --name "Night Desk"
  pursuance create --name Cell --template collective
  pursuance create --name Ours --charter charter.yaml --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("name") {
				return usageErrorf("missing --name NAME")
			}
			if charterFile != "" && cmd.Flags().Changed("template") {
				return usageErrorf("--charter and --template exclude each other")
			}
			for i, u := range relays {
				relays[i] = strings.TrimRight(u, "/")
				if err := state.CheckRelayURL(relays[i]); err != nil {
					return usageErrorf("--relay: %v", err)
				}
			}
			c, err := loadCharter(charterFile, template)
			if err != nil {
				return err
			}
			c.Name = name
			if err := c.Validate(); err != nil {
				return err
			}
			n, err := e.openNode(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer n.Close()
			id, err := n.Create(cmd.Context(), c)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stderr, "Founded %q; you hold %q.\n", c.Name, c.FounderRole())
			if len(relays) > 0 {
				if _, err := n.SetRelays(cmd.Context(), id, relays, nil, app.DoOptions{}); err != nil {
					return err
				}
				e.syncReport(n.Sync(cmd.Context(), id, app.SyncOptions{Progress: e.progress()}))
			}
			if e.json {
				return e.printJSON(struct {
					Pursuance event.ID `json:"pursuance"`
				}{id})
			}
			fmt.Fprintln(e.Stdout, id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the pursuance's `NAME`")
	f.StringVar(&charterFile, "charter", "", "charter YAML `FILE`")
	f.StringVar(&template, "template", "desk", "charter template `NAME` (pursuance templates)")
	f.StringArrayVar(&relays, "relay", nil, "a relay `URL` to publish to (repeatable)")
	return cmd
}

// loadCharter reads a charter file, or a template when file is "".
func loadCharter(file, template string) (*charter.Charter, error) {
	if file == "" {
		c, err := charter.Template(template)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		return c, nil
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	c, err := charter.Parse(src)
	if err != nil {
		return nil, charterError(file, err)
	}
	return c, nil
}

func newListCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the pursuances on this home",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := e.openNode(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer n.Close()
			all, err := n.Pursuances(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				if all == nil {
					all = []app.Summary{}
				}
				return e.printJSON(all)
			}
			if len(all) == 0 {
				fmt.Fprintln(e.Stderr, "No pursuances yet: `pursuance create --name NAME` founds one.")
			}
			for _, s := range all {
				fmt.Fprintf(e.Stdout, "%s  %s\n", s.ID, s.Name)
			}
			return nil
		},
	}
}

func newTemplatesCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "templates",
		Short: "List the charter templates",
		Long: `List the built-in charter templates. The founder holds each one's first
role. Show one in full with ` + "`pursuance templates NAME`" + `.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				src, err := charter.TemplateYAML(args[0])
				if err != nil {
					return err
				}
				_, err = e.Stdout.Write(src)
				return err
			}
			type tmpl struct {
				Name  string   `json:"name"`
				Roles []string `json:"roles"`
			}
			var out []tmpl
			for _, name := range charter.TemplateNames() {
				c, err := charter.Template(name)
				if err != nil {
					return err
				}
				out = append(out, tmpl{name, c.RoleNames()})
			}
			if e.json {
				return e.printJSON(out)
			}
			for _, t := range out {
				fmt.Fprintf(e.Stdout, "%s\n", t.Name)
				fmt.Fprintf(e.Stderr, "  roles: %s\n", strings.Join(t.Roles, ", "))
			}
			return nil
		},
	}
}

func newCharterCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "charter",
		Short: "Show or amend a pursuance's charter",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}
	show := &cobra.Command{
		Use:   "show P",
		Short: "Print the charter in force, as YAML",
		Long: `Print the charter in force, as YAML, ready to edit and amend with. With
--json: {"pursuance","name","roles","yaml"}, roles ranked highest first.`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], false, func(_ *app.Node, s *state.State) error {
				c := s.Charter()
				if e.json {
					return e.printJSON(struct {
						Pursuance event.ID `json:"pursuance"`
						Name      string   `json:"name"`
						Roles     []string `json:"roles"`
						YAML      string   `json:"yaml"`
					}{s.Pursuance(), c.Name, c.RoleNames(), string(c.YAML())})
				}
				_, err := e.Stdout.Write(c.YAML())
				return err
			})
		},
	}
	amend := &cobra.Command{
		Use:   "amend P FILE",
		Short: "Replace the charter (proposed instead when the charter asks a quorum)",
		Args:  exactArgs(2, "P FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			c, err := charter.Parse(src)
			if err != nil {
				return charterError(args[1], err)
			}
			wire, err := c.MarshalBinary()
			if err != nil {
				return err
			}
			_, err = e.act(cmd, args[0], func(*state.State, *app.Node) (state.Op, error) {
				return &state.CharterAmend{Charter: wire}, nil
			})
			return err
		},
	}
	cmd.AddCommand(show, amend)
	return cmd
}

func newMembersCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "members P",
		Short: "List a pursuance's members, their roles and safety fingerprints",
		Long: `List the members, their roles and each one's safety fingerprint. Compare a
fingerprint with the member's own ` + "`pursuance id show`" + ` over a channel you trust
(in person, by phone): if they match, nobody stands between you and the
keys sealed to that member.`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], false, func(_ *app.Node, s *state.State) error {
				type member struct {
					ID    identity.PublicKey `json:"id"`
					Name  string             `json:"name"`
					Roles []string           `json:"roles"`
				}
				out := []member{}
				for _, m := range s.Members() {
					roles := m.Roles
					if roles == nil {
						roles = []string{}
					}
					out = append(out, member{m.ID, m.Name, roles})
				}
				if e.json {
					return e.printJSON(out)
				}
				for _, m := range s.Members() {
					fmt.Fprintf(e.Stdout, "%-20s %s  %s\n%-20s fingerprint %s\n", m.Name, m.ID, joinRoles(m.Roles), "", identity.Fingerprint(m.ID, m.KEM))
				}
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
		Args:  exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], false, func(_ *app.Node, s *state.State) error {
				type prop struct {
					ID        event.ID `json:"id"`
					Author    string   `json:"author"`
					Action    string   `json:"action"`
					Approvals int      `json:"approvals"`
					Needed    int      `json:"needed"`
				}
				out := []prop{}
				for _, p := range s.Proposals() {
					out = append(out, prop{p.ID, p.Author.String(), string(p.Action), len(p.Approvals), p.Needed})
				}
				if e.json {
					return e.printJSON(out)
				}
				if len(out) == 0 {
					fmt.Fprintln(e.Stderr, "No open proposals.")
				}
				for i, p := range out {
					fmt.Fprintf(e.Stdout, "%s  %s by %s: %d of %d approvals\n", p.ID.Short(), p.Action, s.NameOf(s.Proposals()[i].Author), p.Approvals, p.Needed)
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
verifies every event, signs the join on top of it and publishes it.`,
		Example: `  pursuance join pi1… --log night-desk.plog`,
		Args:    exactArgs(1, "CODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := app.ParseInviteCode(args[0])
			if err != nil {
				return err
			}
			n, err := e.openNode(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer n.Close()
			if logFile != "" {
				if err := n.Accept(code); err != nil {
					return err
				}
				f, err := os.Open(logFile)
				if err != nil {
					return err
				}
				res, err := n.Import(cmd.Context(), f)
				f.Close()
				if err != nil {
					return err
				}
				e.reportImport(res)
			}
			res, err := n.Join(cmd.Context(), code, app.DoOptions{Unchecked: e.unchecked, Peers: peers})
			if err != nil {
				return err
			}
			e.report(res)
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

func newLogCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "log P",
		Short: "The audit log: every event, rejected ones too, with the reason",
		Args:  exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(_ *app.Node, s *state.State) error {
				type entry struct {
					ID     event.ID           `json:"id"`
					Author identity.PublicKey `json:"author"`
					Kind   string             `json:"kind"`
					Seq    uint64             `json:"seq"`
					Status string             `json:"status"`
					Reason string             `json:"reason"`
				}
				log := s.Log()
				out := make([]entry, len(log))
				for i, en := range log {
					st := "accepted"
					if !en.Accepted {
						st = "rejected"
					}
					out[i] = entry{en.ID, en.Author, en.Kind.String(), en.Seq, st, en.Reason}
				}
				if e.json {
					return e.printJSON(out)
				}
				var b bytes.Buffer
				for i, en := range log {
					when := time.UnixMilli(int64(en.Time)).UTC().Format("2006-01-02 15:04")
					fmt.Fprintf(&b, "%s  %s  %-14s %-12s %s", en.ID.Short(), when, en.Kind, s.NameOf(en.Author), out[i].Status)
					if en.Reason != "" {
						fmt.Fprintf(&b, ": %s", en.Reason)
					}
					if en.Note != "" {
						fmt.Fprintf(&b, " (%s)", en.Note)
					}
					b.WriteByte('\n')
				}
				_, err := e.Stdout.Write(b.Bytes())
				return err
			})
		},
	}
}

func newExportCmd(e *Env) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export P --out FILE",
		Short: "Write a pursuance's whole log to a file, for another home to import",
		Long: `Write every event of the pursuance (signed, as received) to FILE, each
sealed in an envelope under the current group key: the file shows nothing
but sizes to whoever holds it without the key. Another member imports it
with ` + "`pursuance import FILE`" + `, a newcomer with ` + "`pursuance join CODE --log FILE`" + `;
either verifies every event, so the file needs no more trust than a relay.`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErrorf("missing --out FILE")
			}
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				// Written beside, then renamed: an interrupted export
				// leaves no half file under the name.
				tmp := out + ".partial"
				f, err := os.Create(tmp)
				if err != nil {
					return err
				}
				count, err := n.Export(cmd.Context(), s.Pursuance(), f)
				if err == nil {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err == nil {
					err = os.Rename(tmp, out)
				}
				if err != nil {
					os.Remove(tmp)
					return err
				}
				fmt.Fprintf(e.Stderr, "Wrote %d events of %q to %s.\n", count, s.Name(), out)
				if e.json {
					return e.printJSON(struct {
						Events int    `json:"events"`
						Out    string `json:"out"`
					}{count, out})
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the `FILE` to write")
	return cmd
}

func newImportCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Verify and store the events of an exported log",
		Args:  exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			n, err := e.openNode(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer n.Close()
			res, err := n.Import(cmd.Context(), f)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(struct {
					Read       int `json:"read"`
					Received   int `json:"received"`
					Rejected   int `json:"rejected"`
					Pending    int `json:"pending"`
					Unreadable int `json:"unreadable"`
				}{res.Read, res.Stored, res.Rejected, res.Pending, res.Unreadable})
			}
			e.reportImport(res)
			return nil
		},
	}
}

// reportImport tells, on stderr, what an import did.
func (e *Env) reportImport(res app.ImportResult) {
	fmt.Fprintf(e.Stderr, "Read %d events: %d new, %d already here, %d refused, %d waiting for missing predecessors",
		res.Read, res.Stored, res.Duplicates, res.Rejected, res.Pending)
	if res.Unreadable > 0 {
		fmt.Fprintf(e.Stderr, ", %d sealed under keys you do not hold", res.Unreadable)
	}
	fmt.Fprintln(e.Stderr, ".")
}

// exactArgs is cobra.ExactArgs reported as a usage error naming the
// arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%q takes %s, got %d arguments", cmd.CommandPath(), names, len(args))
		}
		return nil
	}
}

// charterError puts a charter's errors, one per line, on one line.
func charterError(file string, err error) error {
	return fmt.Errorf("%s: %s", file, strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
}
