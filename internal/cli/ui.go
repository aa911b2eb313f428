package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newUICmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "ui",
		Short: "Print a login link to the web UI of this home's running node",
		Long: `Print a login link to the web UI of the node that ` + "`pursuance up`" + ` runs on
this home, for a browser on this machine. A link works once: a browser
that used it stays logged in while the node runs, and this command gives
a link for the next one. Run it as the user that runs the node: the link
is read from the home's running.json, which only that user can read.

With --json: {"ui", "login"}, the UI's address and the link.`,
		Example: "  pursuance ui\n  pursuance --home /tmp/bob ui",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := e.Home()
			if err != nil {
				return err
			}
			rf, ok := runningNode(home)
			if !ok && nodeLocked(home) {
				return fmt.Errorf("the node on this home (%s) is starting (its first sync round): try again in a moment", home)
			}
			if !ok {
				return fmt.Errorf("no node is running on this home (%s): `pursuance up` starts one and prints a login link", home)
			}
			if e.json {
				return e.printJSON(map[string]string{"ui": rf.UI, "login": rf.Login})
			}
			fmt.Fprintf(e.Stderr, "Web UI at %s. Log in with this link, which works once:\n", rf.UI)
			fmt.Fprintln(e.Stdout, rf.Login)
			return nil
		},
	}
}
