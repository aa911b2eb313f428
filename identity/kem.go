package identity

import (
	"crypto/hpke"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// KEMPublicKeySize is the size of a KEM public key in bytes: an ML-KEM-768
// encapsulation key (1184 bytes) followed by an X25519 public key (32 bytes).
const KEMPublicKeySize = 1184 + 32

// KEMPrivateKeySize is the size of a serialized KEM private key: a 32-byte seed
// from which both the ML-KEM-768 and the X25519 private keys are expanded.
const KEMPrivateKeySize = 32

// kemIKMSize is the number of random bytes fed to DeriveKeyPair when a KEM key
// is generated.
const kemIKMSize = 32

// kem is the KEM every Pursuance member uses to receive sealed keys.
var kem = hpke.MLKEM768X25519()

// KEM returns the HPKE KEM that KEM keys belong to: MLKEM768-X25519 (X-Wing).
// Callers that seal or open with crypto/hpke use it with the KDF and AEAD of
// their own choosing.
func KEM() hpke.KEM { return kem }

// ErrBadKEMKey is returned (wrapped) when bytes are not a valid KEM public or
// private key.
var ErrBadKEMKey = errors.New("not a valid KEM key")

// KEMPublicKey is a member's hybrid KEM public key in its RFC 9180 serialized
// form. The zero value is not a valid key; obtain one from
// KEMPrivateKey.Public or ParseKEMPublicKey.
type KEMPublicKey [KEMPublicKeySize]byte

// ParseKEMPublicKey checks that b is a valid serialized MLKEM768-X25519 public
// key and returns it. Invalid input is an error wrapping ErrBadKEMKey.
func ParseKEMPublicKey(b []byte) (KEMPublicKey, error) {
	var k KEMPublicKey
	if len(b) != KEMPublicKeySize {
		return k, fmt.Errorf("identity: %w: %d bytes, want %d", ErrBadKEMKey, len(b), KEMPublicKeySize)
	}
	if _, err := kem.NewPublicKey(b); err != nil {
		return k, fmt.Errorf("identity: %w: %v", ErrBadKEMKey, err)
	}
	copy(k[:], b)
	return k, nil
}

// Equal reports whether k and o are the same key, in constant time.
func (k KEMPublicKey) Equal(o KEMPublicKey) bool {
	return subtle.ConstantTimeCompare(k[:], o[:]) == 1
}

// IsZero reports whether k is the all-zero value, which is not a key.
func (k KEMPublicKey) IsZero() bool { return k == KEMPublicKey{} }

// Bytes returns a copy of the serialized key.
func (k KEMPublicKey) Bytes() []byte { return append([]byte(nil), k[:]...) }

// HPKE returns k as a crypto/hpke public key, ready for hpke.Seal or
// hpke.NewSender. It fails, wrapping ErrBadKEMKey, only when k is not a valid
// key (for example the zero value).
func (k KEMPublicKey) HPKE() (hpke.PublicKey, error) {
	pk, err := kem.NewPublicKey(k[:])
	if err != nil {
		return nil, fmt.Errorf("identity: %w: %v", ErrBadKEMKey, err)
	}
	return pk, nil
}

// String returns the text form "kem:" followed by the standard base64 of the
// key. It is long; member IDs, not KEM keys, are what people read.
func (k KEMPublicKey) String() string {
	return "kem:" + base64.StdEncoding.EncodeToString(k[:])
}

// KEMPrivateKey is a member's hybrid KEM private key. It is secret. The zero
// value is not usable; create one with NewKEMPrivateKey or
// KEMPrivateKeyFromBytes.
type KEMPrivateKey struct {
	priv hpke.PrivateKey
	seed [KEMPrivateKeySize]byte
	pub  KEMPublicKey
}

// NewKEMPrivateKey generates a KEM key pair from 32 bytes read from rand, which
// must be a cryptographically secure source (crypto/rand.Reader outside of
// tests). The same bytes always give the same key.
func NewKEMPrivateKey(rand io.Reader) (*KEMPrivateKey, error) {
	var ikm [kemIKMSize]byte
	if _, err := io.ReadFull(rand, ikm[:]); err != nil {
		return nil, fmt.Errorf("identity: generate KEM key: %w", err)
	}
	priv, err := kem.DeriveKeyPair(ikm[:])
	if err != nil {
		return nil, fmt.Errorf("identity: generate KEM key: %w", err)
	}
	return newKEMPrivateKey(priv)
}

// KEMPrivateKeyFromBytes restores a KEM private key from the 32 bytes that
// KEMPrivateKey.Bytes returned. Input of the wrong size is an error wrapping
// ErrBadKEMKey.
func KEMPrivateKeyFromBytes(b []byte) (*KEMPrivateKey, error) {
	if len(b) != KEMPrivateKeySize {
		return nil, fmt.Errorf("identity: %w: private key is %d bytes, want %d", ErrBadKEMKey, len(b), KEMPrivateKeySize)
	}
	priv, err := kem.NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("identity: %w: %v", ErrBadKEMKey, err)
	}
	return newKEMPrivateKey(priv)
}

func newKEMPrivateKey(priv hpke.PrivateKey) (*KEMPrivateKey, error) {
	seed, err := priv.Bytes()
	if err != nil {
		return nil, fmt.Errorf("identity: serialize KEM key: %w", err)
	}
	if len(seed) != KEMPrivateKeySize {
		return nil, fmt.Errorf("identity: KEM private key serializes to %d bytes, want %d", len(seed), KEMPrivateKeySize)
	}
	pubBytes := priv.PublicKey().Bytes()
	if len(pubBytes) != KEMPublicKeySize {
		return nil, fmt.Errorf("identity: KEM public key is %d bytes, want %d", len(pubBytes), KEMPublicKeySize)
	}
	k := &KEMPrivateKey{priv: priv}
	copy(k.seed[:], seed)
	copy(k.pub[:], pubBytes)
	return k, nil
}

// Public returns the public half of k.
func (k *KEMPrivateKey) Public() KEMPublicKey { return k.pub }

// Bytes returns the 32-byte serialized private key (its RFC 9180
// SerializePrivateKey form). It is secret.
func (k *KEMPrivateKey) Bytes() []byte { return append([]byte(nil), k.seed[:]...) }

// HPKE returns k as a crypto/hpke private key, ready for hpke.Open or
// hpke.NewRecipient.
func (k *KEMPrivateKey) HPKE() hpke.PrivateKey { return k.priv }
