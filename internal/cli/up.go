package cli

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/identity/keystore"
)

func newUpCmd(e *Env) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start this member's node and web UI (not yet available)",
		Long: `Start this member's node (with an embedded relay when none is configured)
and the web UI on localhost, and print its URL.

Not yet: the node arrives in a later release. For now, up reports what this
home holds and exits successfully.`,
		Example: `  pursuance up
  pursuance --home /tmp/bob up --listen 127.0.0.1:8080`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := e.Home()
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Stderr, "pursuance: not yet: the node and web UI arrive in a later release.")
			pub, err := keystore.ReadPublic(home)
			switch {
			case err == nil:
				fmt.Fprintf(e.Stderr, "Your identity %s (%s) is ready in %s; `pursuance id show` shows its fingerprint.\n", pub.Name, pub.ID, home)
			case errors.Is(err, fs.ErrNotExist):
				fmt.Fprintf(e.Stderr, "For now, create your identity with `pursuance id new --name NAME` (home: %s).\n", home)
			default:
				fmt.Fprintf(e.Stderr, "The identity in %s could not be read: %s\n", home, oneLine(err.Error()))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "`ADDR` for the web UI (not yet used)")
	return cmd
}
