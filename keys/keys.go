package keys

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pursuance/pursuance/event"
)

// SeedSize is the size of a generation's seed.
const SeedSize = 32

// Seed is the secret of one generation of the group key or of a role key.
// Everything else is derived from it. Compare seeds with Equal.
type Seed [SeedSize]byte

// NewSeed draws a fresh seed from rand.
func NewSeed(rand io.Reader) (Seed, error) {
	var s Seed
	if _, err := io.ReadFull(rand, s[:]); err != nil {
		return Seed{}, fmt.Errorf("keys: new seed: %w", err)
	}
	return s, nil
}

// Equal reports whether two seeds are equal, in constant time.
func (s Seed) Equal(o Seed) bool { return subtle.ConstantTimeCompare(s[:], o[:]) == 1 }

// String never shows the secret.
func (s Seed) String() string { return "keys.Seed(…)" }

// GoString never shows the secret either.
func (s Seed) GoString() string { return s.String() }

// Scope says whose key a generation is: the whole pursuance's (Role == "")
// or one role's.
type Scope struct {
	Pursuance event.ID
	Role      string // "" for the group key
}

// IsGroup reports whether the scope is the group key's.
func (s Scope) IsGroup() bool { return s.Role == "" }

func (s Scope) String() string {
	if s.IsGroup() {
		return "group"
	}
	return "role " + s.Role
}

// Key is one generation of a scope's key: its seed and where it belongs.
type Key struct {
	Scope Scope
	Gen   uint64 // from 1
	Seed  Seed
}

// ErrBadKey is wrapped when a key does not fit what it is used for.
var ErrBadKey = errors.New("keys: wrong key")

// Labels. Every derivation and every sealed box has its own, so no secret
// is ever used for two purposes. Part of the format: never change one.
const (
	labelEnvelope  = "pursuance/v1/envelope-key"
	labelTopic     = "pursuance/v1/topic-key"
	labelTopicID   = "pursuance/v1/topic-id"
	labelWrap      = "pursuance/v1/content-wrap-key"
	labelChain     = "pursuance/v1/seed-chain-key"
	labelSibling   = "pursuance/v1/seed-chain-sibling"
	labelSeedSeal  = "pursuance/v1/seed-seal"
	labelContent   = "pursuance/v1/content"
	labelEnvelopeA = "pursuance/v1/envelope"
)

// context returns the bytes that bind a derivation to one generation of
// one scope: the pursuance ID, the role name with its length, and the
// generation, big-endian.
func (k *Key) context() []byte {
	b := make([]byte, 0, event.IDSize+2+len(k.Scope.Role)+8)
	b = append(b, k.Scope.Pursuance[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.Scope.Role)))
	b = append(b, k.Scope.Role...)
	return binary.BigEndian.AppendUint64(b, k.Gen)
}

// derive returns n bytes of HKDF-SHA256 from the seed, with no salt and
// info = label ‖ 0x00 ‖ context.
func (k *Key) derive(label string, n int) []byte {
	info := append([]byte(label+"\x00"), k.context()...)
	out, err := hkdf.Key(sha256.New, k.Seed[:], nil, string(info), n)
	if err != nil {
		panic("keys: hkdf: " + err.Error()) // only for n too large
	}
	return out
}

// check reports an error unless k is a usable key of the wanted kind.
func (k *Key) check(group bool) error {
	switch {
	case k.Gen == 0:
		return fmt.Errorf("%w: generation 0", ErrBadKey)
	case group && !k.Scope.IsGroup():
		return fmt.Errorf("%w: %s key where the group key is needed", ErrBadKey, k.Scope)
	case !group && k.Scope.IsGroup():
		return fmt.Errorf("%w: the group key where a role key is needed", ErrBadKey)
	case len(k.Scope.Role) > 255:
		return fmt.Errorf("%w: role name too long", ErrBadKey)
	}
	return nil
}
