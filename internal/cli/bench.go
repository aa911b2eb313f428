package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/internal/bench"
)

func newBenchCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine: ingest and relay throughput, against a baseline in the same run",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}
	cmd.AddCommand(newBenchIngestCmd(e))
	return cmd
}

func newBenchIngestCmd(e *Env) *cobra.Command {
	var (
		events, authors, batch int
		dir                    string
	)
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Time verified ingest of a signed log: the naive path against the real one",
		Long: `Generate a valid signed log of N events by A authors, then ingest it twice
into fresh SQLite stores, in batches as a catch-up from a relay delivers them:

  naive  verifies every signature, one at a time, on one core;
  real   verifies one signature per contiguous chain segment (hash links vouch
         for the rest), spread over all cores, and checks each batch while
         the one before it is being written.

Both write with the same batched transactions, so the ratio measures the
verification strategy (and the overlap of checking with writing). Progress
goes to stderr.`,
		Example: `  pursuance bench ingest --events 100000 --authors 20
  pursuance bench ingest --events 10000 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if events < 1 || authors < 1 || batch < 1 {
				return usageErrorf("--events, --authors and --batch must be at least 1")
			}
			tmp := dir
			if tmp == "" {
				d, err := os.MkdirTemp("", "pursuance-bench-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(d)
				tmp = d
			}
			rep, err := bench.RunIngest(cmd.Context(), events, authors, batch, tmp, func(s string) {
				fmt.Fprintf(e.Stderr, "bench: %s\n", s)
			})
			if err != nil {
				return fmt.Errorf("bench ingest: %w", err)
			}
			if e.json {
				return e.printJSON(rep)
			}
			fmt.Fprintf(e.Stdout, "events %d, authors %d, batch %d, %.1f MB, %d cores\n",
				rep.Events, rep.Authors, rep.Batch, float64(rep.Bytes)/1e6, rep.Cores)
			fmt.Fprintf(e.Stdout, "naive   %8.3f s  %10.0f events/s\n", rep.NaiveS, rep.NaivePerS)
			fmt.Fprintf(e.Stdout, "ingest  %8.3f s  %10.0f events/s\n", rep.IngestS, rep.IngestPerS)
			fmt.Fprintf(e.Stdout, "ratio   %8.2f×\n", rep.Ratio)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&events, "events", 100_000, "number of events in the generated log")
	f.IntVar(&authors, "authors", 20, "number of authors (chains) in the log")
	f.IntVar(&batch, "batch", bench.DefaultBatch, "events per ingest batch")
	f.StringVar(&dir, "dir", "", "`DIR` for the benchmark's stores (default: a temporary directory, removed after)")
	return cmd
}
