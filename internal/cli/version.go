package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is the release version, set at build time with
// -ldflags "-X github.com/pursuance/pursuance/internal/cli.version=v1.2.3".
var version = "dev"

func newVersionCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of pursuance",
		Example: "  pursuance version\n  pursuance version --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			commit := ""
			if info, ok := debug.ReadBuildInfo(); ok {
				for _, s := range info.Settings {
					if s.Key == "vcs.revision" {
						commit = s.Value
					}
				}
			}
			if e.json {
				return e.printJSON(struct {
					Version string `json:"version"`
					Go      string `json:"go"`
					Commit  string `json:"commit,omitempty"`
				}{version, runtime.Version(), commit})
			}
			if commit != "" {
				fmt.Fprintf(e.Stdout, "pursuance %s (%s, commit %.12s)\n", version, runtime.Version(), commit)
			} else {
				fmt.Fprintf(e.Stdout, "pursuance %s (%s)\n", version, runtime.Version())
			}
			return nil
		},
	}
}
