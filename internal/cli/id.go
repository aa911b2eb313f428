package cli

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
)

func newIDCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Create or show this home's identity",
		Long: `An identity is a name, a signing key whose public half is your member ID,
and a key that others seal keys to. Its private keys are stored in the home
directory, encrypted under your passphrase.`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	cmd.AddCommand(newIDNewCmd(e), newIDShowCmd(e), newIDCheckCmd(e), newIDRotateCmd(e))
	return cmd
}

func newIDNewCmd(e *Env) *cobra.Command {
	var name string
	var insecureTestKDF bool
	cmd := &cobra.Command{
		Use:   "new --name NAME",
		Short: "Create this home's identity",
		Long: `Create this home's identity: generate its keys and store them encrypted
under a passphrase. The passphrase comes from PURSUANCE_PASSPHRASE, else
--passphrase-file, else a prompt (asked twice). Prints the new member ID on
stdout. Never replaces an existing identity.`,
		Example: `  pursuance id new --name Alice
  pursuance id new --name "Alice B." --json
  pursuance --home ~/pursuance-work --passphrase-file ~/.secret id new --name Alice`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("name") {
				return usageErrorf("missing --name NAME")
			}
			name, err := identity.NormalizeName(name)
			if err != nil {
				return usageErrorf("--name: %v", err)
			}
			home, err := e.Home()
			if err != nil {
				return err
			}
			// Refuse before asking for a passphrase; Create checks again,
			// atomically.
			if _, err := keystore.ReadPublic(home); !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("an identity already exists in %s; refusing to overwrite", home)
			}
			id, err := e.createIdentity(home, name, insecureTestKDF)
			if err != nil {
				return err
			}
			pub := id.Public()
			if e.json {
				return e.printJSON(struct {
					ID   identity.PublicKey `json:"id"`
					Name string             `json:"name"`
				}{pub.ID, pub.Name})
			}
			fmt.Fprintln(e.Stdout, pub.ID)
			fmt.Fprintf(e.Stderr, "Created the identity of %s in %s.\nFingerprint: %s\n", pub.Name, home, pub.Fingerprint())
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "your display `NAME`: up to 64 bytes, no control characters")
	// For tests only: store the keys under an Argon2id cost so low that it
	// protects nothing, so that scripts can create many identities quickly.
	cmd.Flags().BoolVar(&insecureTestKDF, "insecure-test-kdf", false, "TESTS ONLY: protect the keystore with a worthless passphrase hash")
	cmd.Flags().MarkHidden("insecure-test-kdf")
	return cmd
}

func newIDShowCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Show this home's identity and its safety fingerprint",
		Long: `Show this home's identity: name, member ID and safety fingerprint. It needs
no passphrase, since only public keys are shown.

Compare fingerprints with another member over a channel you trust (in person,
a call): if they match, you hold each other's real keys.`,
		Example: `  pursuance id show
  pursuance id show --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := e.Home()
			if err != nil {
				return err
			}
			// The member ID: after a rotation of the signing key
			// (keystore version 3) it is kept beside the new key.
			member, pub, err := keystore.ReadMember(home)
			if err != nil {
				return explain(err, home)
			}
			fp := identity.Fingerprint(member, pub.KEM)
			if e.json {
				return e.printJSON(struct {
					ID          identity.PublicKey `json:"id"`
					Name        string             `json:"name"`
					Fingerprint string             `json:"fingerprint"`
				}{member, pub.Name, fp})
			}
			fmt.Fprintf(e.Stdout, "name:        %s\nmember ID:   %s\nfingerprint: %s\n", pub.Name, member, fp)
			return nil
		},
	}
}

func newIDCheckCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check that the passphrase opens this home's identity",
		Long: `Check that the passphrase opens this home's identity and that the keystore
is intact. Exits 0 when it does, 1 otherwise; prints nothing on stdout.`,
		Example: `  pursuance id check
  pursuance --passphrase-file ~/.secret id check`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := e.Home()
			if err != nil {
				return err
			}
			id, _, err := e.unlock(home)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stderr, "The passphrase opens the identity of %s (%s).\n", id.Name(), id.ID())
			return nil
		},
	}
}

// explain rewords the keystore errors a user meets often.
func explain(err error, home string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no identity in %s; create one with `pursuance id new --name NAME`", home)
	case errors.Is(err, keystore.ErrExists):
		return fmt.Errorf("an identity already exists in %s; refusing to overwrite", home)
	case errors.Is(err, keystore.ErrWrongPassphrase):
		return fmt.Errorf("wrong passphrase for the identity in %s", home)
	}
	return err
}
