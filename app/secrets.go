package app

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// stateSecrets returns what the unlocked member opens p's sealed keys and
// content with, for state.Builder.SetSecrets.
func (n *Node) stateSecrets(p event.ID) (*state.Secrets, error) {
	sec, err := n.readSecrets(p)
	if err != nil {
		return nil, err
	}
	cur, retired := n.memberKEMs()
	return &state.Secrets{Member: n.me(), KEM: cur, Retired: retired, Invites: sec.Invites, Group: sec.Group}, nil
}

// secrets are the keys of one pursuance that reached this member outside
// its log, from invite codes: the invite secrets it joined with (which open
// the seeds its invite was sealed) and the group key generations the codes
// carried. They are kept in the home, sealed to the member's own KEM key,
// in secrets/NAME, NAME standing for the pursuance ID sealed (secretsName;
// docs/invites.md).
type secrets struct {
	Invites []state.InviteSecret
	Group   []keys.Key // group key generations
	Relays  []string   // relays the codes named
}

const (
	secretsDir     = "secrets"
	secretsPurpose = "home-secrets/v1/"
	secretInvite   = 1
	secretGroup    = 2
	secretRelay    = 3
)

// readSecrets reads the secrets of pursuance p kept in this home; none is
// no error. It needs the unlocked identity.
func (n *Node) readSecrets(p event.ID) (secrets, error) {
	b, err := os.ReadFile(filepath.Join(n.home, secretsDir, n.secretsName(p)))
	if errors.Is(err, fs.ErrNotExist) {
		return secrets{}, nil
	}
	if err != nil {
		return secrets{}, err
	}
	// Sealed to this member's KEM key when written: the current one, or
	// one retired since (until the file is written again).
	pt, err := keys.OpenBox(n.id.KEMKey(), secretsPurpose+p.String(), b)
	for _, k := range n.id.RetiredKEMKeys() {
		if err == nil {
			break
		}
		pt, err = keys.OpenBox(k, secretsPurpose+p.String(), b)
	}
	if err != nil {
		return secrets{}, fmt.Errorf("the keys kept for %s in this home do not open: %w", p.Short(), err)
	}
	var s secrets
	for len(pt) > 0 {
		switch {
		case pt[0] == secretInvite && len(pt) >= 1+64:
			var inv state.InviteSecret
			copy(inv.Invite[:], pt[1:33])
			copy(inv.Seed[:], pt[33:65])
			s.Invites = append(s.Invites, inv)
			pt = pt[65:]
		case pt[0] == secretGroup && len(pt) >= 1+8+32:
			k := keys.Key{Scope: keys.Scope{Pursuance: p}, Gen: binary.BigEndian.Uint64(pt[1:9])}
			copy(k.Seed[:], pt[9:41])
			s.Group = append(s.Group, k)
			pt = pt[41:]
		case pt[0] == secretRelay && len(pt) >= 2 && len(pt) >= 2+int(pt[1]):
			s.Relays = append(s.Relays, string(pt[2:2+int(pt[1])]))
			pt = pt[2+int(pt[1]):]
		default:
			return secrets{}, fmt.Errorf("the keys kept for %s in this home are malformed", p.Short())
		}
	}
	return s, nil
}

// secretPursuances lists the pursuances this home keeps secrets for: those
// it was invited into, whose logs it may not hold yet.
func (n *Node) secretPursuances() ([]event.ID, error) {
	ents, err := os.ReadDir(filepath.Join(n.home, secretsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []event.ID
	for _, e := range ents {
		if id, ok := n.keys.secretsID(e.Name()); ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// ResealSecrets seals again, to this member's current KEM key, every
// pursuance's secrets kept in the home (invite secrets, group keys from
// codes): after `pursuance id rotate`, so that a thief of the retired key
// who also reads the home's files opens none of them. A file that does
// not open is left as it is, and reported.
func (n *Node) ResealSecrets() error {
	ps, err := n.secretPursuances()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range ps {
		// Adding nothing writes the file again, sealed to the current key.
		if err := n.addSecrets(p, state.InviteSecret{}, keys.Key{}, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// addSecrets adds an invite secret and a group key generation to what the
// home keeps for p. Sealing needs only the public KEM key.
func (n *Node) addSecrets(p event.ID, invite state.InviteSecret, group keys.Key, relays []string) error {
	s, err := n.readSecrets(p)
	if err != nil {
		return err
	}
	var pt []byte
	if invite.Invite != (event.ID{}) && !slices.Contains(s.Invites, invite) {
		s.Invites = append(s.Invites, invite)
	}
	if group.Gen != 0 && slices.ContainsFunc(s.Group, func(k keys.Key) bool { return k.Gen == group.Gen && k.Seed.Equal(group.Seed) }) {
		group = keys.Key{}
	}
	for _, inv := range s.Invites {
		pt = append(append(append(pt, secretInvite), inv.Invite[:]...), inv.Seed[:]...)
	}
	for _, k := range s.Group {
		pt = binary.BigEndian.AppendUint64(append(pt, secretGroup), k.Gen)
		pt = append(pt, k.Seed[:]...)
	}
	if group.Gen != 0 {
		pt = binary.BigEndian.AppendUint64(append(pt, secretGroup), group.Gen)
		pt = append(pt, group.Seed[:]...)
	}
	var all []string
	for _, r := range append(s.Relays, relays...) {
		if len(r) <= 255 && !slices.Contains(all, r) {
			all = append(all, r)
			pt = append(append(pt, secretRelay, byte(len(r))), r...)
		}
	}
	box, err := keys.SealBox(n.pub.KEM, secretsPurpose+p.String(), pt)
	if err != nil {
		return err
	}
	dir := filepath.Join(n.home, secretsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return keystore.WriteFileAtomic(dir, n.secretsName(p), box)
}
