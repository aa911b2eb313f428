package state

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// Devices in the scenario language (devices.txt, docs/devices.md):
//
//	an actor named MEMBER/DEVICE is a device of MEMBER: it signs with its
//	own key, in its own chain, for MEMBER.
//	device add D [parent=P] [from=X]
//	                           certify device D (an actor name) under P
//	                           (default: the signer) and publish it; the
//	                           signer may be D itself. D is handed the
//	                           member's KEM keys, as an approval code does.
//	                           from=X: D is X rotated elsewhere: X's
//	                           certificate, with the line X → D
//	device revoke D            revoke D (and what is below it), with a new
//	                           member KEM key sealed to the other devices
//	device replace N           the signer's key is replaced by device N
//	rekem                      (a member with devices) a new member KEM
//	                           key, sealed to the other devices
//	expect devices NAME N      NAME's current devices
//	expect forked NAME / expect unforked NAME   NAME's chain (a device's
//	                           or a member's key)
//	expect holds NAME LABEL / expect lacks NAME LABEL   whether NAME,
//	                           with the keys it holds, opens the key
//	                           generation key-update LABEL published
//	expect task T creator NAME

// rootOf returns the member actor of a device actor, or a itself.
func (w *world) rootOf(a *actor) *actor {
	if m, _, ok := strings.Cut(a.name, "/"); ok {
		return w.actor(m)
	}
	return a
}

// deviceKEM returns an actor's own device KEM key: a device's id's, or
// a root's own, made the first time it is needed.
func (w *world) deviceKEM(a *actor) *identity.KEMPrivateKey {
	if a.devKEM == nil {
		if a != w.rootOf(a) {
			a.devKEM = a.id.KEMKey()
		} else {
			k, err := identity.NewKEMPrivateKey(seededReader{w.rng})
			if err != nil {
				w.t.Fatal(err)
			}
			a.devKEM = k
		}
	}
	return a.devKEM
}

// memberKEMs returns the member KEM keys a holds: current first, then
// retired, newest first.
func (w *world) memberKEMs(a *actor) (*identity.KEMPrivateKey, []*identity.KEMPrivateKey) {
	if a == w.rootOf(a) {
		return a.id.KEMKey(), a.id.RetiredKEMKeys()
	}
	if len(a.kems) == 0 {
		return nil, nil
	}
	return a.kems[len(a.kems)-1], a.kems[:len(a.kems)-1]
}

// secretsOf returns what a reads with: a device reads as its member,
// with the member KEM keys it holds.
func (w *world) secretsOf(a *actor, links []keys.LinkSecret) *Secrets {
	if r := w.rootOf(a); r != a {
		cur, retired := w.memberKEMs(a)
		if cur == nil {
			return &Secrets{Member: r.id.ID(), Links: links}
		}
		return &Secrets{Member: r.id.ID(), KEM: cur, Retired: retired, Links: links}
	}
	return &Secrets{Member: a.id.ID(), KEM: a.id.KEMKey(), Retired: a.id.RetiredKEMKeys(), Links: links}
}

// give hands a the member's new KEM key k.
func (w *world) give(a *actor, k *identity.KEMPrivateKey) {
	if a != w.rootOf(a) {
		a.kems = append(a.kems, k)
		return
	}
	retired := append(slices.Clone(a.id.RetiredKEMKeys()), a.id.KEMKey())
	id, err := identity.FromKeys(a.id.Name(), a.id.SigningKey(), k)
	if err != nil {
		w.t.Fatal(err)
	}
	a.id = id.WithRetiredKEMKeys(retired)
}

// actorByKey returns the actor whose signing key is k.
func (w *world) actorByKey(k identity.PublicKey) *actor {
	for _, name := range w.order {
		if a := w.actors[name]; a.id.ID() == k {
			return a
		}
	}
	w.t.Fatalf("no actor has key %s", k.Short())
	return nil
}

// hasDevices reports whether a's member has a device besides its root in
// a's view.
func (w *world) hasDevices(a *actor) bool {
	s := w.buildFor(a)
	n := 0
	for _, d := range s.Devices(w.rootOf(a).id.ID()) {
		if !d.Revoked {
			n++
		}
	}
	return n > 1
}

