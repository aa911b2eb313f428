package keys

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/pursuance/pursuance/identity"
)

// Topic names a stream of envelopes at a relay: one per generation of the
// group key, so a relay cannot link one generation's traffic to the next.
// It is the hash of the topic's public signing key, so a relay can check
// that a write comes from someone holding the generation's seed without
// learning who.
type Topic [TopicSize]byte

// TopicSize is the length of a topic.
const TopicSize = 32

func (t Topic) String() string { return "topic:" + hex.EncodeToString(t[:]) }

// Topic returns the topic of a group key generation and the key that signs
// writes to it.
func (k *Key) Topic() (Topic, *identity.SigningKey, error) {
	if err := k.check(true); err != nil {
		return Topic{}, nil, err
	}
	sk, err := identity.SigningKeyFromSeed(k.derive(labelTopic, 32))
	if err != nil {
		return Topic{}, nil, err
	}
	pub := sk.Public()
	return TopicOf(pub), sk, nil
}

// TopicOf returns the topic whose writes pub signs: SHA-256 of a label and
// the key.
func TopicOf(pub identity.PublicKey) Topic {
	h := sha256.New()
	h.Write([]byte(labelTopicID + "\x00"))
	h.Write(pub[:])
	var t Topic
	h.Sum(t[:0])
	return t
}

// Buckets are the sizes an envelope may have: a relay learns which bucket
// an event falls in, not its size. The largest holds the largest event.
var buckets = [...]int{1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}

// Buckets returns the envelope sizes, smallest first.
func Buckets() []int { return buckets[:] }

const (
	nonceSize = chacha20poly1305.NonceSizeX
	tagSize   = chacha20poly1305.Overhead
	// EnvelopeOverhead is what an envelope adds besides padding: nonce,
	// length prefix and tag.
	EnvelopeOverhead = nonceSize + 4 + tagSize
	// MaxSealed is the largest plaintext an envelope holds.
	MaxSealed = 1<<20 - EnvelopeOverhead
)

// ErrEnvelope is wrapped by every error of OpenEnvelope: the bytes are not
// an envelope of this key and topic, or were altered.
var ErrEnvelope = errors.New("keys: not a valid envelope")

// bucketFor returns the smallest bucket that holds n bytes of plaintext.
func bucketFor(n int) (int, error) {
	for _, b := range buckets {
		if n+EnvelopeOverhead <= b {
			return b, nil
		}
	}
	return 0, fmt.Errorf("keys: %d bytes do not fit the largest envelope", n)
}

// Envelopes seals and opens the envelopes of one group key generation.
// Make one per generation with NewEnvelopes and reuse it: the derivations
// are done once. It is safe for concurrent use.
type Envelopes struct {
	topic Topic
	aead  cipherAEAD
	ad    []byte
}

type cipherAEAD interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

// NewEnvelopes prepares sealing and opening under a group key generation.
func NewEnvelopes(k *Key) (*Envelopes, error) {
	if err := k.check(true); err != nil {
		return nil, err
	}
	topic, _, err := k.Topic()
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(k.derive(labelEnvelope, chacha20poly1305.KeySize))
	if err != nil {
		return nil, err
	}
	return &Envelopes{topic: topic, aead: aead, ad: append([]byte(labelEnvelopeA+"\x00"), topic[:]...)}, nil
}

// Topic returns the topic the envelopes belong to.
func (x *Envelopes) Topic() Topic { return x.topic }

// Seal seals plaintext (an encoded event): nonce ‖ XChaCha20-Poly1305(
// length ‖ plaintext ‖ zero padding), exactly one bucket long, with the
// topic bound as associated data. The nonce is read from rand.
func (x *Envelopes) Seal(plaintext []byte, rand io.Reader) ([]byte, error) {
	size, err := bucketFor(len(plaintext))
	if err != nil {
		return nil, err
	}
	out := make([]byte, size)
	if _, err := io.ReadFull(rand, out[:nonceSize]); err != nil {
		return nil, fmt.Errorf("keys: envelope nonce: %w", err)
	}
	// Build the padded plaintext in place and encrypt it where it lies.
	padded := out[nonceSize : size-tagSize]
	binary.BigEndian.PutUint32(padded, uint32(len(plaintext)))
	copy(padded[4:], plaintext)
	x.aead.Seal(padded[:0], out[:nonceSize], padded, x.ad)
	return out, nil
}

// Open opens an envelope, returning the plaintext. Anything not sealed for
// this generation's topic, altered, of a size that is not the smallest
// bucket for its content, or with non-zero padding is an error wrapping
// ErrEnvelope.
func (x *Envelopes) Open(env []byte) ([]byte, error) {
	ok := false
	for _, b := range buckets {
		ok = ok || len(env) == b
	}
	if !ok {
		return nil, fmt.Errorf("%w: %d bytes is not an envelope size", ErrEnvelope, len(env))
	}
	padded, err := x.aead.Open(nil, env[:nonceSize], env[nonceSize:], x.ad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	n := int(binary.BigEndian.Uint32(padded))
	if n > len(padded)-4 {
		return nil, fmt.Errorf("%w: length %d exceeds the envelope", ErrEnvelope, n)
	}
	for _, c := range padded[4+n:] {
		if c != 0 {
			return nil, fmt.Errorf("%w: non-zero padding", ErrEnvelope)
		}
	}
	if min, _ := bucketFor(n); min != len(env) {
		return nil, fmt.Errorf("%w: %d bytes padded to %d, not the smallest bucket", ErrEnvelope, n, len(env))
	}
	return padded[4 : 4+n], nil
}
