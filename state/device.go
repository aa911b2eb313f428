package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// Devices (docs/devices.md): one member, several homes, each signing its
// own chain with its own key. The tree of devices is rooted at the
// member's identity key; a device is certified by a parent device, and
// only a device's ancestors (or the device itself) may revoke it.

// Device actions.
const (
	DeviceAdd     uint64 = 1 // certify a new device
	DeviceRevoke  uint64 = 2 // cut a device and its descendants off
	DeviceReplace uint64 = 3 // the author's key is replaced by a new device key (id rotate)
)

// Limits of devices.
const (
	MaxDevices    = 16   // current devices of one member, the root included
	MaxDeviceName = 64   // bytes of a device's name
	DeviceBoxSize = 1168 // HPKE encapsulation, a 32-byte KEM seed, tag
)

// Labels of the device certificate's signatures.
const (
	labelDeviceCert   = "pursuance/v1/device-cert"
	labelDeviceParent = "pursuance/v1/device-cert-parent"
	labelDeviceProof  = "pursuance/v1/device-cert-device"
	labelIdentityKEM  = "pursuance/v1/identity-kem"
)

// Device adds, revokes or replaces a device of a member (ops.md §4.34).
type Device struct {
	Action   uint64             `cbor:"1,keyasint"`
	Identity identity.PublicKey `cbor:"2,keyasint"` // the member whose device it is
	Device   identity.PublicKey `cbor:"3,keyasint"` // the device added, revoked, or (replace) the new key
	// Add and replace: the certificate.
	Parent    identity.PublicKey `cbor:"4,keyasint,omitzero"`  // the certifying device (replace: the author)
	ParentKEM []byte             `cbor:"5,keyasint,omitempty"` // the parent's own device KEM key
	Name      string             `cbor:"6,keyasint,omitempty"`
	KEM       []byte             `cbor:"7,keyasint,omitempty"` // the device's own KEM key
	Cert      []byte             `cbor:"8,keyasint,omitempty"` // the parent's signature of DeviceCertMessage
	Proof     []byte             `cbor:"9,keyasint,omitempty"` // the device's signature of DeviceCertMessage
	// Revoke and replace: the identity's new KEM key, bound by the
	// author, and its seed sealed to each remaining device.
	MemberKEM []byte      `cbor:"10,keyasint,omitempty"`
	Binding   []byte      `cbor:"11,keyasint,omitempty"`
	Boxes     []DeviceBox `cbor:"12,keyasint,omitempty"` // sorted by device, no repeats
	// Add only: the device's line (docs/devices.md §6.2), the replace
	// certificates of its rotations from Device to the key the add makes
	// a device, oldest first. Absent: Device is that key.
	Line []Device `cbor:"13,keyasint,omitempty"`
}

// Added returns the key an add makes a device of the member: the last key
// of its line, else Device.
func (op *Device) Added() identity.PublicKey {
	if len(op.Line) > 0 {
		return op.Line[len(op.Line)-1].Device
	}
	return op.Device
}

// lineKeys returns the keys an add's line retires: Device and every key
// of the line before the last.
func (op *Device) lineKeys() []identity.PublicKey {
	if len(op.Line) == 0 {
		return nil
	}
	out := []identity.PublicKey{op.Device}
	for _, d := range op.Line[:len(op.Line)-1] {
		out = append(out, d.Device)
	}
	return out
}

// DeviceBox is the identity's new KEM seed sealed to one device's own KEM
// key (SealIdentityKEM).
type DeviceBox struct {
	Device identity.PublicKey `cbor:"1,keyasint"`
	Box    []byte             `cbor:"2,keyasint"`
}

func (Device) Kind() event.Kind { return event.KindDevice }

// DeviceCertMessage is what a device's parent and the device itself sign
// to certify it (docs/devices.md §2). It names no pursuance: one
// certificate is good in every log of the member.
func DeviceCertMessage(member, parent identity.PublicKey, parentKEM identity.KEMPublicKey, device identity.PublicKey, kem identity.KEMPublicKey, name string) []byte {
	m := make([]byte, 0, len(labelDeviceCert)+1+32*3+2*len(kem)+len(name))
	m = append(m, labelDeviceCert...)
	m = append(m, 0)
	m = append(m, member[:]...)
	m = append(m, parent[:]...)
	m = append(m, parentKEM[:]...)
	m = append(m, device[:]...)
	m = append(m, kem[:]...)
	return append(m, name...)
}

