// Package cli implements the pursuance command line: flag parsing, passphrase
// and home-directory resolution, and output in human or JSON form, over the
// packages that do the work. Its names, flags and JSON outputs follow the
// product's command contract (cli.md); cmd/pursuance only calls Main.
//
// Each command is a constructor taking the shared *Env and returning a
// *cobra.Command; NewRoot lists them, so adding a command is one line there.
package cli
