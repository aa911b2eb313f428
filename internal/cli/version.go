package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/internal/buildinfo"
)

func newVersionCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of pursuance",
		Example: "  pursuance version\n  pursuance version --json\n  pursuance --version",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := buildinfo.Get()
			if e.json {
				return e.printJSON(in)
			}
			fmt.Fprintln(e.Stdout, versionLine(in))
			return nil
		},
	}
}

// versionLine is the human form of in, also what `pursuance --version`
// prints.
func versionLine(in buildinfo.Info) string {
	if in.Commit != "" {
		return fmt.Sprintf("pursuance %s (%s, commit %.12s)", in.Version, in.Go, in.Commit)
	}
	return fmt.Sprintf("pursuance %s (%s)", in.Version, in.Go)
}