func labelled(label string, msg []byte) []byte {
	return append(append([]byte(label), 0), msg...)
}

// SignDeviceCert returns the parent's certificate signature.
func SignDeviceCert(parent *identity.SigningKey, msg []byte) []byte {
	return parent.Sign(labelled(labelDeviceParent, msg))
}

// SignDeviceProof returns the device's proof that it holds its key.
func SignDeviceProof(device *identity.SigningKey, msg []byte) []byte {
	return device.Sign(labelled(labelDeviceProof, msg))
}

// CertValid reports whether an add's or a replace's two certificate
// signatures verify (what a relay-side admission can check alone).
func (op *Device) CertValid() bool { return op.certValid() }

// certValid checks both signatures of an add or replace.
func (op *Device) certValid() bool {
	kem, err := identity.ParseKEMPublicKey(op.KEM)
	if err != nil {
		return false
	}
	pkem, err := identity.ParseKEMPublicKey(op.ParentKEM)
	if err != nil {
		return false
	}
	msg := DeviceCertMessage(op.Identity, op.Parent, pkem, op.Device, kem, op.Name)
	if !op.Parent.Verify(labelled(labelDeviceParent, msg), op.Cert) || !op.Device.Verify(labelled(labelDeviceProof, msg), op.Proof) {
		return false
	}
	return len(op.Line) == 0 || verifyLine(op.Line, op.Identity, op.Device, op.Added()) == nil
}

// identityKEMPurpose binds a device box to the member and the key it
// carries.
func identityKEMPurpose(member identity.PublicKey, pub identity.KEMPublicKey) string {
	h := sha256.Sum256(pub[:])
	return labelIdentityKEM + "/" + hex.EncodeToString(member[:]) + "/" + hex.EncodeToString(h[:])
}

// SealIdentityKEM seals the member's new KEM key to one of its devices.
func SealIdentityKEM(device identity.KEMPublicKey, member identity.PublicKey, k *identity.KEMPrivateKey) ([]byte, error) {
	return keys.SealBox(device, identityKEMPurpose(member, k.Public()), k.Bytes())
}

// OpenIdentityKEM opens a DeviceBox with the device's own KEM key: the
// member's KEM key pub.
func OpenIdentityKEM(device *identity.KEMPrivateKey, member identity.PublicKey, pub identity.KEMPublicKey, box []byte) (*identity.KEMPrivateKey, error) {
	b, err := keys.OpenBox(device, identityKEMPurpose(member, pub), box)
	if err != nil {
		return nil, err
	}
	k, err := identity.KEMPrivateKeyFromBytes(b)
	if err != nil {
		return nil, err
	}
	if !k.Public().Equal(pub) {
		return nil, errors.New("the box holds another key")
	}
	return k, nil
}

// checkDeviceOp checks a device op's shape.
func checkDeviceOp(o *Device) error {
	if o.Identity.IsZero() || o.Device.IsZero() {
		return errors.New("a device op names the member and the device")
	}
	cert := !o.Parent.IsZero() || len(o.ParentKEM) != 0 || o.Name != "" || len(o.KEM) != 0 || len(o.Cert) != 0 || len(o.Proof) != 0
	rekey := len(o.MemberKEM) != 0 || len(o.Binding) != 0 || len(o.Boxes) != 0
	switch o.Action {
	case DeviceAdd, DeviceReplace:
		if o.Parent.IsZero() {
			return errors.New("a device certificate names the parent")
		}
		if err := checkDeviceName(o.Name); err != nil {
			return err
		}
		if len(o.KEM) != identity.KEMPublicKeySize || len(o.ParentKEM) != identity.KEMPublicKeySize {
			return fmt.Errorf("device KEM keys of %d and %d bytes", len(o.KEM), len(o.ParentKEM))
		}
		if len(o.Cert) != identity.SignatureSize || len(o.Proof) != identity.SignatureSize {
			return errors.New("a device certificate has two 64-byte signatures")
		}
		if o.Action == DeviceAdd && rekey {
			return errors.New("an added device carries no new member KEM key")
		}
		if len(o.Line) > 0 {
			if o.Action != DeviceAdd {
				return errors.New("only an add carries a device's line")
			}
			if err := checkRootLine(o.Line); err != nil {
				return err
			}
		}
	case DeviceRevoke:
		if cert {
			return errors.New("a revocation carries no certificate")
		}
	default:
		return fmt.Errorf("device action %d (1 add, 2 revoke, 3 replace)", o.Action)
	}
	if o.Action != DeviceAdd {
		if len(o.MemberKEM) != identity.KEMPublicKeySize {
			return fmt.Errorf("member KEM key of %d bytes", len(o.MemberKEM))
		}
		if len(o.Binding) != identity.SignatureSize {
			return fmt.Errorf("KEM binding of %d bytes", len(o.Binding))
		}
	}
	return checkDeviceBoxes(o.Boxes)
}

