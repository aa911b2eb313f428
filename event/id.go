package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// IDSize is the size of an event ID (and of every other hash in events).
const IDSize = sha256.Size

// ID identifies an event: SHA-256 over a domain-separation label, the exact
// header bytes and the signature (docs/events.md). The ID of a pursuance is
// the ID of its genesis event.
type ID [IDSize]byte

// String returns the ID in lowercase hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex digits, for display.
func (id ID) Short() string { return id.String()[:12] }

// IsZero reports whether id is all zeros, which no event has.
func (id ID) IsZero() bool { return id == ID{} }

// Compare orders IDs bytewise, as the tie-break after lamport clocks.
func (id ID) Compare(o ID) int { return bytes.Compare(id[:], o[:]) }

// MarshalText implements encoding.TextMarshaler (lowercase hex).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseID parses a 64-digit hex ID.
func ParseID(s string) (ID, error) {
	s = strings.TrimSpace(s)
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("event: ID %q has %d hex digits, want %d", s, len(s), 2*IDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("event: ID %q: %w", s, err)
	}
	return id, nil
}

// Domain-separation labels. Each is followed by a zero byte before the data,
// so no label is a prefix of data under another label.
const (
	labelEventID  = "pursuance/v1/event-id"
	labelEventSig = "pursuance/v1/event-sig"
	labelPayload  = "pursuance/v1/payload"
)

// PayloadHash returns the hash of an event body as the header records it.
func PayloadHash(body []byte) ID {
	h := sha256.New()
	h.Write([]byte(labelPayload))
	h.Write([]byte{0})
	h.Write(body)
	var id ID
	h.Sum(id[:0])
	return id
}

// computeID hashes the signed header.
func computeID(header, sig []byte) ID {
	h := sha256.New()
	h.Write([]byte(labelEventID))
	h.Write([]byte{0})
	h.Write(header)
	h.Write(sig)
	var id ID
	h.Sum(id[:0])
	return id
}

// sigMessage is what the author signs: the label, a zero byte, the header.
func sigMessage(header []byte) []byte {
	msg := make([]byte, 0, len(labelEventSig)+1+len(header))
	msg = append(msg, labelEventSig...)
	msg = append(msg, 0)
	return append(msg, header...)
}
