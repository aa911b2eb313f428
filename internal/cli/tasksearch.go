package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/search"
	"github.com/pursuance/pursuance/state"
)

func newTaskSearchCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "search P WORDS...",
		Short: "Find tasks by words of their title, body or comments",
		Long: `Find the tasks you can read whose title, body or a comment holds every word
(also as the start of a longer word: "leak" finds "leaked"; case and accents
do not count), best match first. The index is built in memory from your
home's log and never written anywhere (docs/web.md, "Search").`,
		Example: `  pursuance task search desk leaked memo
  pursuance task search desk letterhead --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErrorf("%q takes P and at least one word, got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				ix, err := search.Build(cmd.Context(), app.VisibleTasks(s, n.Me().ID, nil))
				if err != nil {
					return err
				}
				defer ix.Close()
				hits, err := ix.Query(cmd.Context(), strings.Join(args[1:], " "))
				if err != nil {
					return usageErrorf("%v", err)
				}
				type hitJSON struct {
					Task    event.ID `json:"task"`
					Title   string   `json:"title"`
					Where   string   `json:"where"`
					Snippet string   `json:"snippet"`
				}
				out := make([]hitJSON, len(hits))
				for i, h := range hits {
					out[i] = hitJSON{h.Task, h.Title, h.Where, strings.NewReplacer(search.MarkStart, "", search.MarkEnd, "").Replace(h.Snippet)}
				}
				if e.json {
					return e.printJSON(out)
				}
				if len(hits) == 0 {
					fmt.Fprintln(e.Stderr, "No task holds those words.")
				}
				for _, h := range hits {
					snip := strings.NewReplacer(search.MarkStart, "*", search.MarkEnd, "*").Replace(h.Snippet)
					fmt.Fprintf(e.Stdout, "%s  %s  (%s: %s)\n", h.Task.Short()[:8], h.Title, h.Where, oneLine(snip))
				}
				return nil
			})
		},
	}
}