func checkDeviceBoxes(boxes []DeviceBox) error {
	if len(boxes) > MaxDevices {
		return fmt.Errorf("%d device boxes, over the limit of %d", len(boxes), MaxDevices)
	}
	for i, b := range boxes {
		if len(b.Box) != DeviceBoxSize {
			return fmt.Errorf("device box of %d bytes", len(b.Box))
		}
		if i > 0 && boxes[i-1].Device.Compare(b.Device) >= 0 {
			return errors.New("device boxes not sorted by device, or repeated")
		}
	}
	return nil
}

func checkDeviceName(s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return errors.New("a device needs a name")
	case len(s) > MaxDeviceName:
		return fmt.Errorf("the device name is %d bytes long, over the limit of %d", len(s), MaxDeviceName)
	case !utf8.ValidString(s) || strings.ContainsAny(s, "\n\r\t"):
		return errors.New("the device name must be one line of text")
	}
	return nil
}

// deviceState is a device certified in the log.
type deviceState struct {
	member  identity.PublicKey
	parent  identity.PublicKey // zero: this is (or was) the root
	name    string
	kem     identity.KEMPublicKey
	added   event.ID // zero for a root replaced before anything else
	revoked bool
	by      event.ID // the revoke, replace, removal or leave that revoked it
}

// rootOf returns the key of a member's root device.
func (m *Member) rootOf() identity.PublicKey {
	if !m.Root.IsZero() {
		return m.Root
	}
	return m.ID
}

// deviceOf returns the member whose device key k is, and whether the
// device is current; ok is false when k is no device of any member.
func (a *authState) deviceOf(k identity.PublicKey) (member identity.PublicKey, current, ok bool) {
	if d := a.devices[k]; d != nil {
		if d.member == k && !d.revoked && a.members[k] == nil {
			return identity.PublicKey{}, false, false // a root whose member left
		}
		return d.member, !d.revoked, true
	}
	if m := a.members[k]; m != nil && m.Root.IsZero() {
		return k, true, true
	}
	return identity.PublicKey{}, false, false
}

