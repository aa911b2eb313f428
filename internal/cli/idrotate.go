package cli

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
)

func newIDRotateCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Give this identity a new KEM key and re-key every pursuance to it",
		Long: `Give this identity a new KEM key — the key other members seal keys to —
and publish it in every pursuance of this home: new key generations go to
the new key, and every key that was sealed to the old one is rotated. The
old key stays in the keystore (version 2) to open what was sealed to it.

Use it when a copy of this home's keystore may have been taken (an old
backup, a lost laptop): what is written from now on does not open with it.
Your member ID (the signing key) does not change, so a thief who has the
keystore and its passphrase can still sign as you: if you fear that, ask to
be removed and join again with a new identity. Your safety fingerprint
changes; tell the members you compared it with. If this home's node
(pursuance up) is running, restart it.`,
		Example: `  pursuance id rotate
  pursuance id rotate --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			home, err := e.Home()
			if err != nil {
				return err
			}
			if _, err := keystore.ReadPublic(home); err != nil {
				return explain(err, home)
			}
			if dn, err := e.openNode(ctx); err == nil && dn.IsDevice() {
				// A linked device: its keystore's KEM key is its own
				// device key; the member's KEM key is kept beside it.
				defer dn.Close()
				left, err := dn.RotateMemberKEM(ctx)
				if err != nil {
					return err
				}
				for p, l := range left {
					e.reportStale(l)
					if !e.offline {
						e.syncReport(dn.Sync(ctx, p, app.SyncOptions{Quick: true}))
					}
				}
				fmt.Fprintln(e.Stderr, "New member KEM key, sealed to your other devices and published; keys sealed to the old one are rotated.")
				return nil
			} else if err == nil {
				dn.Close()
			}
			pass, err := e.Passphrase(false)
			if err != nil {
				return err
			}
			id, err := keystore.RotateKEM(home, pass, e.Rand)
			if err != nil {
				return explain(err, home)
			}
			e.unlocked = id
			pub := id.Public()
			fmt.Fprintf(e.Stderr, "New KEM key for %s. Safety fingerprint now: %s (it changed: tell the members you compared it with).\n", pub.Name, pub.Fingerprint())
			n, err := e.openNode(ctx)
			if err != nil {
				return err
			}
			defer n.Close()
			left, err := n.RotatedIdentity(ctx, id)
			if err != nil {
				return fmt.Errorf("the keystore holds the new key, but re-keying stopped (the next write or sync of each pursuance finishes it): %w", err)
			}
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
				}{pub.ID, pub.Fingerprint(), out})
			}
			fmt.Fprintln(e.Stdout, pub.Fingerprint())
			return nil
		},
	}
}