// newMemberKEM makes the member's next KEM key for op, signed by a:
// bound by a's key and sealed to every device in to but a, each of
// which (and a) is handed it.
func (w *world) newMemberKEM(a *actor, to []identity.PublicKey) (pub, binding []byte, boxes []DeviceBox) {
	member := w.rootOf(a).id.ID()
	k, err := identity.NewKEMPrivateKey(seededReader{w.rng})
	if err != nil {
		w.t.Fatal(err)
	}
	slices.SortFunc(to, identity.PublicKey.Compare)
	for _, d := range to {
		if d == a.id.ID() {
			continue
		}
		da := w.actorByKey(d)
		box, err := SealIdentityKEM(w.deviceKEM(da).Public(), member, k)
		if err != nil {
			w.t.Fatal(err)
		}
		boxes = append(boxes, DeviceBox{Device: d, Box: box})
		// The device opens its box, as its home would at its next sync.
		got, err := OpenIdentityKEM(w.deviceKEM(da), member, k.Public(), box)
		if err != nil {
			w.t.Fatal(err)
		}
		w.give(da, got)
	}
	w.give(a, k)
	b := identity.SignKEMBinding(a.id.SigningKey(), k.Public())
	return k.Public().Bytes(), b[:], boxes
}

// deviceRekem is rekem for a member with devices.
func (w *world) deviceRekem(a *actor) Op {
	s := w.buildFor(a)
	member := w.rootOf(a).id.ID()
	kem, binding, boxes := w.newMemberKEM(a, s.b().auth.currentDevices(member))
	return &MemberKey{KEM: kem, Binding: binding, Boxes: boxes}
}

// cert fills in d's certificate of device dev under parent.
func (w *world) cert(d *Device, member identity.PublicKey, parent, dev *actor) {
	d.Identity, d.Parent, d.Device, d.Name = member, parent.id.ID(), dev.id.ID(), dev.name[strings.IndexByte(dev.name, '/')+1:]
	pk, dk := w.deviceKEM(parent).Public(), w.deviceKEM(dev).Public()
	d.ParentKEM, d.KEM = pk.Bytes(), dk.Bytes()
	msg := DeviceCertMessage(member, parent.id.ID(), pk, dev.id.ID(), dk, d.Name)
	d.Cert, d.Proof = SignDeviceCert(parent.id.SigningKey(), msg), SignDeviceProof(dev.id.SigningKey(), msg)
}

func (w *world) deviceOp(a *actor, args []string) Op {
	w.t.Helper()
	if len(args) < 3 {
		w.t.Fatalf("device: needs an action and a device")
	}
	root := w.rootOf(a)
	member := root.id.ID()
	dev := w.actor(args[2])
	switch args[1] {
	case "add":
		parent := a
		var from *actor
		for _, x := range args[3:] {
			if p, ok := strings.CutPrefix(x, "parent="); ok {
				parent = w.actor(p)
			}
			if f, ok := strings.CutPrefix(x, "from="); ok {
				from = w.actor(f)
			}
		}
		d := &Device{Action: DeviceAdd}
		if from != nil {
			// from=X: the device rotated from X elsewhere: X's
			// certificate and the replacement X → D (its line).
			w.cert(d, member, parent, from)
			l := Device{Action: DeviceReplace}
			w.cert(&l, member, from, dev)
			d.Line = []Device{l}
			for _, x := range args[3:] {
				if f, ok := strings.CutPrefix(x, "forge="); ok {
					// The certificate of another device, with X's line.
					w.cert(d, member, parent, w.actor(f))
				}
			}
		} else {
			w.cert(d, member, parent, dev)
		}
		// The approval code hands the device the member's KEM keys.
		cur, retired := w.memberKEMs(root)
		dev.kems = append(slices.Clone(retired), cur)
		slices.Reverse(dev.kems[:len(retired)])
		return d
	case "revoke":
		s := w.buildFor(a)
		d := &Device{Action: DeviceRevoke, Identity: member, Device: dev.id.ID()}
		var to []identity.PublicKey
		if slices.Contains(s.b().auth.currentDevices(member), d.Device) {
			cut := s.b().auth.subtree(member, d.Device)
			to = slices.DeleteFunc(s.b().auth.currentDevices(member), func(k identity.PublicKey) bool { return slices.Contains(cut, k) })
		}
		d.MemberKEM, d.Binding, d.Boxes = w.newMemberKEM(a, to)
		return d
	case "replace":
		s := w.buildFor(a)
		d := &Device{Action: DeviceReplace}
		w.cert(d, member, a, dev)
		to := append(s.b().auth.currentDevices(member), dev.id.ID())
		to = slices.DeleteFunc(to, func(k identity.PublicKey) bool { return k == a.id.ID() })
		d.MemberKEM, d.Binding, d.Boxes = w.newMemberKEM(a, to)
		// The new key holds what the old one did.
		dev.kems = append(slices.Clone(a.kems), dev.kems...)
		if a == root {
			cur, retired := w.memberKEMs(root)
			r := slices.Clone(retired)
			slices.Reverse(r)
			dev.kems = append(r, cur)
		}
		return d
	}
	w.t.Fatalf("device: unknown action %q", args[1])
	return nil
}

