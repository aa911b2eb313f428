package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/state"
)

// completeArgs makes the shell complete the arguments of every command by
// the placeholders of its usage line: P a pursuance's name; MEMBER and WHO
// a member's name (WHO also role:NAME); ROLE a role; STATUS a status; TASK
// a task's ID prefix, with its title. The home is encrypted at rest, so
// nothing but statuses completes unless the keystore opens without asking
// (PURSUANCE_PASSPHRASE or --passphrase-file): completion never prompts.
func completeArgs(e *Env, cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		completeArgs(e, c)
	}
	kinds := argKinds(cmd.Use)
	if len(kinds) == 0 || kinds[0] != "P" || cmd.ValidArgsFunction != nil {
		return
	}
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) >= len(kinds) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var words []cobra.Completion
		add := func(word, about string) {
			if strings.HasPrefix(strings.ToLower(word), strings.ToLower(toComplete)) {
				words = append(words, cobra.CompletionWithDesc(word, about))
			}
		}
		ctx := cmd.Context()
		kind := kinds[len(args)]
		if kind == "STATUS" {
			for _, st := range state.StatusNames() {
				add(st, "")
			}
			return words, cobra.ShellCompDirectiveNoFileComp
		}
		n, err := e.completionNode(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer n.Close()
		if kind == "P" {
			ps, err := n.Pursuances(ctx)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			for _, p := range ps {
				add(p.Name, "")
			}
			return words, cobra.ShellCompDirectiveNoFileComp
		}
		p, err := n.Resolve(ctx, args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		s, err := n.State(ctx, p)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		switch kind {
		case "MEMBER", "WHO":
			for _, m := range s.Members() {
				add(m.Name, strings.Join(m.Roles, ", "))
			}
			if kind == "WHO" {
				for _, r := range s.Charter().RoleNames() {
					add("role:"+r, "everyone holding "+r)
				}
			}
		case "ROLE":
			for _, r := range s.Charter().RoleNames() {
				add(r, "")
			}
		case "TASK":
			for _, t := range s.Tasks() {
				if !t.Archived {
					add(t.ID.String()[:8], t.Title)
				}
			}
		}
		return words, cobra.ShellCompDirectiveNoFileComp
	}
}

// argKinds returns the placeholders of a usage line's positional
// arguments ("role assign P MEMBER ROLE" gives P, MEMBER, ROLE), without
// brackets, up to the first flag.
func argKinds(use string) []string {
	var out []string
	for _, f := range strings.Fields(use)[1:] {
		if strings.HasPrefix(f, "-") || strings.HasPrefix(f, "[-") {
			break
		}
		out = append(out, strings.Trim(f, "[]."))
	}
	return out
}

// completionNode opens the home for completion, if that is possible
// without a prompt.
func (e *Env) completionNode(ctx context.Context) (*app.Node, error) {
	term := e.Terminal
	e.Terminal = nil // never prompt while the shell waits
	defer func() { e.Terminal = term }()
	return e.openNode(ctx)
}
