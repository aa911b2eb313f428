package relay

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
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

// DecodeAppend checks an append's body for topic, signature first, and
// returns its envelopes (slices of body). Every envelope must be one of
// the envelope sizes (keys.Buckets).
func DecodeAppend(topic keys.Topic, body []byte) ([][]byte, error) {
	return decodeAppend(topic, &pieces{bufs: [][]byte{body}}, nil)
}

// decodeAppend is DecodeAppend of a body held in pieces. Each envelope is
// copied into a buffer from alloc, or, when alloc is nil, is a slice of
// its piece (then it must not straddle two).
func decodeAppend(topic keys.Topic, body *pieces, alloc func(size int) []byte) ([][]byte, error) {
	if n := body.remaining(); n < 32+identity.SignatureSize+1 {
		return nil, fmt.Errorf("%w: append of %d bytes", ErrFrame, n)
	}
	var head [32 + identity.SignatureSize]byte
	body.Read(head[:])
	var pub identity.PublicKey
	copy(pub[:], head[:])
	if keys.TopicOf(pub) != topic {
		return nil, fmt.Errorf("%w: the key does not hash to the topic", ErrUnauthorized)
	}
	if !pub.Verify(appendMessageOf(topic, body.hash()), head[32:]) {
		return nil, fmt.Errorf("%w: bad signature", ErrUnauthorized)
	}
	n, err := binary.ReadUvarint(body)
	if err != nil || n == 0 || n > MaxBatch {
		return nil, fmt.Errorf("%w: bad envelope count", ErrFrame)
	}
	envs := make([][]byte, 0, n)
	for range n {
		size, err := binary.ReadUvarint(body)
		if err != nil || size > uint64(body.remaining()) {
			return nil, fmt.Errorf("%w: envelope %d overruns the body", ErrFrame, len(envs)+1)
		}
		if !slices.Contains(keys.Buckets(), int(size)) {
			return nil, fmt.Errorf("%w: envelope %d is %d bytes, not an envelope size", ErrFrame, len(envs)+1, size)
		}
		var e []byte
		if alloc != nil {
			e = alloc(int(size))
			body.Read(e)
		} else if e = body.slice(int(size)); e == nil {
			return nil, fmt.Errorf("%w: envelope %d straddles two pieces", ErrFrame, len(envs)+1)
		}
		envs = append(envs, e)
	}
	if n := body.remaining(); n != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the envelopes", ErrFrame, n)
	}
	return envs, nil
}

// pieces is a body held in pieces, read from the front. done, if set,
// gets each piece once it is read past (to recycle it).
type pieces struct {
	bufs [][]byte
	off  int // into bufs[0]
	done func([]byte)
}

func (p *pieces) remaining() int {
	n := -p.off
	for _, b := range p.bufs {
		n += len(b)
	}
	return n
}

// advance drops the pieces read past.
func (p *pieces) advance() {
	for len(p.bufs) > 0 && p.off == len(p.bufs[0]) {
		if p.done != nil {
			p.done(p.bufs[0])
		}
		p.bufs[0] = nil
		p.bufs, p.off = p.bufs[1:], 0
	}
}

// Read copies the next bytes into b.
func (p *pieces) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		p.advance()
		if len(p.bufs) == 0 {
			return n, io.EOF
		}
		k := copy(b[n:], p.bufs[0][p.off:])
		n += k
		p.off += k
	}
	p.advance()
	return n, nil
}

// ReadByte reads the next byte.
func (p *pieces) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := p.Read(b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// slice returns the next n bytes in place, or nil if they straddle pieces.
func (p *pieces) slice(n int) []byte {
	p.advance()
	if len(p.bufs) == 0 || len(p.bufs[0])-p.off < n {
		return nil
	}
	b := p.bufs[0][p.off : p.off+n : p.off+n]
	p.off += n
	p.advance()
	return b
}

// hash returns SHA-256 of what remains, leaving it unread.
func (p *pieces) hash() [sha256.Size]byte {
	h := sha256.New()
	for i, b := range p.bufs {
		if i == 0 {
			b = b[p.off:]
		}
		h.Write(b)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
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
