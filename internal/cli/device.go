package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
)

// newDeviceCmd is `pursuance device`: link this identity's other homes
// as devices, list and revoke them (docs/devices.md).
func newDeviceCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Use one identity from several homes (laptop, phone): link, list, revoke",
		Long: `One member, several homes. On the new home, ` + "`device request --name NAME`" + `
prints a request code; on a home of yours that has your pursuances,
` + "`device approve CODE`" + ` prints an approval code; back on the new home,
` + "`device accept CODE`" + ` makes it your device and fetches your pursuances.
Each device signs with its own key; others see one member.

A device may revoke only the devices it linked (and what they linked);
your first home, the root, revokes any. A revoked device writes nothing
that is accepted from then on, and reads nothing new: the revocation
gives you a new KEM key, and every key it could read is rotated.`,
		Example: `  pursuance --home ~/phone device request --name phone     # on the phone
  pursuance device approve pursuance-device-request:…       # on the laptop
  pursuance --home ~/phone device accept pursuance-device-approval:…
  pursuance device list --json
  pursuance device revoke pm1…`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	var name string
	var insecureTestKDF bool
	request := &cobra.Command{
		Use:   "request --name NAME",
		Short: "On a new home: ask to become a device of your identity (prints a request code)",
		Long: `Make this home's keys (creating its keystore if it has none: the
passphrase is asked as for ` + "`id new`" + `) and print a request code, one line, to
approve on one of your existing homes with ` + "`pursuance device approve CODE`" + `.
The code holds public keys only.`,
		Example: `  pursuance --home ~/phone device request --name phone`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("name") {
				return usageErrorf("missing --name NAME")
			}
			nm, err := identity.NormalizeName(name)
			if err != nil {
				return usageErrorf("--name: %v", err)
			}
			home, err := e.Home()
			if err != nil {
				return err
			}
			if _, err := keystore.ReadPublic(home); errors.Is(err, fs.ErrNotExist) {
				id, err := e.createIdentity(home, nm, insecureTestKDF)
				if err != nil {
					return err
				}
				e.unlocked = id
			}
			n, err := e.openNode(cmd.Context())
			if err != nil {
				return err
			}
			defer n.Close()
			req, err := n.RequestDevice(nm)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Stdout, req)
			fmt.Fprintln(e.Stderr, "Approve this code on one of your homes (`pursuance device approve CODE`), then run `pursuance device accept APPROVAL` here.")
			return nil
		},
	}
	request.Flags().StringVar(&name, "name", "", "this device's `NAME` (phone, laptop…)")
	request.Flags().BoolVar(&insecureTestKDF, "insecure-test-kdf", false, "TESTS ONLY: protect the keystore with a worthless passphrase hash")
	request.Flags().MarkHidden("insecure-test-kdf")

	approve := &cobra.Command{
		Use:   "approve CODE",
		Short: "On one of your homes: approve a device request (prints an approval code)",
		Long: `Certify the device that printed CODE as one of yours, linked from this
home, and print an approval code, one line, for ` + "`pursuance device accept`" + ` on
the new home. The approval is sealed to the new device: it carries your
KEM keys and, for each of your pursuances here, its relays and current
group key. Check that the request came from your own device: whoever it
came from reads what you read.`,
		Example: `  pursuance device approve pursuance-device-request:omZEZXZpY2VYIP…`,
		Args:    exactArgs(1, "CODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := app.ParseDeviceRequest(args[0])
			if err != nil {
				return err
			}
			n, err := e.openNode(cmd.Context())
			if err != nil {
				return err
			}
			defer n.Close()
			code, err := n.ApproveDevice(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Stdout, code)
			fmt.Fprintf(e.Stderr, "Approved %q (%s). Run `pursuance device accept CODE` on it.\n", req.Name, req.Device.Short())
			return nil
		},
	}
	accept := &cobra.Command{
		Use:     "accept CODE",
		Short:   "On the new home: become the device the approval code names; your pursuances follow",
		Example: `  pursuance --home ~/phone device accept pursuance-device-approval:…`,
		Args:    exactArgs(1, "CODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			n, err := e.openNode(ctx)
			if err != nil {
				return err
			}
			defer n.Close()
			fetch := func(ctx context.Context, p event.ID) error {
				if e.offline {
					return nil
				}
				res, err := n.Sync(ctx, p, app.SyncOptions{PullOnly: true})
				if err == nil && res.Received == 0 {
					err = errors.New("its relays gave nothing yet; `pursuance sync` later")
				}
				return err
			}
			ps, err := n.AcceptDevice(ctx, args[0], fetch)
			if !e.offline {
				for _, p := range ps {
					e.syncReport(n.Sync(ctx, p, app.SyncOptions{Quick: true}))
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stderr, "This home is now a device of %s, with %d pursuances.\n", n.Member().Short(), len(ps))
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "This identity's devices",
		Long: `List your devices as your pursuances' logs tell them. With --json:
[{"device","name","added","revoked":bool,"this":bool}], added RFC 3339
(null for the root, which came with the identity).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := e.openNode(cmd.Context())
			if err != nil {
				return err
			}
			defer n.Close()
			ds, err := n.Devices(cmd.Context())
			if err != nil {
				return err
			}
			type device struct {
				Device  identity.PublicKey `json:"device"`
				Name    string             `json:"name"`
				Added   *string            `json:"added"`
				Revoked bool               `json:"revoked"`
				This    bool               `json:"this"`
			}
			out := []device{}
			for _, d := range ds {
				var added *string
				if d.Added != 0 {
					t := time.UnixMilli(int64(d.Added)).UTC().Format(time.RFC3339)
					added = &t
				}
				out = append(out, device{d.Device, d.Name, added, d.Revoked, d.This})
			}
			if e.json {
				return e.printJSON(out)
			}
			for _, d := range out {
				note := ""
				if d.This {
					note += " (this home)"
				}
				if d.Revoked {
					note += " revoked"
				}
				fmt.Fprintf(e.Stdout, "%-16s %s%s\n", d.Name, d.Device, note)
			}
			return nil
		},
	}
	revoke := &cobra.Command{
		Use:     "revoke DEVICE",
		Short:   "Cut a device off: it writes and reads nothing new (re-keys)",
		Example: `  pursuance device revoke pm1kpdtnjqdswxg5olnbsxyym557aybd42uvtfrxkltxwv73tnrxfmtqgl6`,
		Args:    exactArgs(1, "DEVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			dev, err := identity.ParseMemberID(args[0])
			if err != nil {
				return usageErrorf("DEVICE: %v (see `pursuance device list`)", err)
			}
			n, err := e.openNode(ctx)
			if err != nil {
				return err
			}
			defer n.Close()
			done, err := n.RevokeDevice(ctx, dev)
			if !e.offline {
				for _, p := range done {
					e.syncReport(n.Sync(ctx, p, app.SyncOptions{Quick: true}))
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stderr, "Revoked %s in %d pursuances; your KEM key changed and its keys are rotated.\n", dev.Short(), len(done))
			return nil
		},
	}
	cmd.AddCommand(request, approve, accept, list, revoke)
	return cmd
}

// deviceMailbox runs the device mailbox part of a sync round on n, after
// its pursuances synced (docs/devices.md §7.1): it takes up the
// pursuances the member's other devices listed, syncs each, and posts
// this home's own list. It returns the pursuances taken up; what failed
// is reported through report and does not stop the round.
func (e *Env) deviceMailbox(ctx context.Context, n *app.Node, report func(error)) []event.ID {
	if e.offline {
		return nil
	}
	fetch := func(ctx context.Context, p event.ID) error {
		_, err := n.Sync(ctx, p, app.SyncOptions{PullOnly: true})
		return err
	}
	res, err := n.ReadDeviceMailbox(ctx, fetch)
	if err != nil {
		report(fmt.Errorf("device mailbox: %w", err))
	}
	for _, p := range res.Added {
		if _, err := n.Sync(ctx, p, app.SyncOptions{}); err != nil {
			report(fmt.Errorf("%s: %w", p.Short(), err))
		}
	}
	if _, err := n.PostDeviceMailbox(ctx); err != nil {
		report(fmt.Errorf("device mailbox: %w", err))
	}
	return res.Added
}
