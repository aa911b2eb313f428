package keys

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/pursuance/pursuance/identity"
)

// Labels of a public profile's keys (docs/directory.md). Part of the
// format: never change one.
const (
	labelProfileKey = "pursuance/v1/profile-key"
	labelIntakeKEM  = "pursuance/v1/intake-kem-key"
	labelKnockTopic = "pursuance/v1/knock-topic"
	labelReplyTopic = "pursuance/v1/knock-reply-topic"
)

// Intake is the pair of keys of one public profile of a pursuance: Sign
// signs the profile's records (its public key names the profile in relays'
// directories), KEM opens the join requests sealed to it. Both are derived
// from one generation of the intake role's key and an epoch, so every
// holder of that generation has them, and a member removed from the role
// has none of the next generation's.
type Intake struct {
	Sign *identity.SigningKey
	KEM  *identity.KEMPrivateKey
}

// Intake derives the profile keys of epoch from k, a generation of a role's
// key: HKDF-SHA256 of the seed with info = label ‖ 0x00 ‖ context ‖
// uint64 epoch (big-endian), 32 bytes, for the Ed25519 seed
// ("pursuance/v1/profile-key") and the X-Wing seed
// ("pursuance/v1/intake-kem-key"). A new epoch gives new keys from the
// same generation: a withdrawn profile's keys are never used again.
func (k *Key) Intake(epoch uint64) (Intake, error) {
	if err := k.check(false); err != nil {
		return Intake{}, err
	}
	sk, err := identity.SigningKeyFromSeed(k.deriveEpoch(labelProfileKey, epoch))
	if err != nil {
		return Intake{}, err
	}
	kem, err := identity.KEMPrivateKeyFromBytes(k.deriveEpoch(labelIntakeKEM, epoch))
	if err != nil {
		return Intake{}, err
	}
	return Intake{Sign: sk, KEM: kem}, nil
}

func (k *Key) deriveEpoch(label string, epoch uint64) []byte {
	info := append([]byte(label+"\x00"), k.context()...)
	info = binary.BigEndian.AppendUint64(info, epoch)
	out, err := hkdf.Key(sha256.New, k.Seed[:], nil, string(info), 32)
	if err != nil {
		panic("keys: hkdf: " + err.Error())
	}
	return out
}

// KnockTopic returns the relay topic that holds the join requests sent to
// the profile whose key is profile: SHA-256("pursuance/v1/knock-topic" ‖
// 0x00 ‖ key). No topic key hashes to it (topics of keys are hashed under
// another label), so no append reaches it: only a relay's knock endpoint
// writes it (docs/relay-protocol.md, "Knocks").
func KnockTopic(profile identity.PublicKey) Topic {
	h := sha256.New()
	h.Write([]byte(labelKnockTopic + "\x00"))
	h.Write(profile[:])
	var t Topic
	h.Sum(t[:0])
	return t
}

// ReplySeedSize is the size of a join request's reply seed.
const ReplySeedSize = 32

// ReplyTopic returns the topic where the answers to one join request go,
// and the key that signs appends to it: an Ed25519 key from
// HKDF-SHA256(ikm = the request's reply seed, info =
// "pursuance/v1/knock-reply-topic" ‖ 0x00), and its topic as for any
// topic key (TopicOf). Whoever opens the request may answer; the answer
// itself is sealed to the requester alone.
func ReplyTopic(seed []byte) (Topic, *identity.SigningKey, error) {
	if len(seed) != ReplySeedSize {
		return Topic{}, nil, fmt.Errorf("%w: reply seed of %d bytes", ErrBadKey, len(seed))
	}
	b, err := hkdf.Key(sha256.New, seed, nil, labelReplyTopic+"\x00", 32)
	if err != nil {
		return Topic{}, nil, err
	}
	sk, err := identity.SigningKeyFromSeed(b)
	if err != nil {
		return Topic{}, nil, err
	}
	return TopicOf(sk.Public()), sk, nil
}
