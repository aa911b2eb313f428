package identity

import (
	"errors"
	"fmt"
	"io"
)

// MaxNameLen is the maximum length of a display name, in bytes of UTF-8.
const MaxNameLen = 64

// kemBindingLabel starts the message a signing key signs to vouch for a KEM
// public key, so that the signature cannot be mistaken for any other.
const kemBindingLabel = "pursuance/v1/kem-binding"

// ErrBadName is returned (wrapped) when a display name is empty, too long, not
// valid UTF-8, not in normal form, or contains a character names may not
// have (ValidateName).
var ErrBadName = errors.New("not a valid name")

// ErrBadKEMBinding is returned (wrapped) when a KEM public key does not carry a
// valid binding signature by the signing key it is presented with.
var ErrBadKEMBinding = errors.New("KEM key is not signed by the member's signing key")

// Identity is a member's private identity: a display name, the signing key
// whose public half is the member ID, and the KEM key that sealed keys are
// addressed to. It is secret. An Identity is immutable and safe for concurrent
// use.
type Identity struct {
	name    string
	sign    *SigningKey
	kem     *KEMPrivateKey
	retired []*KEMPrivateKey // earlier KEM keys, oldest first: they open what was sealed to them
	pub     Public
	// After a rotation of the signing key (RotateSigning): the member ID,
	// which stays the first signing key's; the seed the home's files at
	// rest are encrypted under, which stays the first signing seed; and,
	// until its replacement is published everywhere, the previous
	// signing key, which signs that replacement.
	member   PublicKey
	homeSeed []byte
	prev     *SigningKey
}

// MaxRetiredKEMKeys bounds how many earlier KEM keys an identity keeps. A
// member who rotated its KEM key more often than this loses the oldest,
// and with them what was sealed only to those.
const MaxRetiredKEMKeys = 256

// New generates a fresh identity named name, reading 64 bytes from rand, which
// must be a cryptographically secure source (crypto/rand.Reader outside of
// tests). An invalid name is an error wrapping ErrBadName.
func New(name string, rand io.Reader) (*Identity, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	sign, err := NewSigningKey(rand)
	if err != nil {
		return nil, err
	}
	kemKey, err := NewKEMPrivateKey(rand)
	if err != nil {
		return nil, err
	}
	return FromKeys(name, sign, kemKey)
}

// FromKeys assembles an identity from existing keys, as when a keystore is
// opened. It signs the KEM binding afresh (Ed25519 is deterministic, so the
// binding is always the same for the same keys). An invalid name is an error
// wrapping ErrBadName.
func FromKeys(name string, sign *SigningKey, kemKey *KEMPrivateKey) (*Identity, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if sign == nil || kemKey == nil {
		return nil, errors.New("identity: missing signing or KEM key")
	}
	id := &Identity{name: name, sign: sign, kem: kemKey}
	id.pub = Public{
		Name:       name,
		ID:         sign.Public(),
		KEM:        kemKey.Public(),
		KEMBinding: SignKEMBinding(sign, kemKey.Public()),
	}
	return id, nil
}

// WithRetiredKEMKeys returns a copy of id that also keeps the earlier KEM
// keys retired, oldest first (as a keystore restores them). At most
// MaxRetiredKEMKeys are kept, the newest.
func (id *Identity) WithRetiredKEMKeys(retired []*KEMPrivateKey) *Identity {
	c := *id
	c.retired = append([]*KEMPrivateKey(nil), retired...)
	if len(c.retired) > MaxRetiredKEMKeys {
		c.retired = c.retired[len(c.retired)-MaxRetiredKEMKeys:]
	}
	return &c
}

// RotateKEM returns a copy of id with a fresh KEM key, generated from 32
// bytes of rand, the current one joining the retired keys. The signing key,
// and so the member ID, stay. New key generations are sealed to the new
// key once the member has published it (a member-key event); the retired
// keys keep opening what was sealed to them before.
func (id *Identity) RotateKEM(rand io.Reader) (*Identity, error) {
	k, err := NewKEMPrivateKey(rand)
	if err != nil {
		return nil, err
	}
	next, err := FromKeys(id.name, id.sign, k)
	if err != nil {
		return nil, err
	}
	return next.WithRetiredKEMKeys(append(append([]*KEMPrivateKey(nil), id.retired...), id.kem)), nil
}

// RotateSigning returns a copy of id with a fresh signing key and a fresh
// KEM key (the current one joining the retired keys), read from rand. The
// member ID and the home seed stay; the current signing key becomes the
// pending previous key (PendingReplace), which signs the replacement
// (docs/keys.md, "A member's own signing key"). A rotation while one is
// pending is refused: publish the pending one first.
func (id *Identity) RotateSigning(rand io.Reader) (*Identity, error) {
	if id.prev != nil {
		return nil, errors.New("identity: a signing key rotation is still pending: finish it first")
	}
	sign, err := NewSigningKey(rand)
	if err != nil {
		return nil, err
	}
	k, err := NewKEMPrivateKey(rand)
	if err != nil {
		return nil, err
	}
	next, err := FromKeys(id.name, sign, k)
	if err != nil {
		return nil, err
	}
	next = next.WithRetiredKEMKeys(append(append([]*KEMPrivateKey(nil), id.retired...), id.kem))
	return next.WithHome(id.Member(), id.HomeSeed(), id.sign)
}