func (w *world) expectDevices(s *State, args []string) {
	w.t.Helper()
	switch args[0] {
	case "devices":
		n := 0
		for _, d := range s.Devices(w.actor(args[1]).id.ID()) {
			if !d.Revoked {
				n++
			}
		}
		if got := fmt.Sprint(n); got != args[2] {
			w.t.Errorf("devices of %s: got %s, want %s", args[1], got, args[2])
		}
	case "forked", "unforked":
		_, forked := s.b().forks[w.actor(args[1]).id.ID()]
		if forked != (args[0] == "forked") {
			w.t.Errorf("%s: forked %v, want %s", args[1], forked, args[0])
		}
	case "holds", "lacks":
		a := w.actor(args[1])
		x := NewBuilder(w.pursue, nil)
		for _, e := range logOrder(mapValues(w.all)) {
			if err := x.Add(e); err != nil {
				w.t.Fatal(err)
			}
		}
		x.SetSecrets(w.secretsOf(a, nil))
		full, err := x.Finish()
		if err != nil {
			w.t.Fatal(err)
		}
		_, held := full.Held()[w.id(args[2])]
		if held != (args[0] == "holds") {
			w.t.Errorf("%s %s: held %v", args[1], args[2], held)
		}
	}
}

func TestDeviceCertBindsMember(t *testing.T) {
	// A proof signed for one member's tree does not verify in another's:
	// whoever sees a request cannot enrol the device under itself.
	w := newWorld(t, 1)
	alice, mallory, phone := w.actor("alice"), w.actor("mallory"), w.actor("alice/phone")
	d := &Device{Action: DeviceAdd}
	w.cert(d, alice.id.ID(), alice, phone)
	if !d.certValid() {
		t.Fatal("a genuine certificate does not verify")
	}
	stolen := *d
	stolen.Identity, stolen.Parent = mallory.id.ID(), mallory.id.ID()
	pk := w.deviceKEM(mallory).Public()
	stolen.ParentKEM = pk.Bytes()
	stolen.Cert = SignDeviceCert(mallory.id.SigningKey(), DeviceCertMessage(mallory.id.ID(), mallory.id.ID(), pk, phone.id.ID(), w.deviceKEM(phone).Public(), d.Name))
	if stolen.certValid() {
		t.Fatal("alice's phone's proof verified in mallory's tree")
	}
}

// rootLine returns, for a genesis or join whose arguments hold "line",
// the root line of device actor a as its member's root replaced by a
// (docs/devices.md §6.1), and hands a its own KEM key as the member's;
// "line=X/Y" puts the member's key X/Y in between (two rotations);
// "lineof=X/Y" is X/Y's line, whoever signs.
func (w *world) rootLine(a *actor, args []string) []Device {
	var via *actor
	found := false
	for _, x := range args {
		if x == "line" {
			found = true
		} else if v, ok := strings.CutPrefix(x, "line="); ok {
			found, via = true, w.actor(v)
		} else if v, ok := strings.CutPrefix(x, "lineof="); ok {
			// Another's line, copied: it does not end at a.
			line := w.rootLine(w.actor(v), []string{"line"})
			return line
		}
	}
	if !found {
		return nil
	}
	root := w.rootOf(a)
	if root == a {
		w.t.Fatalf("line: %s is a member's root, not one of its later keys", a.name)
	}
	member := root.id.ID()
	var line []Device
	prev := root
	for _, next := range []*actor{via, a} {
		if next == nil {
			continue
		}
		d := Device{Action: DeviceReplace}
		w.cert(&d, member, prev, next)
		line = append(line, d)
		prev = next
	}
	a.kems = []*identity.KEMPrivateKey{a.id.KEMKey()}
	return line
}
