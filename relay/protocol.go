package relay

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// Version is the protocol version, the path prefix of every endpoint.
const Version = 1

// Protocol limits (docs/relay-protocol.md). A server may set lower ones.
const (
	MaxBatch     = 1024     // envelopes in one append
	MaxBatchSize = 16 << 20 // bytes of one append's body
	MaxReadLimit = 10_000   // entries in one read
	DefaultLimit = 1000
)

// appendLabel separates a relay append's signature from every other use
// of a topic key.
const appendLabel = "pursuance/v1/relay-append"

// ErrFrame is wrapped by every error about malformed protocol bytes.
var ErrFrame = errors.New("relay: malformed frame")

// ErrUnauthorized is wrapped when an append is not signed by its topic's
// key.
var ErrUnauthorized = errors.New("relay: not signed by the topic's key")

// ParseTopic parses a topic's hex form.
func ParseTopic(s string) (keys.Topic, error) {
	var t keys.Topic
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(t) {
		return t, fmt.Errorf("%w: bad topic %q", ErrFrame, s)
	}
	copy(t[:], b)
	return t, nil
}

// TopicHex is a topic's hex form, as in URLs.
func TopicHex(t keys.Topic) string { return hex.EncodeToString(t[:]) }

// EncodeAppend makes the body of an append to topic: the topic key's
// public half, its signature over the envelopes, and the envelopes. The
// signing key is the one keys.Key.Topic derives for a group generation.
func EncodeAppend(topic keys.Topic, key *identity.SigningKey, envs [][]byte) ([]byte, error) {
	if len(envs) == 0 || len(envs) > MaxBatch {
		return nil, fmt.Errorf("relay: %d envelopes in one append (1 to %d)", len(envs), MaxBatch)
	}
	pub := key.Public()
	body := make([]byte, 0, 32+identity.SignatureSize+binary.MaxVarintLen64)
	body = append(body, pub[:]...)
	body = append(body, make([]byte, identity.SignatureSize)...)
	body = binary.AppendUvarint(body, uint64(len(envs)))
	for _, e := range envs {
		body = binary.AppendUvarint(body, uint64(len(e)))
		body = append(body, e...)
	}
	sig := key.Sign(appendMessage(topic, body[32+identity.SignatureSize:]))
	copy(body[32:], sig)
	return body, nil
}

func appendMessage(topic keys.Topic, rest []byte) []byte {
	h := sha256.Sum256(rest)
	msg := make([]byte, 0, len(appendLabel)+1+len(topic)+len(h))
	msg = append(msg, appendLabel...)
	msg = append(msg, 0)
	msg = append(msg, topic[:]...)
	return append(msg, h[:]...)
}

// DecodeAppend checks an append's body for topic, signature first, and
// returns its envelopes (slices of body). Every envelope must be one of
// the envelope sizes (keys.Buckets).
func DecodeAppend(topic keys.Topic, body []byte) ([][]byte, error) {
	if len(body) < 32+identity.SignatureSize+1 {
		return nil, fmt.Errorf("%w: append of %d bytes", ErrFrame, len(body))
	}
	var pub identity.PublicKey
	copy(pub[:], body)
	if keys.TopicOf(pub) != topic {
		return nil, fmt.Errorf("%w: the key does not hash to the topic", ErrUnauthorized)
	}
	rest := body[32+identity.SignatureSize:]
	if !pub.Verify(appendMessage(topic, rest), body[32:32+identity.SignatureSize]) {
		return nil, fmt.Errorf("%w: bad signature", ErrUnauthorized)
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > MaxBatch {
		return nil, fmt.Errorf("%w: bad envelope count", ErrFrame)
	}
	rest = rest[k:]
	envs := make([][]byte, 0, n)
	for range n {
		size, k := binary.Uvarint(rest)
		if k <= 0 || size > uint64(len(rest)-k) {
			return nil, fmt.Errorf("%w: envelope %d overruns the body", ErrFrame, len(envs)+1)
		}
		if !slices.Contains(keys.Buckets(), int(size)) {
			return nil, fmt.Errorf("%w: envelope %d is %d bytes, not an envelope size", ErrFrame, len(envs)+1, size)
		}
		envs = append(envs, rest[k:k+int(size)])
		rest = rest[k+int(size):]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the envelopes", ErrFrame, len(rest))
	}
	return envs, nil
}

// Entry is one stored envelope and its cursor in its topic.
type Entry struct {
	Cursor   uint64
	Envelope []byte
}

// AppendEntry appends an entry's frame: uvarint cursor, uvarint length,
// envelope. Reads and live messages are sequences of these.
func AppendEntry(b []byte, e Entry) []byte {
	b = binary.AppendUvarint(b, e.Cursor)
	b = binary.AppendUvarint(b, uint64(len(e.Envelope)))
	return append(b, e.Envelope...)
}

// DecodeEntries decodes a sequence of entry frames. Cursors must rise.
func DecodeEntries(b []byte) ([]Entry, error) {
	var out []Entry
	for len(b) > 0 {
		c, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, fmt.Errorf("%w: bad cursor", ErrFrame)
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: entry overruns the frame", ErrFrame)
		}
		if len(out) > 0 && c <= out[len(out)-1].Cursor {
			return nil, fmt.Errorf("%w: cursors do not rise", ErrFrame)
		}
		out = append(out, Entry{Cursor: c, Envelope: b[k : k+int(size)]})
		b = b[k+int(size):]
	}
	return out, nil
}
