package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
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

Prints the pursuance ID.

On a linked device (pursuance device), the member's root home founds it:
this asks the root through the device mailbox, with the charter and the
relays (--relay, at least one); the root founds at its next sync (` + "`pursuance up`" + `
there keeps syncing), and the pursuance reaches this device at its own
next sync. Nothing is printed on stdout then (--json: "pursuance" null,
"asked" true).`,
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
			n, err := e.openNode(cmd.Context())
			if err != nil {
				return err
			}
			defer n.Close()
			if n.IsDevice() {
				// A linked device asks its root to found (docs/devices.md §8).
				return e.askFound(cmd.Context(), n, c, relays)
			}
			id, err := n.Create(cmd.Context(), c)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stderr, "Founded %q; you hold %q.\n", c.Name, c.FounderRole())
			e.warnSameName(cmd.Context(), n, id, c.Name)
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
			n, err := e.openNode(cmd.Context())
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
		Long: `List the built-in charter templates, a name a line (with --json, each
one's roles too). The founder holds each one's first role. Show one in full,
roles and rules with comments, with ` + "`pursuance templates NAME`" + `.`,
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
				fmt.Fprintln(e.Stdout, t.Name)
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
		Long: `Print the charter in force, as YAML, ready to edit and amend with, followed
by comment lines that explain its continuity rules in words: when a member
counts as inactive, who may take over which role, how quorums count, when
proposals expire (docs/succession.md). With --json:
{"pursuance","name","roles","yaml","explain"}, roles ranked highest first,
explain a list of sentences.`,
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
						Explain   []string `json:"explain"`
					}{s.Pursuance(), c.Name, c.RoleNames(), string(c.YAML()), c.Explain()})
				}
				if _, err := e.Stdout.Write(c.YAML()); err != nil {
					return err
				}
				fmt.Fprintln(e.Stdout, "\n# What the continuity rules mean (docs/succession.md):")
				for _, line := range c.Explain() {
					fmt.Fprintln(e.Stdout, "#   "+line)
				}
				return nil
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

// charterError puts a charter's errors, one per line, on one line.
func charterError(file string, err error) error {
	return fmt.Errorf("%s: %s", file, strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
}

// warnSameName warns on stderr when other pursuances on this home have
// p's name: commands then need an ID prefix to tell them apart.
func (e *Env) warnSameName(ctx context.Context, n *app.Node, p event.ID, name string) {
	others, err := n.SameName(ctx, p, name)
	if err != nil || len(others) == 0 {
		return
	}
	var ids []string
	for _, o := range others {
		ids = append(ids, o.ID.Short())
	}
	fmt.Fprintf(e.Stderr, "warning: this home already has a pursuance named %q (%s): name them by ID prefix (this one is %s), or rename one with a charter amendment\n", name, strings.Join(ids, ", "), p.Short())
}

// askFound, on a linked device, asks the member's root to found a
// pursuance under c (docs/devices.md §8) and posts the ask at once.
func (e *Env) askFound(ctx context.Context, n *app.Node, c *charter.Charter, relays []string) error {
	if err := n.AskFound(ctx, c, relays); err != nil {
		return err
	}
	if !e.offline {
		if _, err := n.PostDeviceMailbox(ctx); err != nil {
			fmt.Fprintf(e.Stderr, "note: the ask did not reach the relays yet (%s); `pursuance sync` sends it\n", oneLine(err.Error()))
		}
	}
	fmt.Fprintf(e.Stderr, "Asked your root home to found %q: it does at its next sync (`pursuance up` there keeps syncing); then this device takes the pursuance up at its own next sync.\n", c.Name)
	if e.json {
		return e.printJSON(struct {
			Pursuance *event.ID `json:"pursuance"`
			Asked     bool      `json:"asked"`
		}{nil, true})
	}
	return nil
}
