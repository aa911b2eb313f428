package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/hkdf"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// Rotation of a member's own signing key (docs/keys.md, "A member's own
// signing key"). The member's root device key is replaced: the keystore
// first holds the new key, with the previous one pending
// (keystore.RotateSigning), then FinishRotation publishes, signed by the
// previous key, a device replace in every pursuance of the member, and
// the caller drops the pending key (keystore.Settle). A crash between the
// two leaves a keystore with a pending key, and the next FinishRotation
// publishes what is missing.

// rootDeviceKEMLabel derives a root device's own KEM key from its signing
// seed: the replace names it (the certificate binds it), and a crash
// before the device file is written must not lose it, so it is derived
// again, never drawn.
const rootDeviceKEMLabel = "pursuance/v1/root-device-kem"

// rootDeviceKEM returns the own device KEM key of the root device whose
// signing key is k.
func rootDeviceKEM(k *identity.SigningKey) (*identity.KEMPrivateKey, error) {
	seed := make([]byte, identity.KEMPrivateKeySize)
	if _, err := hkdf.New(sha256.New, k.Seed(), nil, []byte(rootDeviceKEMLabel)).Read(seed); err != nil {
		return nil, err
	}
	defer clear(seed)
	return identity.KEMPrivateKeyFromBytes(seed)
}

// RotationPending reports whether this home's signing key was rotated and
// its replacement is not yet published everywhere (FinishRotation).
func (n *Node) RotationPending() bool { return n.id.PendingReplace() != nil }

