package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/charter"
)

// defaultFillEvents is how many events `bench fill` writes unless told.
const defaultFillEvents = 20_000

func newBenchFillCmd(e *Env) *cobra.Command {
	var (
		events int
		name   string
		seed   uint64
	)
	cmd := &cobra.Command{
		Use:   "fill --events N [--name NAME]",
		Short: "Found a pursuance on this home and fill it with N events of yours, to measure commands and the UI",
		Long: `Found a pursuance (the desk template) on this home and fill it with N valid
events of this member, as everyday work makes them: about a quarter task
creations, the rest comments, status changes and edits, sealed like any task
event. Commands, the web UI and a node then run on a pursuance of that size
(docs/benchmarks.md, "Instant (issue 15)"). Prints the pursuance ID.`,
		Example: `  pursuance bench fill --events 20000
  pursuance bench fill --events 100000 --name Big --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if events < 1 {
				return usageErrorf("--events must be at least 1")
			}
			c, err := charter.Template("desk")
			if err != nil {
				return err
			}
			c.Name = name
			n, err := e.openNode(cmd.Context())
			if err != nil {
				return err
			}
			defer n.Close()
			start := time.Now()
			p, err := n.Create(cmd.Context(), c)
			if err != nil {
				return err
			}
			tasks, err := n.Fill(cmd.Context(), p, events, seed)
			if err != nil {
				return fmt.Errorf("bench fill: %w", err)
			}
			fmt.Fprintf(e.Stderr, "Filled %s with %d events (%d tasks) in %s.\n", name, events, tasks, time.Since(start).Round(time.Millisecond))
			if e.json {
				return e.printJSON(map[string]any{"pursuance": p.String(), "events": events, "tasks": tasks})
			}
			fmt.Fprintln(e.Stdout, p)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&events, "events", defaultFillEvents, "number of events to write")
	f.StringVar(&name, "name", "Bench", "`NAME` of the pursuance")
	f.Uint64Var(&seed, "seed", 1, "seed of the generated work")
	return cmd
}
