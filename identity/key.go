package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/edwards25519"
)

// PublicKeySize is the size of a member's signing public key in bytes.
const PublicKeySize = ed25519.PublicKeySize

// SignatureSize is the size of an Ed25519 signature in bytes.
const SignatureSize = ed25519.SignatureSize

// memberIDPrefix starts every member ID, so that a member ID is recognisable
// wherever it is pasted.
const memberIDPrefix = "pm1"

// memberIDChecksumLabel separates the member-ID checksum hash from every other
// hash in Pursuance.
const memberIDChecksumLabel = "pursuance/v1/member-id-checksum"

// memberIDChecksumSize is the number of checksum bytes appended to the key in
// a member ID: 3 bytes, so that 35 bytes encode to exactly 56 base32 letters
// and a random typo passes unnoticed with probability 2⁻²⁴.
const memberIDChecksumSize = 3

var memberIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrBadMemberID is returned (wrapped) when a member ID does not parse: wrong
// prefix, wrong length, a letter outside the alphabet, or a checksum mismatch.
var ErrBadMemberID = errors.New("not a valid member ID")

// PublicKey is a member's Ed25519 signing public key. Its text form, the member
// ID, is "pm1" followed by 56 lowercase base32 letters that encode the key and
// a 3-byte checksum.
type PublicKey [PublicKeySize]byte

// String returns the member ID.
func (k PublicKey) String() string {
	var buf [PublicKeySize + memberIDChecksumSize]byte
	copy(buf[:], k[:])
	sum := memberIDChecksum(k)
	copy(buf[PublicKeySize:], sum[:])
	return memberIDPrefix + memberIDEncoding.EncodeToString(buf[:])
}

// Short returns the first letters of the member ID after its prefix, for
// display where space is scarce. It is not unique and never parsed back.
func (k PublicKey) Short() string {
	return k.String()[len(memberIDPrefix) : len(memberIDPrefix)+10]
}

// Equal reports whether k and o are the same key, in constant time.
func (k PublicKey) Equal(o PublicKey) bool {
	return subtle.ConstantTimeCompare(k[:], o[:]) == 1
}

// Compare orders keys by their bytes, for canonical orderings.
func (k PublicKey) Compare(o PublicKey) int { return bytes.Compare(k[:], o[:]) }

// IsZero reports whether k is the all-zero key, which no member has.
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// Verify reports whether sig is k's valid Ed25519 signature of msg.
func (k PublicKey) Verify(msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	return ed25519.Verify(k[:], msg, sig)
}

// MarshalText implements encoding.TextMarshaler with the member ID.
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts only a valid
// member ID.
func (k *PublicKey) UnmarshalText(b []byte) error {
	p, err := ParseMemberID(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// ParseMemberID parses a member ID. Surrounding white space is ignored and
// upper case is accepted; anything else that is not exactly a member ID with a
// matching checksum is an error wrapping ErrBadMemberID.
func ParseMemberID(s string) (PublicKey, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if !strings.HasPrefix(s, memberIDPrefix) {
		return PublicKey{}, fmt.Errorf("%w: %q does not start with %q", ErrBadMemberID, abbreviate(s), memberIDPrefix)
	}
	body := s[len(memberIDPrefix):]
	if want := memberIDEncoding.EncodedLen(PublicKeySize + memberIDChecksumSize); len(body) != want {
		return PublicKey{}, fmt.Errorf("%w: %q has %d letters after %q, want %d", ErrBadMemberID, abbreviate(s), len(body), memberIDPrefix, want)
	}
	raw, err := memberIDEncoding.DecodeString(body)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %q: %v", ErrBadMemberID, abbreviate(s), err)
	}
	var k PublicKey
	copy(k[:], raw)
	sum := memberIDChecksum(k)
	if subtle.ConstantTimeCompare(sum[:], raw[PublicKeySize:]) != 1 {
		return PublicKey{}, fmt.Errorf("%w: %q: checksum mismatch (a typo?)", ErrBadMemberID, abbreviate(s))
	}
	return k, nil
}

func memberIDChecksum(k PublicKey) [memberIDChecksumSize]byte {
	h := sha256.New()
	h.Write([]byte(memberIDChecksumLabel))
	h.Write(k[:])
	var out [memberIDChecksumSize]byte
	copy(out[:], h.Sum(nil))
	return out
}

func abbreviate(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// SigningKey is a member's Ed25519 private signing key. The zero value is not
// usable; create one with NewSigningKey or SigningKeyFromSeed.
type SigningKey struct {
	priv ed25519.PrivateKey
	pub  PublicKey
}

// SeedSize is the size of the seed a SigningKey is derived from.
const SeedSize = ed25519.SeedSize

// NewSigningKey generates a signing key from rand, which must be a
// cryptographically secure source (crypto/rand.Reader outside of tests).
func NewSigningKey(rand io.Reader) (*SigningKey, error) {
	var seed [SeedSize]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("identity: generate signing key: %w", err)
	}
	return SigningKeyFromSeed(seed[:])
}

// SigningKeyFromSeed derives the signing key for a 32-byte seed.
func SigningKeyFromSeed(seed []byte) (*SigningKey, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("identity: signing key seed is %d bytes, want %d", len(seed), SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	k := &SigningKey{priv: priv}
	copy(k.pub[:], priv.Public().(ed25519.PublicKey))
	return k, nil
}

// Public returns the key's public half, whose text form is the member ID.
func (k *SigningKey) Public() PublicKey { return k.pub }

// Seed returns the 32-byte seed the key derives from. It is secret.
func (k *SigningKey) Seed() []byte { return k.priv.Seed() }

// Sign returns the Ed25519 signature of msg. Callers put a domain-separation
// label at the start of msg.
func (k *SigningKey) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// ErrWeakKey is returned (wrapped) by PublicKey.Check for a key that no one
// can own alone: not a canonical encoding of a curve point, or a point of
// small order, for which one signature verifies for many messages, so
// anyone could sign as that "member".
var ErrWeakKey = errors.New("weak or invalid signing key")

// Check reports whether k is a key someone can own: a canonically encoded
// point of large order. It costs a point decompression (about as much as a
// tenth of a signature verification), so callers check each author once,
// not each event.
func (k PublicKey) Check() error {
	p, err := new(edwards25519.Point).SetBytes(k[:])
	if err != nil {
		return fmt.Errorf("%w: %s: not a curve point", ErrWeakKey, k.Short())
	}
	if !bytes.Equal(p.Bytes(), k[:]) {
		return fmt.Errorf("%w: %s: not canonically encoded", ErrWeakKey, k.Short())
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return fmt.Errorf("%w: %s: a point of small order", ErrWeakKey, k.Short())
	}
	return nil
}