// WithHome returns a copy of id that speaks for member, keeps its home at
// rest under homeSeed and has prev (nil when none) as the pending
// previous signing key: what a keystore restores after a rotation of the
// signing key.
func (id *Identity) WithHome(member PublicKey, homeSeed []byte, prev *SigningKey) (*Identity, error) {
	if len(homeSeed) != SeedSize {
		return nil, fmt.Errorf("identity: home seed is %d bytes, want %d", len(homeSeed), SeedSize)
	}
	c := *id
	c.member, c.homeSeed, c.prev = member, append([]byte(nil), homeSeed...), prev
	if member == id.sign.Public() {
		c.member = PublicKey{}
	}
	if string(homeSeed) == string(id.sign.Seed()) {
		c.homeSeed = nil
	}
	return &c, nil
}

// Settled returns a copy of id without the pending previous signing key:
// its replacement is published.
func (id *Identity) Settled() *Identity {
	c := *id
	c.prev = nil
	return &c
}

// Member returns the member ID this identity speaks for: the first
// signing key's public half, which a rotation of the signing key keeps.
func (id *Identity) Member() PublicKey {
	if !id.member.IsZero() {
		return id.member
	}
	return id.sign.Public()
}

// Rotated reports whether the signing key was rotated: the member ID is
// no longer its public half.
func (id *Identity) Rotated() bool { return !id.member.IsZero() || id.homeSeed != nil }

// HomeSeed returns the seed the home's keys at rest derive from: the
// first signing seed, which a rotation keeps. It is secret.
func (id *Identity) HomeSeed() []byte {
	if id.homeSeed != nil {
		return append([]byte(nil), id.homeSeed...)
	}
	return id.sign.Seed()
}

// PendingReplace returns the previous signing key while its replacement
// by the current one is not yet published in every pursuance, else nil.
// It is secret.
func (id *Identity) PendingReplace() *SigningKey { return id.prev }

// RetiredKEMKeys returns the identity's earlier KEM keys, oldest first. They
// are secret.
func (id *Identity) RetiredKEMKeys() []*KEMPrivateKey {
	return append([]*KEMPrivateKey(nil), id.retired...)
}

// KEMKeyFor returns the identity's KEM private key, current or retired,
// whose public half is pub, or nil.
func (id *Identity) KEMKeyFor(pub KEMPublicKey) *KEMPrivateKey {
	if id.kem.Public().Equal(pub) {
		return id.kem
	}
	for _, k := range id.retired {
		if k.Public().Equal(pub) {
			return k
		}
	}
	return nil
}

// Name returns the identity's display name.
func (id *Identity) Name() string { return id.name }

// ID returns the public half of the signing key: the member ID, unless
// the signing key was rotated (then Member is the member ID, and ID the
// key of its root device).
func (id *Identity) ID() PublicKey { return id.sign.Public() }

// SigningKey returns the identity's signing key. It is secret.
func (id *Identity) SigningKey() *SigningKey { return id.sign }

// KEMKey returns the identity's KEM private key. It is secret.
func (id *Identity) KEMKey() *KEMPrivateKey { return id.kem }

// Public returns what other members may know of the identity, with a valid
// KEM binding.
func (id *Identity) Public() Public { return id.pub }

// Public is the public side of an identity: what a member publishes about
// itself so that others can recognise its signatures and seal keys to it.
// A Public received from anyone must be checked with Verify before use.
type Public struct {
	// Name is the member's display name. It is not covered by KEMBinding.
	Name string
	// ID is the member's signing public key; its text form is the member ID.
	ID PublicKey
	// KEM is the key that keys are sealed to for this member.
	KEM KEMPublicKey
	// KEMBinding is ID's signature over KEM; see SignKEMBinding.
	KEMBinding [SignatureSize]byte
}

// Verify checks that p's name is valid and that p.KEM carries a valid binding
// signature by p.ID. It returns an error wrapping ErrBadName or
// ErrBadKEMBinding otherwise.
func (p Public) Verify() error {
	if err := ValidateName(p.Name); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return VerifyKEMBinding(p.ID, p.KEM, p.KEMBinding[:])
}

// Fingerprint returns the safety fingerprint of p's two public keys; see the
// package-level Fingerprint.
func (p Public) Fingerprint() string { return Fingerprint(p.ID, p.KEM) }

// kemBindingMessage returns the message a signing key signs to vouch for
// kemPub: the label "pursuance/v1/kem-binding" followed by the 1216 bytes of
// the KEM public key. Ed25519 itself binds the signature to the signing key.
func kemBindingMessage(kemPub KEMPublicKey) []byte {
	msg := make([]byte, 0, len(kemBindingLabel)+KEMPublicKeySize)
	msg = append(msg, kemBindingLabel...)
	return append(msg, kemPub[:]...)
}

// SignKEMBinding returns sign's signature vouching that kemPub belongs to the
// same member, under the domain-separation label "pursuance/v1/kem-binding".
func SignKEMBinding(sign *SigningKey, kemPub KEMPublicKey) [SignatureSize]byte {
	var sig [SignatureSize]byte
	copy(sig[:], sign.Sign(kemBindingMessage(kemPub)))
	return sig
}

// VerifyKEMBinding returns nil if sig is signPub's binding signature over
// kemPub as made by SignKEMBinding, and an error wrapping ErrBadKEMBinding
// otherwise.
func VerifyKEMBinding(signPub PublicKey, kemPub KEMPublicKey, sig []byte) error {
	if signPub.IsZero() || kemPub.IsZero() || !signPub.Verify(kemBindingMessage(kemPub), sig) {
		return fmt.Errorf("identity: %w (member %s)", ErrBadKEMBinding, signPub)
	}
	return nil
}
