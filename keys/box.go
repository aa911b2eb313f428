package keys

import (
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"fmt"

	"github.com/pursuance/pursuance/identity"
)

const (
	labelInviteKEM = "pursuance/v1/invite-kem-key"
	labelBox       = "pursuance/v1/box"
)

// InviteKEMKey derives an invite's hybrid KEM key from the invite secret
// (the seed of its signing key), so that one secret in the code gives
// both: the key that signs the join and the key the invite's seeds are
// sealed to.
func InviteKEMKey(inviteSeed []byte) (*identity.KEMPrivateKey, error) {
	b, err := hkdf.Key(sha256.New, inviteSeed, nil, labelInviteKEM, identity.KEMPrivateKeySize)
	if err != nil {
		return nil, err
	}
	return identity.KEMPrivateKeyFromBytes(b)
}

// SealBox seals plaintext to a KEM public key with the same HPKE suite as
// SealSeed; purpose names what the box is for and is bound into it, so a
// box cannot be opened as another kind of box.
func SealBox(to identity.KEMPublicKey, purpose string, plaintext []byte) ([]byte, error) {
	pk, err := to.HPKE()
	if err != nil {
		return nil, err
	}
	return hpke.Seal(pk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), []byte(labelBox+"\x00"+purpose), plaintext)
}

// OpenBox opens what SealBox sealed for purpose.
func OpenBox(priv *identity.KEMPrivateKey, purpose string, box []byte) ([]byte, error) {
	pt, err := hpke.Open(priv.HPKE(), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), []byte(labelBox+"\x00"+purpose), box)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSeal, err)
	}
	return pt, nil
}
