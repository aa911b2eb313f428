package state

import (
	"errors"
	"fmt"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// The root line (docs/devices.md §6.1): a member whose root signing key
// was replaced (id rotate) founds or joins a pursuance with a genesis or
// join signed by its current root key, carrying the replace certificates
// from its member ID down to that key. The new log then knows the author
// as the member's root device and every earlier key of the line as
// revoked, as a log that saw the replaces does.

// MaxRootLine bounds the replace certificates one root line carries: the
// rotations of one member's root key.
const MaxRootLine = 32

// checkRootLine checks a root line's shape: replace certificates of one
// member, none carrying a member KEM key (the genesis or join carries
// that).
func checkRootLine(line []Device) error {
	if len(line) > MaxRootLine {
		return fmt.Errorf("a root line of %d replacements, over the limit of %d", len(line), MaxRootLine)
	}
	for i := range line {
		d := &line[i]
		if d.Action != DeviceReplace {
			return errors.New("a root line holds replacements only")
		}
		if d.Identity.IsZero() || d.Identity != line[0].Identity {
			return errors.New("a root line names one member")
		}
		if len(d.MemberKEM) != 0 || len(d.Binding) != 0 || len(d.Boxes) != 0 || len(d.Line) != 0 {
			return errors.New("a root line's replacements carry no member KEM key, nor a line")
		}
		if d.Parent.IsZero() || d.Device.IsZero() {
			return errors.New("a root line's replacement names both keys")
		}
		if err := checkDeviceName(d.Name); err != nil {
			return err
		}
		if len(d.KEM) != identity.KEMPublicKeySize || len(d.ParentKEM) != identity.KEMPublicKeySize {
			return fmt.Errorf("device KEM keys of %d and %d bytes", len(d.KEM), len(d.ParentKEM))
		}
		if len(d.Cert) != identity.SignatureSize || len(d.Proof) != identity.SignatureSize {
			return errors.New("a device certificate has two 64-byte signatures")
		}
	}
	return nil
}

// rootLineOf returns the root line a genesis or join carries.
func rootLineOf(op Op) []Device {
	switch o := op.(type) {
	case *Genesis:
		return o.Root
	case *Join:
		return o.Root
	}
	return nil
}

// verifyRootLine checks that line leads, replacement by replacement,
// from its member ID to author, every certificate verifying and no key
// twice; it returns the member.
func verifyRootLine(line []Device, author identity.PublicKey) (identity.PublicKey, error) {
	if len(line) == 0 {
		return author, nil
	}
	member := line[0].Identity
	return member, verifyLine(line, member, member, author)
}

// verifyLine checks that line leads, replacement by replacement, from
// start to end, every replacement of member's, every certificate
// verifying and no key twice.
func verifyLine(line []Device, member, start, end identity.PublicKey) error {
	seen := map[identity.PublicKey]bool{start: true}
	prev := start
	for i := range line {
		d := &line[i]
		if d.Identity != member || d.Parent != prev {
			return fmt.Errorf("line: replacement %d does not follow from %s", i+1, prev.Short())
		}
		if seen[d.Device] {
			return fmt.Errorf("line: key %s twice", d.Device.Short())
		}
		if !d.certValid() {
			return fmt.Errorf("line: the certificate of replacement %d does not verify", i+1)
		}
		if err := d.Device.Check(); err != nil {
			return fmt.Errorf("line: %v", err)
		}
		seen[d.Device] = true
		prev = d.Device
	}
	if prev != end {
		return fmt.Errorf("root line: it ends at %s, not at the author %s", prev.Short(), end.Short())
	}
	return nil
}

// lineMember returns the member a genesis or join by author speaks for
// when it carries a valid root line.
func lineMember(op Op, author identity.PublicKey) (identity.PublicKey, bool) {
	line := rootLineOf(op)
	if len(line) == 0 {
		return identity.PublicKey{}, false
	}
	m, err := verifyRootLine(line, author)
	return m, err == nil
}

// checkLineKeys checks that the keys of a root line are free in a: none
// is another member's or another member's device (a key is used once).
func checkLineKeys(a *authState, member identity.PublicKey, line []Device) error {
	for i := range line {
		k := line[i].Device
		if a.members[k] != nil || a.former[k] != nil {
			return fmt.Errorf("root line: key %s is a member's", k.Short())
		}
		if d := a.devices[k]; d != nil && d.member != member {
			return fmt.Errorf("root line: key %s is another member's device", k.Short())
		}
	}
	return nil
}

// applyRootLine records, for a member who founded or joined with a root
// line, its author as the member's root device and every earlier key of
// the line (the member ID first) as revoked by the genesis or join.
func applyRootLine(a *authState, m *Member, author identity.PublicKey, line []Device, by event.ID) {
	if len(line) == 0 {
		return
	}
	last := &line[len(line)-1]
	for i := range line {
		k := line[i].Parent
		a.devices[k] = &deviceState{member: m.ID, kem: kemOf(line[i].ParentKEM), revoked: true, by: by}
	}
	a.devices[author] = &deviceState{member: m.ID, name: last.Name, kem: kemOf(last.KEM), added: by}
	m.Root = author
	m.BindingBy = author
}

func kemOf(raw []byte) identity.KEMPublicKey {
	k, _ := identity.ParseKEMPublicKey(raw)
	return k
}

// Entrant returns the member a genesis or join by author admits: the
// member its valid root line starts from, else the author.
func Entrant(op Op, author identity.PublicKey) identity.PublicKey {
	if m, ok := lineMember(op, author); ok {
		return m
	}
	return author
}
