package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
)

// stopAfterKeystoreVar, when set, makes `id rotate` exit at once after
// writing the new keystore, before publishing anything: what a crash there
// leaves, for the tests of its recovery (id_rotate_signing.txtar).
const stopAfterKeystoreVar = "PURSUANCE_TEST_STOP_AFTER_KEYSTORE"

func newIDRotateCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Give this identity new signing and KEM keys and re-key every pursuance to them",
		Long: `Give this identity a new signing key and a new KEM key — the key other
members seal keys to — and publish them in every pursuance of this home, as
a replacement signed by the old signing key: from then on the members accept
your events signed by the new key only, new key generations go to the new
KEM key, and every key that was sealed to the old one is rotated. Your member
ID, your roles and your memberships stay. The old KEM keys stay in the
keystore (version 3) to open what was sealed to them.

Use it when a copy of this home's keystore may have been taken (an old
backup, a lost laptop): what is written from now on does not open with it,
and the old signing key signs nothing the members accept once they have
seen the replacement. The home's files stay encrypted under the first key
(docs/keystore.md), so a thief who has this home's current keystore and its
passphrase still has everything. Your safety fingerprint changes; tell the
members you compared it with. If this home's node (pursuance up) is
running, restart it. New pursuances this home founds or joins afterwards
carry the certificate of the rotation (docs/devices.md §6.1).

On a linked device (pursuance device), the device's own signing and KEM
keys are replaced, certified by the old key, and the member's KEM key
with them (sealed to your other devices); your member ID stays.`,
		Example: `  pursuance id rotate
  pursuance id rotate --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			home, err := e.Home()
			if err != nil {
				return err
			}
			// The passphrase once: it unlocks the home, re-seals the
			// keystore and settles the rotation.
			cur, pass, err := e.unlock(home)
			if err != nil {
				return err
			}
			e.unlocked, e.rotatePass = cur, pass
			dn, err := e.openNode(ctx)
			if err != nil {
				return err
			}
			// On a linked device the keystore holds the device's own
			// signing and KEM keys: both are replaced, and the member's
			// KEM key with them (docs/devices.md §6.2).
			device, member := dn.IsDevice(), dn.Member()
			dn.Close()
			id, err := keystore.RotateSigning(home, pass, e.Rand)
			if err != nil {
				return explain(err, home)
			}
			if e.Getenv(stopAfterKeystoreVar) != "" {
				// Tests only: stop as a crash here would, nothing
				// deferred run, nothing published.
				os.Exit(3)
			}
			e.unlocked = id
			// openNode publishes the replacement in every pursuance
			// (finishRotation) before anything else; a crash before it
			// is finished by the next command that opens the home.
			n, err := e.openNode(ctx)
			if err != nil {
				return err
			}
			defer n.Close()
			if n.RotationPending() {
				return errors.New("the keystore holds the new key, but publishing its replacement stopped (the next command that opens this home finishes it)")
			}
			fp := n.MemberFingerprint()
			if device {
				fmt.Fprintf(e.Stderr, "New device key for %s (a device of member %s), and a new member KEM key sealed to your other devices. Safety fingerprint now: %s (it changed: tell the members you compared it with).\n", id.Name(), member, fp)
			} else {
				fmt.Fprintf(e.Stderr, "New signing and KEM keys for %s; your member ID stays %s. Safety fingerprint now: %s (it changed: tell the members you compared it with).\n", id.Name(), member, fp)
			}
			left := e.rotated
			type done struct {
				Pursuance event.ID `json:"pursuance"`
				Name      string   `json:"name"`
				Left      []string `json:"left"`
			}
			out := []done{}
			list, err := n.Pursuances(ctx)
			if err != nil {
				return err
			}
			for _, s := range list {
				l, ok := left[s.ID]
				if !ok {
					continue
				}
				out = append(out, done{s.ID, s.Name, append([]string{}, l...)})
				fmt.Fprintf(e.Stderr, "%s: your new key is published; keys sealed to the old one are rotated.\n", s.Name)
				e.reportStale(l)
				if e.offline {
					continue
				}
				if urls, _ := n.RelayURLs(ctx, s.ID); len(urls) > 0 {
					res, err := n.Sync(ctx, s.ID, app.SyncOptions{Quick: true})
					if err != nil || relayErrorCount(res) > 0 {
						fmt.Fprintf(e.Stderr, "%s: not every relay took it yet; `pursuance sync` sends it later.\n", s.Name)
					}
				}
			}
			slices.SortFunc(out, func(a, b done) int { return a.Pursuance.Compare(b.Pursuance) })
			if e.json {
				return e.printJSON(struct {
					ID          identity.PublicKey `json:"id"`
					Fingerprint string             `json:"fingerprint"`
					Pursuances  []done             `json:"pursuances"`
				}{member, fp, out})
			}
			fmt.Fprintln(e.Stdout, fp)
			return nil
		},
	}
}
