package keys

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/pursuance/pursuance/event"
)

// LinkSecretSize is the size of a link's secret.
const LinkSecretSize = 32

// LinkSecret is the secret of one link between two pursuances
// (docs/links.md): the link code carries it, and each side keeps it in
// its own log, wrapped under its group key. Everything the link uses is
// derived from it: its ID, the channel's topic and envelopes, the key its
// content is sealed under. Compare secrets with Equal.
type LinkSecret [LinkSecretSize]byte

// Labels of the link derivations. Part of the format: never change one.
const (
	labelLinkID      = "pursuance/v1/link-id"
	labelLinkChannel = "pursuance/v1/link-channel"
	labelLinkContent = "pursuance/v1/link-content"
	labelLinkWrap    = "pursuance/v1/link-key"
)

// NewLinkSecret draws a link secret from rand.
func NewLinkSecret(rand io.Reader) (LinkSecret, error) {
	var s LinkSecret
	if _, err := io.ReadFull(rand, s[:]); err != nil {
		return LinkSecret{}, fmt.Errorf("keys: new link secret: %w", err)
	}
	return s, nil
}

// Equal reports whether two secrets are equal, in constant time.
func (s LinkSecret) Equal(o LinkSecret) bool { return subtle.ConstantTimeCompare(s[:], o[:]) == 1 }

// String never shows the secret.
func (s LinkSecret) String() string { return "keys.LinkSecret(…)" }

// GoString never shows the secret either.
func (s LinkSecret) GoString() string { return s.String() }

// ID returns the link's ID: SHA-256(label ‖ 0x00 ‖ secret). Both logs name
// the link by it, in clear; it reveals nothing of the secret.
func (s LinkSecret) ID() event.ID {
	h := sha256.New()
	h.Write([]byte(labelLinkID + "\x00"))
	h.Write(s[:])
	var id event.ID
	h.Sum(id[:0])
	return id
}

func (s LinkSecret) derive(label string, n int) []byte {
	out, err := hkdf.Key(sha256.New, s[:], nil, label+"\x00", n)
	if err != nil {
		panic("keys: hkdf: " + err.Error())
	}
	return out
}

// Channel returns the key of the link's channel: a group-key-like
// generation 1 of the scope (link ID, ""), whose seed is derived from the
// secret. Its Topic and Envelopes are the channel's, as for any group key
// generation.
func (s LinkSecret) Channel() Key {
	k := Key{Scope: Scope{Pursuance: s.ID()}, Gen: 1}
	copy(k.Seed[:], s.derive(labelLinkChannel, SeedSize))
	return k
}

// SealLink seals plaintext for everyone holding the link's secret, with ad
// bound as associated data: nonce ‖ XChaCha20-Poly1305 under the link's
// content key.
func (s LinkSecret) SealLink(ad, plaintext []byte, rand io.Reader) ([]byte, error) {
	return sealX(s.derive(labelLinkContent, chacha20poly1305.KeySize), labelLinkContent, ad, plaintext, rand)
}

// OpenLink opens what SealLink sealed with the same ad.
func (s LinkSecret) OpenLink(ad, box []byte) ([]byte, error) {
	return openX(s.derive(labelLinkContent, chacha20poly1305.KeySize), labelLinkContent, ad, box)
}

// LinkWrapSize is the size of a wrapped link secret.
const LinkWrapSize = nonceSize + LinkSecretSize + tagSize

// WrapLinkSecret wraps s under a group key generation, for every member
// holding it; ad binds the wrap to its link (WrapLinkAD).
func WrapLinkSecret(group *Key, s LinkSecret, ad []byte, rand io.Reader) ([]byte, error) {
	if err := group.check(true); err != nil {
		return nil, err
	}
	return sealX(group.derive(labelLinkWrap, chacha20poly1305.KeySize), labelLinkWrap, ad, s[:], rand)
}

// UnwrapLinkSecret unwraps what WrapLinkSecret wrapped.
func UnwrapLinkSecret(group *Key, ad, box []byte) (LinkSecret, error) {
	if err := group.check(true); err != nil {
		return LinkSecret{}, err
	}
	b, err := openX(group.derive(labelLinkWrap, chacha20poly1305.KeySize), labelLinkWrap, ad, box)
	if err != nil {
		return LinkSecret{}, err
	}
	if len(b) != LinkSecretSize {
		return LinkSecret{}, fmt.Errorf("%w: link secret of %d bytes", ErrSeal, len(b))
	}
	return LinkSecret(b), nil
}
