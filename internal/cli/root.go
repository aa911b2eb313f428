package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/internal/buildinfo"
)

// NewRoot returns the pursuance root command with every subcommand attached,
// running in e. Each subcommand is built by a function taking e; to add a
// command, write such a function and list it in the AddCommand call below.
func NewRoot(e *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "pursuance",
		Short: "Run an organisation as a signed, encrypted log, with no trusted server",
		Long: `Pursuance lets a small organisation run itself as a log of signed,
hash-chained, encrypted events. Every member holds the whole log and checks
every event against the organisation's own rules; relays only ever see
ciphertext.

Start by creating your identity, then run your node:

  pursuance id new --name "Your Name"
  pursuance up`,
		Example: `  pursuance id new --name Alice
  pursuance id show --json
  pursuance --home /tmp/bob id new --name Bob
  PURSUANCE_PASSPHRASE=… pursuance id new --name Alice`,
		// Errors are printed once, by Run, as one line; usage is printed only
		// for usage errors.
		SilenceErrors: true,
		SilenceUsage:  true,
		// Reaching this hook means the command line parsed: any error from
		// here on is a runtime error, not a usage error. A subcommand that
		// sets its own PersistentPreRunE must call this one first.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			e.parsed = true
			return nil
		},
		// `pursuance completion bash|zsh|fish|powershell` prints a completion script.
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	// --version prints what `pursuance version` does.
	root.Version = versionLine(buildinfo.Get())
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%v", err) })

	pf := root.PersistentFlags()
	pf.StringVar(&e.home, "home", "", "home `DIR` holding this member's keystore and data (default $PURSUANCE_HOME, else $XDG_DATA_HOME/pursuance, else ~/.local/share/pursuance)")
	pf.StringVar(&e.passphraseFile, "passphrase-file", "", "read the passphrase from the first line of `FILE` (PURSUANCE_PASSPHRASE, when set, takes precedence)")
	pf.BoolVar(&e.json, "json", false, "print one JSON document on stdout instead of human output")
	pf.BoolVar(&e.offline, "offline", false, "do not talk to relays before reading and after writing (pursuance sync still does)")
	pf.BoolVar(&e.tor.flag, "tor", false, "connect to relays and other members through Tor (the home's default: `pursuance tor on|off`); onion services always go through Tor")
	pf.StringVar(&e.tor.control, "tor-control", "", "use the running tor whose control port is at `ADDR` (HOST:PORT or unix:/path) instead of starting one")
	e.tor.changed = func(name string) bool { f := pf.Lookup(name); return f != nil && f.Changed }
	pf.BoolVar(&e.unchecked, "unchecked", false, "TESTING: sign and store an action without checking it against the rules, as a malicious client would")

	root.AddCommand(
		newIDCmd(e),
		newCreateCmd(e),
		newListCmd(e),
		newTemplatesCmd(e),
		newCharterCmd(e),
		newMembersCmd(e),
		newRoleCmd(e),
		newInviteCmd(e),
		newJoinCmd(e),
		newRemoveCmd(e),
		newKeysCmd(e),
		newRotateCmd(e),
		newLeaveCmd(e),
		newProposalsCmd(e),
		newApproveCmd(e),
		newSuccessionCmd(e),
		newDeviceCmd(e),
		newTaskCmd(e),
		newLinkCmd(e),
		newLinksCmd(e),
		newHandoffCmd(e),
		newProfileCmd(e),
		newDiscoverCmd(e),
		newKnockCmd(e),
		newRequestsCmd(e),
		newAnswersCmd(e),
		newLogCmd(e),
		newExportCmd(e),
		newImportCmd(e),
		newUpCmd(e),
		newAgentCmd(e),
		newUICmd(e),
		newRelayCmd(e),
		newRelaysCmd(e),
		newSyncCmd(e),
		newVersionCmd(e),
		newTorCmd(e),
		newBenchCmd(e),
	)
	if b, _, err := root.Find([]string{"bench"}); err == nil {
		b.AddCommand(newBenchRelayCmd(e), newBenchFillCmd(e))
	}
	completeArgs(e, root)
	addExamples(root)
	return root
}

// usageError is an error in how the command was invoked: it makes Run print
// the command's usage and exit with status 2.
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func isUsageError(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// noArgs is cobra.NoArgs reported as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%q takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " "))
	}
	return nil
}

// groupRunE is the RunE of a command that only groups subcommands: alone it
// prints help; with an argument that is not a subcommand, it is a usage error.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return cmd.Help()
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
