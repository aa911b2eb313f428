package app

import (
	"context"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// Certificates carried between pursuances: a device of the member becomes
// one in every pursuance the member founds or joins, and a rotated root
// re-certifies its children.

// carryDevices publishes in p, a pursuance this home just founded or
// joined, the adds of the member's other current devices as the logs of
// its other pursuances hold them, parents first, so that each device is a
// device of the member in p from the start (the certificates are
// pursuance-independent: docs/devices.md §2). Best effort: a device the
// carry misses publishes its own add when it takes p up.
func (n *Node) carryDevices(ctx context.Context, p event.ID) {
	if n.dev == nil || n.dev.Member.IsZero() {
		return
	}
	ps, err := n.Pursuances(ctx)
	if err != nil {
		return
	}
	ops := map[identity.PublicKey]*state.Device{}
	gone := map[identity.PublicKey]bool{}
	for _, sum := range ps {
		if sum.ID == p {
			continue
		}
		s, err := n.State(ctx, sum.ID)
		if err != nil {
			continue
		}
		for _, d := range s.Devices(n.me()) {
			if d.Revoked {
				gone[d.Device] = true
			}
			if d.Root || d.Revoked || d.Added.IsZero() || ops[d.Device] != nil {
				continue
			}
			if op, err := n.deviceAddOp(ctx, s, d.Device); err == nil {
				ops[d.Device] = op
			}
		}
	}
	for dev := range gone {
		delete(ops, dev)
	}
	for progress := true; progress && len(ops) > 0; {
		progress = false
		s, err := n.State(ctx, p)
		if err != nil {
			return
		}
		current := map[identity.PublicKey]bool{}
		for _, d := range s.Devices(n.me()) {
			current[d.Device] = !d.Revoked
		}
		for dev, op := range ops {
			if _, seen := current[dev]; seen {
				delete(ops, dev)
				continue
			}
			if !current[op.Parent] {
				continue
			}
			if _, err := n.do(ctx, s, op, DoOptions{}); err != nil {
				if n.opts.Logger != nil {
					n.opts.Logger.Warn("carrying a device to a pursuance", "pursuance", p.Short(), "device", dev.Short(), "err", err)
				}
				delete(ops, dev)
				continue
			}
			delete(ops, dev)
			progress = true
			break // the state changed: read it again
		}
	}
}

// childCerts, on a rotated root, certifies anew with its current key each
// current child device whose own certificate names one of its replaced
// keys, so that the child can be a device in the logs founded or joined
// since the rotation, where those keys are revoked (docs/devices.md §6.1).
func (n *Node) childCerts(ctx context.Context) []childCert {
	dk := n.deviceKEM()
	if dk == nil {
		return nil
	}
	ps, err := n.Pursuances(ctx)
	if err != nil {
		return nil
	}
	var out []childCert
	seen := map[identity.PublicKey]bool{}
	for _, sum := range ps {
		s, err := n.State(ctx, sum.ID)
		if err != nil {
			continue
		}
		for _, d := range s.Devices(n.me()) {
			if d.Root || d.Revoked || d.Parent != n.id.ID() || seen[d.Device] || len(out) >= maxChildCerts {
				continue
			}
			op, err := n.deviceAddOp(ctx, s, d.Device)
			if err != nil || op.Parent == n.id.ID() {
				continue
			}
			seen[d.Device] = true
			pk := dk.Public()
			msg := state.DeviceCertMessage(n.me(), n.id.ID(), pk, d.Device, d.KEM, d.Name)
			out = append(out, childCert{Device: d.Device, Parent: n.id.ID(), ParentKEM: pk.Bytes(), Name: d.Name, KEM: d.KEM.Bytes(), Cert: state.SignDeviceCert(n.id.SigningKey(), msg)})
		}
	}
	return out
}

// takeCert, on a linked device, keeps the add a rotated root's new
// certificate c makes, with this device's proof, if it verifies.
func (n *Node) takeCert(d *homeDevice, c childCert) {
	op := &state.Device{Action: state.DeviceAdd, Identity: n.me(), Device: n.id.ID(), Parent: c.Parent,
		ParentKEM: c.ParentKEM, Name: c.Name, KEM: c.KEM, Cert: c.Cert}
	kem, err := identity.ParseKEMPublicKey(c.KEM)
	pkem, err2 := identity.ParseKEMPublicKey(c.ParentKEM)
	if err != nil || err2 != nil || !kem.Equal(n.id.KEMKey().Public()) {
		return
	}
	if d.Recert != nil && d.Recert.Parent == c.Parent {
		return
	}
	op.Proof = state.SignDeviceProof(n.id.SigningKey(), state.DeviceCertMessage(n.me(), c.Parent, pkem, n.id.ID(), kem, c.Name))
	if !op.CertValid() {
		return
	}
	d.Recert = op
}
