package keys

import (
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// ErrSeal is wrapped when a sealed box does not open: not sealed to this
// member, for this key, or altered.
var ErrSeal = errors.New("keys: sealed box does not open")

// seedSealInfo binds a sealed seed to its scope, generation and recipient.
func seedSealInfo(k *Key, to identity.PublicKey) []byte {
	info := append([]byte(labelSeedSeal+"\x00"), k.context()...)
	return append(info, to[:]...)
}

// SealSeed seals k's seed to member to, whose KEM key is kem: HPKE (RFC
// 9180) base mode with ML-KEM-768+X25519, HKDF-SHA256 and
// ChaCha20-Poly1305, the info binding the scope, generation and member.
// The box is the KEM encapsulation followed by the ciphertext (1,168 bytes
// in all). HPKE draws its own randomness.
func SealSeed(k *Key, to identity.PublicKey, kem identity.KEMPublicKey) ([]byte, error) {
	if k.Gen == 0 {
		return nil, fmt.Errorf("%w: generation 0", ErrBadKey)
	}
	pk, err := kem.HPKE()
	if err != nil {
		return nil, err
	}
	return hpke.Seal(pk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), seedSealInfo(k, to), k.Seed[:])
}

// OpenSeed opens a box SealSeed made for member me (whose KEM private key
// is priv), for the given scope and generation, and returns the key.
func OpenSeed(scope Scope, gen uint64, box []byte, me identity.PublicKey, priv *identity.KEMPrivateKey) (Key, error) {
	k := Key{Scope: scope, Gen: gen}
	if gen == 0 {
		return Key{}, fmt.Errorf("%w: generation 0", ErrBadKey)
	}
	seed, err := hpke.Open(priv.HPKE(), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), seedSealInfo(&k, me), box)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrSeal, err)
	}
	if len(seed) != SeedSize {
		return Key{}, fmt.Errorf("%w: seed of %d bytes", ErrSeal, len(seed))
	}
	copy(k.Seed[:], seed)
	return k, nil
}

// Chain seals prev's seed under next, so that whoever is given next can
// read what prev protected: seed chaining. prev must be the generation
// just before next in the same scope. Each next key chains exactly one
// seed, so the box uses a fixed nonce under a key derived for it alone.
func Chain(next, prev *Key) ([]byte, error) {
	if next.Scope != prev.Scope || prev.Gen+1 != next.Gen || prev.Gen == 0 {
		return nil, fmt.Errorf("%w: can only chain generation %d of %s to the one before", ErrBadKey, next.Gen, next.Scope)
	}
	aead, err := chacha20poly1305.NewX(next.derive(labelChain, chacha20poly1305.KeySize))
	if err != nil {
		return nil, err
	}
	var nonce [nonceSize]byte
	return aead.Seal(nil, nonce[:], prev.Seed[:], prev.context()), nil
}

// Unchain opens a Chain box with next, returning the generation before it.
func Unchain(next *Key, box []byte) (Key, error) {
	if next.Gen < 2 {
		return Key{}, fmt.Errorf("%w: generation %d has no predecessor", ErrBadKey, next.Gen)
	}
	prev := Key{Scope: next.Scope, Gen: next.Gen - 1}
	aead, err := chacha20poly1305.NewX(next.derive(labelChain, chacha20poly1305.KeySize))
	if err != nil {
		return Key{}, err
	}
	var nonce [nonceSize]byte
	seed, err := aead.Open(nil, nonce[:], box, prev.context())
	if err != nil || len(seed) != SeedSize {
		return Key{}, fmt.Errorf("%w: chained seed", ErrSeal)
	}
	copy(prev.Seed[:], seed)
	return prev, nil
}

// ChainSibling seals prev's seed under next, for an earlier generation of
// the same scope that next does not follow: one made concurrently with the
// one next follows (two members rotating at once), which those who hold
// next would otherwise never read. prevUpdate names prev (the key update
// that published it). next may chain several such siblings, so each box
// has its own key, derived with prevUpdate, and its associated data names
// it too; the nonce is fixed, since each key seals one seed.
func ChainSibling(next, prev *Key, prevUpdate event.ID) ([]byte, error) {
	if next.Scope != prev.Scope || prev.Gen == 0 || prev.Gen >= next.Gen {
		return nil, fmt.Errorf("%w: can only chain an earlier generation of %s under generation %d", ErrBadKey, next.Scope, next.Gen)
	}
	aead, err := chacha20poly1305.NewX(siblingKey(next, prevUpdate))
	if err != nil {
		return nil, err
	}
	var nonce [nonceSize]byte
	return aead.Seal(nil, nonce[:], prev.Seed[:], append(prev.context(), prevUpdate[:]...)), nil
}