// FinishRotation publishes the pending replacement of this home's signing
// key (identity.Identity.PendingReplace) in every pursuance where the
// previous key is still the member's current root: a device replace
// signed by the previous key, naming the new key and its device KEM key,
// and carrying the member's new KEM key (the keystore's current one)
// sealed to the member's other devices. Then it heals every pursuance,
// as RotatedIdentity does. It returns the pursuances it published in, and what
// healing left, by pursuance. Nothing is synced. It is idempotent: a
// pursuance that has the replacement already is left alone, so after a
// crash it finishes what is missing. The caller then drops the pending key
// (keystore.Settle) and Unlocks the node with the settled identity.
func (n *Node) FinishRotation(ctx context.Context) (published []event.ID, left map[event.ID][]string, err error) {
	prev := n.id.PendingReplace()
	if prev == nil {
		return nil, nil, errors.New("app: no signing key rotation is pending in this home")
	}
	if n.IsDevice() {
		return n.finishDeviceRotation(ctx, prev)
	}
	newDev, err := rootDeviceKEM(n.id.SigningKey())
	if err != nil {
		return nil, nil, err
	}
	// The device file first: this home's own device KEM key and the
	// member's new KEM key, so that it opens what either seals whatever
	// happens next.
	oldDev := n.deviceKEM()
	d := n.ensureDevice()
	d.Member = n.me()
	d.DevKEM = newDev.Bytes()
	if k := n.id.KEMKey().Bytes(); !slices.ContainsFunc(d.MemberKEMs, func(b []byte) bool { return string(b) == string(k) }) {
		d.MemberKEMs = append(d.MemberKEMs, k)
	}
	if l := len(d.Line); l == 0 || d.Line[l-1].Device != n.id.ID() {
		parentKEM := oldDev
		if parentKEM == nil || parentKEM.Public().Equal(newDev.Public()) {
			if parentKEM, err = rootDeviceKEM(prev); err != nil {
				return nil, nil, err
			}
		}
		d.Line = append(d.Line, n.lineLink(prev, parentKEM.Public(), newDev.Public()))
	}
	if err := n.saveDevice(d); err != nil {
		return nil, nil, err
	}
	ps, err := n.st.Pursuances(ctx)
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, p := range ps {
		s, err := n.State(ctx, p)
		if err != nil {
			return published, nil, err
		}
		done, err := n.publishReplace(ctx, s, prev, oldDev, newDev, n.id.KEMKey())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
			continue
		}
		if done {
			published = append(published, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return published, nil, err
	}
	left, err = n.rekeyAll(ctx)
	return published, left, err
}

// publishReplace publishes in s the replacement of prev, one of the
// member's devices (the root, or a linked device), by this home's signing
// key with device KEM key newDev, carrying the member's new KEM key k,
// unless prev is no current device there.
func (n *Node) publishReplace(ctx context.Context, s *state.State, prev *identity.SigningKey, oldDev, newDev, k *identity.KEMPrivateKey) (bool, error) {
	me := n.me()
	m, ok := s.Member(me)
	if !ok {
		return false, nil
	}
	var root *state.DeviceInfo
	devs := s.Devices(me)
	for i, dv := range devs {
		if dv.Device == prev.Public() && !dv.Revoked {
			root = &devs[i]
		}
	}
	if root == nil {
		return false, nil // replaced already, or this home was no device of the member here
	}
	// The previous root's own device KEM key: the one on record, else
	// the one this home kept, else the one derived from its key.
	parentKEM := root.KEM
	if parentKEM.IsZero() && oldDev != nil && !oldDev.Public().Equal(newDev.Public()) {
		parentKEM = oldDev.Public()
	}
	if parentKEM.IsZero() {
		k, err := rootDeviceKEM(prev)
		if err != nil {
			return false, err
		}
		parentKEM = k.Public()
	}
	if m.KEM.Equal(k.Public()) {
		return false, fmt.Errorf("your new KEM key is published already, by a member-key the replacement should carry: rotate again")
	}
	kem := newDev.Public()
	msg := state.DeviceCertMessage(me, prev.Public(), parentKEM, n.id.ID(), kem, n.id.Name())
	op := &state.Device{
		Action: state.DeviceReplace, Identity: me, Device: n.id.ID(),
		Parent: prev.Public(), ParentKEM: parentKEM.Bytes(), Name: n.id.Name(), KEM: kem.Bytes(),
		Cert: state.SignDeviceCert(prev, msg), Proof: state.SignDeviceProof(n.id.SigningKey(), msg),
		MemberKEM: k.Public().Bytes(),
	}
	b := identity.SignKEMBinding(prev, k.Public())
	op.Binding = b[:]
	// The member's new KEM key, sealed to every device it keeps: the new
	// root itself and the current devices but the one replaced.
	box, err := state.SealIdentityKEM(kem, me, k)
	if err != nil {
		return false, err
	}
	op.Boxes = append(op.Boxes, state.DeviceBox{Device: n.id.ID(), Box: box})
	for _, dv := range devs {
		if dv.Revoked || dv.Device == prev.Public() {
			continue
		}
		if dv.KEM.IsZero() {
			return false, fmt.Errorf("device %s has no KEM key on record", dv.Device.Short())
		}
		box, err := state.SealIdentityKEM(dv.KEM, me, k)
		if err != nil {
			return false, err
		}
		op.Boxes = append(op.Boxes, state.DeviceBox{Device: dv.Device, Box: box})
	}
	slices.SortFunc(op.Boxes, func(x, y state.DeviceBox) int { return x.Device.Compare(y.Device) })
	e, err := n.signWith(ctx, s, op, prev)
	if err != nil {
		return false, err
	}
	if err := s.Check(e); err != nil {
		return false, refusal(err)
	}
	return true, n.put(ctx, e)
}

// lineLink returns the certificate of the replacement of prev by this
// home's signing key, as a root line carries it (docs/devices.md §6.1):
// the replace's certificate without the member KEM key.
func (n *Node) lineLink(prev *identity.SigningKey, parentKEM, kem identity.KEMPublicKey) state.Device {
	me := n.me()
	msg := state.DeviceCertMessage(me, prev.Public(), parentKEM, n.id.ID(), kem, n.id.Name())
	return state.Device{
		Action: state.DeviceReplace, Identity: me, Device: n.id.ID(),
		Parent: prev.Public(), ParentKEM: parentKEM.Bytes(), Name: n.id.Name(), KEM: kem.Bytes(),
		Cert: state.SignDeviceCert(prev, msg), Proof: state.SignDeviceProof(n.id.SigningKey(), msg),
	}
}

// rootLine returns the root line a genesis or join this home signs
// carries: none for a root never rotated; its rotations' certificates
// for one that was. A home rotated before the line was kept has none to
// show, and says so.
func (n *Node) rootLine() ([]state.Device, error) {
	if !n.id.Rotated() {
		return nil, nil
	}
	if n.dev == nil || len(n.dev.Line) == 0 || n.dev.Line[len(n.dev.Line)-1].Device != n.id.ID() {
		return nil, errors.New("this home's signing key was rotated, and it keeps no certificate of the rotation to show a new pursuance: rotate again (`pursuance id rotate`), which keeps one")
	}
	return slices.Clone(n.dev.Line), nil
}

// deviceRotationKEMLabel derives the member's new KEM key a linked
// device's rotation publishes from the device's new signing seed: a crash
// before every pursuance has the replace must not make a second one, so
// it is derived again, never drawn.
const deviceRotationKEMLabel = "pursuance/v1/device-rotation-member-kem"

// finishDeviceRotation is FinishRotation on a linked device
// (docs/devices.md §6.2): the device's own key prev is replaced by its new
// one (and its device KEM key by the keystore's new KEM key), with a new
// member KEM key, derived from the new signing seed, sealed to the
// member's other devices.
func (n *Node) finishDeviceRotation(ctx context.Context, prev *identity.SigningKey) ([]event.ID, map[event.ID][]string, error) {
	seed := make([]byte, identity.KEMPrivateKeySize)
	if _, err := hkdf.New(sha256.New, n.id.SigningKey().Seed(), nil, []byte(deviceRotationKEMLabel)).Read(seed); err != nil {
		return nil, nil, err
	}
	k, err := identity.KEMPrivateKeyFromBytes(seed)
	clear(seed)
	if err != nil {
		return nil, nil, err
	}
	// The device file first, as on the root.
	if err := n.addMemberKEM(k); err != nil {
		return nil, nil, err
	}
	var oldDev *identity.KEMPrivateKey
	if r := n.id.RetiredKEMKeys(); len(r) > 0 {
		oldDev = r[0]
	}
	ps, err := n.st.Pursuances(ctx)
	if err != nil {
		return nil, nil, err
	}
	var published []event.ID
	var errs []error
	for _, p := range ps {
		s, err := n.State(ctx, p)
		if err != nil {
			return published, nil, err
		}
		done, err := n.publishReplace(ctx, s, prev, oldDev, n.id.KEMKey(), k)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
			continue
		}
		if done {
			published = append(published, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return published, nil, err
	}
	left, err := n.rekeyAll(ctx)
	return published, left, err
}

// MemberFingerprint returns the safety fingerprint of the member this
// home speaks for, with its current KEM key.
func (n *Node) MemberFingerprint() string {
	k, _ := n.memberKEMs()
	return identity.Fingerprint(n.me(), k.Public())
}
