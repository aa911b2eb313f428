package relay

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
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
	// MaxCursor is the largest cursor: stores keep cursors as signed
	// 64-bit integers, and a read after a larger one is malformed.
	MaxCursor = math.MaxInt64
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
	return appendMessageOf(topic, sha256.Sum256(rest))
}

// appendMessageOf is what an append's signature signs, from the hash of
// the body after the signature.
func appendMessageOf(topic keys.Topic, h [sha256.Size]byte) []byte {
	msg := make([]byte, 0, len(appendLabel)+1+len(topic)+len(h))
	msg = append(msg, appendLabel...)
	msg = append(msg, 0)
	msg = append(msg, topic[:]...)
	return append(msg, h[:]...)
}

// DecodeAppend checks an append's body for topic and returns its
// envelopes (copies). Every envelope must be one of the envelope sizes
// (keys.Buckets). A body that is not signed by the topic's key is refused
// as such (ErrUnauthorized), however malformed.
func DecodeAppend(topic keys.Topic, body []byte) ([][]byte, error) {
	return DecodeAppendFrom(topic, bytes.NewReader(body), func(n int) []byte { return make([]byte, n) })
}

// DecodeAppendFrom is DecodeAppend of a body read from r, each envelope
// read straight into a buffer from alloc: nothing holds the whole body.
// An error of r that is not io.EOF is returned as it is.
func DecodeAppendFrom(topic keys.Topic, r io.Reader, alloc func(size int) []byte) ([][]byte, error) {
	src := &bodyReader{r: r}
	var head [32 + identity.SignatureSize]byte
	n, _ := io.ReadFull(src, head[:])
	if src.err != nil {
		return nil, src.err
	}
	// After the head, everything read is hashed: the signature covers it.
	h := sha256.New()
	src.hash = h
	br := bufio.NewReaderSize(src, 4096)
	if n < len(head) || isEOF(br.Peek(1)) {
		if src.err != nil {
			return nil, src.err
		}
		return nil, fmt.Errorf("%w: append of %d bytes", ErrFrame, n+br.Buffered())
	}
	var pub identity.PublicKey
	copy(pub[:], head[:])
	if keys.TopicOf(pub) != topic {
		return nil, fmt.Errorf("%w: the key does not hash to the topic", ErrUnauthorized)
	}
	envs, malformed := readEnvelopes(br, alloc)
	// The rest, to hash the whole body before anything is said of it.
	trailing, _ := io.Copy(io.Discard, br)
	if src.err != nil {
		return nil, src.err
	}
	var sum [sha256.Size]byte
	if !pub.Verify(appendMessageOf(topic, [sha256.Size]byte(h.Sum(sum[:0]))), head[32:]) {
		return nil, fmt.Errorf("%w: bad signature", ErrUnauthorized)
	}
	if malformed != nil {
		return nil, malformed
	}
	if trailing != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the envelopes", ErrFrame, trailing)
	}
	return envs, nil
}

// readEnvelopes reads the envelope count and the envelopes.
func readEnvelopes(br *bufio.Reader, alloc func(size int) []byte) ([][]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil || n == 0 || n > MaxBatch {
		return nil, fmt.Errorf("%w: bad envelope count", ErrFrame)
	}
	envs := make([][]byte, 0, n)
	for range n {
		size, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, fmt.Errorf("%w: envelope %d overruns the body", ErrFrame, len(envs)+1)
		}
		if !slices.Contains(keys.Buckets(), int(size)) {
			return nil, fmt.Errorf("%w: envelope %d is %d bytes, not an envelope size", ErrFrame, len(envs)+1, size)
		}
		e := alloc(int(size))
		if _, err := io.ReadFull(br, e); err != nil {
			return nil, fmt.Errorf("%w: envelope %d overruns the body", ErrFrame, len(envs)+1)
		}
		envs = append(envs, e)
	}
	return envs, nil
}

// bodyReader reads a body, hashing what it reads once hash is set, and
// keeping the first error that is not io.EOF: the decoder then tells a
// body that ended from one that failed.
type bodyReader struct {
	r    io.Reader
	hash hash.Hash
	err  error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.hash != nil {
		b.hash.Write(p[:n])
	}
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

func isEOF(_ []byte, err error) bool { return err != nil }

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