// UnchainSibling opens a ChainSibling box with next, returning generation
// prevGen of next's scope, published by prevUpdate.
func UnchainSibling(next *Key, prevGen uint64, prevUpdate event.ID, box []byte) (Key, error) {
	if prevGen == 0 || prevGen >= next.Gen {
		return Key{}, fmt.Errorf("%w: generation %d is not before %d", ErrBadKey, prevGen, next.Gen)
	}
	prev := Key{Scope: next.Scope, Gen: prevGen}
	aead, err := chacha20poly1305.NewX(siblingKey(next, prevUpdate))
	if err != nil {
		return Key{}, err
	}
	var nonce [nonceSize]byte
	seed, err := aead.Open(nil, nonce[:], box, append(prev.context(), prevUpdate[:]...))
	if err != nil || len(seed) != SeedSize {
		return Key{}, fmt.Errorf("%w: chained sibling seed", ErrSeal)
	}
	copy(prev.Seed[:], seed)
	return prev, nil
}

// siblingKey is HKDF-SHA256 of next's seed, info = label ‖ 0x00 ‖ next's
// context ‖ prevUpdate.
func siblingKey(next *Key, prevUpdate event.ID) []byte {
	info := append(append([]byte(labelSibling+"\x00"), next.context()...), prevUpdate[:]...)
	out, err := hkdf.Key(sha256.New, next.Seed[:], nil, string(info), chacha20poly1305.KeySize)
	if err != nil {
		panic("keys: hkdf: " + err.Error())
	}
	return out
}

// ContentKey is the fresh key one piece of content (a task's text, a
// comment) is sealed with; it is wrapped under the key of each role that
// may read it.
type ContentKey [32]byte

// NewContentKey draws a content key from rand.
func NewContentKey(rand io.Reader) (ContentKey, error) {
	var ck ContentKey
	if _, err := io.ReadFull(rand, ck[:]); err != nil {
		return ContentKey{}, fmt.Errorf("keys: new content key: %w", err)
	}
	return ck, nil
}

// SealContent seals plaintext under ck: nonce ‖ XChaCha20-Poly1305, with
// ad (say, the task's ID) bound as associated data.
func SealContent(ck ContentKey, ad, plaintext []byte, rand io.Reader) ([]byte, error) {
	return sealX(ck[:], labelContent, ad, plaintext, rand)
}

// OpenContent opens what SealContent sealed.
func OpenContent(ck ContentKey, ad, box []byte) ([]byte, error) {
	return openX(ck[:], labelContent, ad, box)
}

// WrapContentKey wraps ck under a generation of a role's key (or of the
// group key, for content every member reads), for its holders to unwrap;
// ad binds the wrap to its content.
func WrapContentKey(role *Key, ck ContentKey, ad []byte, rand io.Reader) ([]byte, error) {
	if role.Gen == 0 {
		return nil, fmt.Errorf("%w: generation 0", ErrBadKey)
	}
	return sealX(role.derive(labelWrap, chacha20poly1305.KeySize), labelWrap, ad, ck[:], rand)
}

// Unwrapper unwraps content keys wrapped under one generation, with its
// wrap key derived once (a reader folding a log unwraps thousands).
type Unwrapper struct{ key []byte }

// NewUnwrapper derives the wrap key of a generation.
func NewUnwrapper(k *Key) (*Unwrapper, error) {
	if k.Gen == 0 {
		return nil, fmt.Errorf("%w: generation 0", ErrBadKey)
	}
	return &Unwrapper{key: k.derive(labelWrap, chacha20poly1305.KeySize)}, nil
}

// Unwrap is UnwrapContentKey with the derived key.
func (u *Unwrapper) Unwrap(ad, box []byte) (ContentKey, error) {
	b, err := openX(u.key, labelWrap, ad, box)
	if err != nil {
		return ContentKey{}, err
	}
	if len(b) != len(ContentKey{}) {
		return ContentKey{}, fmt.Errorf("%w: content key of %d bytes", ErrSeal, len(b))
	}
	return ContentKey(b), nil
}

// UnwrapContentKey unwraps a content key wrapped under role.
func UnwrapContentKey(role *Key, ad, box []byte) (ContentKey, error) {
	if role.Gen == 0 {
		return ContentKey{}, fmt.Errorf("%w: generation 0", ErrBadKey)
	}
	b, err := openX(role.derive(labelWrap, chacha20poly1305.KeySize), labelWrap, ad, box)
	if err != nil {
		return ContentKey{}, err
	}
	if len(b) != len(ContentKey{}) {
		return ContentKey{}, fmt.Errorf("%w: content key of %d bytes", ErrSeal, len(b))
	}
	var ck ContentKey
	copy(ck[:], b)
	return ck, nil
}

func sealX(key []byte, label string, ad, plaintext []byte, rand io.Reader) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	if _, err := io.ReadFull(rand, out); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	return aead.Seal(out, out, plaintext, append([]byte(label+"\x00"), ad...)), nil
}

func openX(key []byte, label string, ad, box []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	if len(box) < nonceSize+tagSize {
		return nil, fmt.Errorf("%w: too short", ErrSeal)
	}
	pt, err := aead.Open(nil, box[:nonceSize], box[nonceSize:], append([]byte(label+"\x00"), ad...))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSeal, err)
	}
	return pt, nil
}