// deviceKEM returns a device's own KEM key on record; zero if none (a
// root that has certified nothing yet).
func (a *authState) deviceKEM(k identity.PublicKey) identity.KEMPublicKey {
	if d := a.devices[k]; d != nil {
		return d.kem
	}
	return identity.KEMPublicKey{}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// parentOf returns a device's parent; zero for the root.
func (a *authState) parentOf(k identity.PublicKey) identity.PublicKey {
	if d := a.devices[k]; d != nil {
		return d.parent
	}
	return identity.PublicKey{}
}

// isAncestor reports whether anc is a strict ancestor of k in its tree.
func (a *authState) isAncestor(anc, k identity.PublicKey) bool {
	for i, p := 0, a.parentOf(k); !p.IsZero() && i <= len(a.devices); i, p = i+1, a.parentOf(p) {
		if p == anc {
			return true
		}
	}
	return false
}

// currentDevices returns a member's current device keys, sorted: its
// root and every certified device not revoked.
func (a *authState) currentDevices(member identity.PublicKey) []identity.PublicKey {
	m := a.members[member]
	if m == nil {
		return nil
	}
	out := []identity.PublicKey{m.rootOf()}
	for k, d := range a.devices {
		if d.member == member && !d.revoked && k != out[0] {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, identity.PublicKey.Compare)
	return out
}

// subtree returns k and every current device below it.
func (a *authState) subtree(member, k identity.PublicKey) []identity.PublicKey {
	out := []identity.PublicKey{k}
	for _, d := range a.currentDevices(member) {
		if d != k && a.isAncestor(k, d) {
			out = append(out, d)
		}
	}
	return out
}

// dropDevices revokes every device of a member who leaves or is removed.
func (a *authState) dropDevices(member identity.PublicKey, by event.ID) {
	for _, d := range a.devices {
		if d.member == member && !d.revoked {
			d.revoked, d.by = true, by
		}
	}
}

// checkDeviceCurrent checks that the author of n is a current device of
// the member it speaks for, at n's parents. A device adding itself is
// checked by checkDevice instead.
func (b *builder) checkDeviceCurrent(a *authState, n *node) error {
	if d, ok := n.op.(*Device); ok && d.Added() == *n.e.Author && d.Action == DeviceAdd {
		return nil
	}
	if len(rootLineOf(n.op)) != 0 {
		return nil // the root line is checked with the genesis or join
	}
	member, current, ok := a.deviceOf(*n.e.Author)
	switch {
	case !ok && *n.e.Author == *n.member:
		return nil // not a member: permitted says so
	case !ok || member != *n.member:
		return fmt.Errorf("not permitted: %s is not a device of %s", n.e.Author.Short(), b.name(a, *n.member))
	case !current:
		return fmt.Errorf("not permitted: device %s of %s was revoked", n.e.Author.Short(), b.name(a, *n.member))
	}
	return nil
}

// checkDevice decides a device op by member (docs/devices.md §4).
func (b *builder) checkDevice(a *authState, n *node, op *Device, member identity.PublicKey) error {
	author := *n.e.Author
	if op.Identity != member {
		return fmt.Errorf("device: the op names member %s, but its author speaks for %s", op.Identity.Short(), b.name(a, member))
	}
	m := a.members[member]
	if op.Action == DeviceAdd || op.Action == DeviceReplace {
		if !op.certValid() {
			return errors.New("device: the certificate does not verify")
		}
		if err := op.Device.Check(); err != nil {
			return fmt.Errorf("device: %v", err)
		}
		keys := []identity.PublicKey{op.Device}
		if op.Action == DeviceAdd && len(op.Line) > 0 {
			keys = append(op.lineKeys(), op.Added())
		}
		for _, k := range keys {
			if _, used := a.devices[k]; used || a.members[k] != nil || a.former[k] != nil {
				return fmt.Errorf("device: key %s is already a member's or a device's: a device key is used once", k.Short())
			}
		}
		if len(a.currentDevices(member)) >= MaxDevices && op.Action == DeviceAdd {
			return fmt.Errorf("device: %s has %d devices, the limit: revoke one first", b.name(a, member), MaxDevices)
		}
	}
	if op.Action == DeviceAdd || op.Action == DeviceReplace {
		if known := a.deviceKEM(op.Parent); !known.IsZero() && !bytesEqual(known[:], op.ParentKEM) {
			return fmt.Errorf("device: the certificate gives %s another device KEM key than the one on record", op.Parent.Short())
		}
	}
	switch op.Action {
	case DeviceAdd:
		pm, current, ok := a.deviceOf(op.Parent)
		if !ok || pm != member || !current {
			return fmt.Errorf("device: the parent %s is not a current device of %s", op.Parent.Short(), b.name(a, member))
		}
		if author != op.Added() {
			if am, current, ok := a.deviceOf(author); !ok || am != member || !current {
				return fmt.Errorf("device: %s is not a current device of %s", author.Short(), b.name(a, member))
			}
		}
		return nil
	case DeviceRevoke:
		dm, current, ok := a.deviceOf(op.Device)
		switch {
		case !ok || dm != member:
			return fmt.Errorf("device: %s is not a device of %s", op.Device.Short(), b.name(a, member))
		case !current:
			return fmt.Errorf("device: %s was revoked already", op.Device.Short())
		case op.Device == m.rootOf():
			return fmt.Errorf("device: %s is the root of %s, which cannot be revoked: replace it (id rotate), or remove the member", op.Device.Short(), b.name(a, member))
		case op.Device == author:
			// It would make the member's next KEM key itself.
			return fmt.Errorf("device: a device cannot revoke itself: revoke %s from the device that linked it, or one above", author.Short())
		case !a.isAncestor(author, op.Device):
			return fmt.Errorf("device: only a device's ancestors may revoke it, and %s is not one of %s's", author.Short(), op.Device.Short())
		}
		n.w().revokes = a.subtree(member, op.Device)
	case DeviceReplace:
		if op.Parent != author {
			return errors.New("device: a replacement is certified by the key it replaces")
		}
		n.w().revokes = []identity.PublicKey{author}
	}
	remaining := slices.DeleteFunc(a.currentDevices(member), func(k identity.PublicKey) bool { return slices.Contains(n.revokes, k) })
	if op.Action == DeviceReplace {
		remaining = append(remaining, op.Device)
		slices.SortFunc(remaining, identity.PublicKey.Compare)
	}
	return b.checkNewMemberKEM(a, m, author, op.MemberKEM, op.Binding, op.Boxes, remaining)
}

// checkNewMemberKEM checks a new KEM key of a member published by device
// author: its binding, and one box for each of the member's devices that
// must learn it (every device in devs but the author).
func (b *builder) checkNewMemberKEM(a *authState, m *Member, author identity.PublicKey, raw, binding []byte, boxes []DeviceBox, devs []identity.PublicKey) error {
	k, err := identity.ParseKEMPublicKey(raw)
	if err != nil {
		return fmt.Errorf("member key: %v", err)
	}
	if err := identity.VerifyKEMBinding(author, k, binding); err != nil {
		return fmt.Errorf("member key: %v", err)
	}
	if m.KEM.Equal(k) {
		return fmt.Errorf("member key: that is already the KEM key of %s", b.name(a, m.ID))
	}
	want := slices.DeleteFunc(slices.Clone(devs), func(d identity.PublicKey) bool { return d == author })
	if len(boxes) != len(want) {
		return fmt.Errorf("member key: sealed to %d devices, but %s has %d others to give it to", len(boxes), b.name(a, m.ID), len(want))
	}
	for i, box := range boxes {
		if box.Device != want[i] {
			return fmt.Errorf("member key: sealed to %s, which is not one of the member's other current devices", box.Device.Short())
		}
	}
	return nil
}

// applyDevice folds an accepted device op into a.
func applyDevice(a *authState, id event.ID, member identity.PublicKey, author identity.PublicKey, op *Device, revokes []identity.PublicKey) {
	m := a.members[member]
	if m == nil {
		return
	}
	kem, _ := identity.ParseKEMPublicKey(op.KEM)
	if op.Action != DeviceRevoke && a.deviceKEM(op.Parent).IsZero() {
		// The root's own device KEM key, first given by a certificate
		// it signed: what the member's new KEM keys are sealed to for it.
		pkem, _ := identity.ParseKEMPublicKey(op.ParentKEM)
		if d := a.devices[op.Parent]; d != nil {
			d.kem = pkem
		} else {
			a.devices[op.Parent] = &deviceState{member: member, kem: pkem}
		}
	}
	switch op.Action {
	case DeviceAdd:
		if len(op.Line) > 0 {
			// A device rotated since its parent certified it: its
			// earlier keys are revoked here as where it rotated.
			for _, k := range op.lineKeys() {
				a.devices[k] = &deviceState{member: member, parent: op.Parent, revoked: true, by: id}
			}
			last := &op.Line[len(op.Line)-1]
			a.devices[last.Device] = &deviceState{member: member, parent: op.Parent, name: last.Name, kem: kemOf(last.KEM), added: id}
			return
		}
		a.devices[op.Device] = &deviceState{member: member, parent: op.Parent, name: op.Name, kem: kem, added: id}
		return
	case DeviceRevoke:
		for _, k := range revokes {
			a.revokeDevice(member, k, id)
		}
	case DeviceReplace:
		old := a.devices[author] // recorded by now: the op names its KEM key
		d := &deviceState{member: member, parent: old.parent, name: op.Name, kem: kem, added: id}
		if old.parent.IsZero() {
			m.Root = op.Device // the root, replaced; its key stays, revoked
		}
		a.devices[op.Device] = d
		for _, c := range a.devices {
			if c.parent == author && c.member == member {
				c.parent = op.Device
			}
		}
		old.revoked, old.by = true, id
	}
	k, err := identity.ParseKEMPublicKey(op.MemberKEM)
	if err == nil {
		m.KEM, m.KEMSince, m.BindingBy = k, id, author
		copy(m.Binding[:], op.Binding)
	}
}

// revokeDevice revokes one device of member (the root included).
func (a *authState) revokeDevice(member, k identity.PublicKey, by event.ID) {
	d := a.devices[k]
	if d == nil {
		d = &deviceState{member: member}
		a.devices[k] = d
	}
	d.revoked, d.by = true, by
}

// DeviceInfo is one device of a member, as State.Devices lists them.
type DeviceInfo struct {
	Device  identity.PublicKey
	Parent  identity.PublicKey // zero for the root
	Name    string
	KEM     identity.KEMPublicKey // the device's own KEM key; zero for a root
	Added   event.ID              // the add or replace; zero for the root device (it came with the member)
	Revoked bool
	By      event.ID // what revoked it
	Root    bool
}

// Devices lists a member's devices: the root first, then the others by
// key. A member who never linked a device has one, its root.
func (s *State) Devices(member identity.PublicKey) []DeviceInfo {
	a := s.b().auth
	m := a.members[member]
	if m == nil {
		m = a.former[member]
	}
	if m == nil {
		return nil
	}
	var out []DeviceInfo
	if m.Root.IsZero() && a.devices[member] == nil {
		out = append(out, DeviceInfo{Device: member, Root: true, Name: m.Name, Revoked: a.members[member] == nil})
	}
	for k, d := range a.devices {
		if d.member == member {
			di := DeviceInfo{Device: k, Parent: d.parent, Name: d.name, KEM: d.kem, Added: d.added, Revoked: d.revoked, By: d.by, Root: d.parent.IsZero()}
			if di.Name == "" {
				di.Name = m.Name
			}
			out = append(out, di)
		}
	}
	slices.SortFunc(out, func(x, y DeviceInfo) int {
		if x.Device == member {
			return -1
		}
		if y.Device == member {
			return 1
		}
		return x.Device.Compare(y.Device)
	})
	return out
}

// MemberOf returns the member a key speaks for: the member whose device
// it is (current or revoked), or the key itself.
func (s *State) MemberOf(k identity.PublicKey) identity.PublicKey {
	if d := s.b().auth.devices[k]; d != nil {
		return d.member
	}
	return k
}

// strongRevoke applies strong revocation (docs/devices.md §4): an event
// of a device that an accepted revocation cuts off is invalid unless it
// is in the revocation's causal past — after it or concurrent with it.
//
// So is an event that gives the member's new KEM key to such a device
// (a rotation by another device that had not seen the revocation): the
// revoked device must not learn the key that replaces the one it held.
func (b *builder) strongRevoke(p int32, n *node) error {
	ks := []identity.PublicKey{*n.e.Author}
	for _, d := range deviceBoxes(n.op) {
		ks = append(ks, d.Device)
	}
	for i, k := range ks {
		what := "its device"
		if i > 0 {
			what = "it gives the member's KEM key to device"
		}
		for _, r := range b.devRestrictBy[k] {
			if !b.inPast(n, b.nodes[r]) {
				return fmt.Errorf("invalidated: %s %s was revoked by %s, which this event is not before", what, k.Short(), b.nodes[r].e.ID().Short())
			}
		}
		for _, r := range b.devPinnedBy[k] {
			if r > p && n.e.Seq > b.nodes[r].seen(n.author) {
				return fmt.Errorf("invalidated: %s %s was revoked by concurrent event %s", what, k.Short(), b.nodes[r].e.ID().Short())
			}
		}
	}
	return nil
}

// deviceBoxes returns the devices an op gives a member KEM key to.
func deviceBoxes(op Op) []DeviceBox {
	switch o := op.(type) {
	case *MemberKey:
		return o.Boxes
	case *Device:
		return o.Boxes
	}
	return nil
}

// MemberKEMBox is a member KEM key sealed to one device, as an accepted
// event of the log carries it.
type MemberKEMBox struct {
	Event event.ID
	KEM   identity.KEMPublicKey
	Box   []byte
}

// MemberKEMBoxes returns, in log order, the member KEM keys accepted
// events of member sealed to device (device ops and member-keys).
func (s *State) MemberKEMBoxes(member, device identity.PublicKey) []MemberKEMBox {
	var out []MemberKEMBox
	for _, n := range s.b().nodes {
		if !n.accepted || *n.member != member {
			continue
		}
		var raw []byte
		switch o := n.op.(type) {
		case *MemberKey:
			raw = o.KEM
		case *Device:
			raw = o.MemberKEM
		default:
			continue
		}
		k, err := identity.ParseKEMPublicKey(raw)
		if err != nil {
			continue
		}
		for _, b := range deviceBoxes(n.op) {
			if b.Device == device {
				out = append(out, MemberKEMBox{Event: n.e.ID(), KEM: k, Box: b.Box})
			}
		}
	}
	return out
}
