package event

import (
	"fmt"

	"github.com/pursuance/pursuance/identity"
)

// Version is the only header version this package reads and writes.
const Version = 1

// Limits. Decoding rejects anything larger with ErrTooLarge before doing any
// other work, so a hostile peer cannot make a reader allocate or hash more.
const (
	MaxHeaderSize = 4096      // bytes of encoded header
	MaxParents    = 64        // causal parents per event
	MaxBodySize   = 512 << 10 // bytes of body
	MaxEventSize  = MaxHeaderSize + MaxBodySize + 128
)

// Header field keys: unsigned integers, written in ascending order. Part of
// the wire format: only append.
const (
	keyVersion     = 1
	keyPursuance   = 2
	keyAuthor      = 3
	keySeq         = 4
	keyBacklink    = 5
	keyParents     = 6
	keyLamport     = 7
	keyKind        = 8
	keyPayloadHash = 9
	keyPayloadSize = 10
	keyTime        = 11
)

// Header is the signed part of an event. The body is not in it; only its
// hash and size are, so a body can be encrypted or pruned while the header
// still verifies.
type Header struct {
	Version uint64
	// Pursuance is the ID of the pursuance's genesis event. It is zero in
	// the genesis event itself, whose own ID is the pursuance ID.
	Pursuance ID
	// Author is the member's signing key.
	Author identity.PublicKey
	// Seq is the position in the author's chain in this pursuance, from 1.
	Seq uint64
	// Backlink is the ID of the author's event at Seq-1; zero when Seq is 1.
	Backlink ID
	// Parents are the heads of the log the author had seen, in ascending
	// byte order without repeats. Only the genesis event has none.
	Parents []ID
	// Lamport is 1 + the largest lamport clock among the parents and the
	// backlink event; 1 for the genesis event.
	Lamport uint64
	// Kind says what the event does.
	Kind Kind
	// PayloadHash is PayloadHash(body); PayloadSize is len(body).
	PayloadHash ID
	PayloadSize uint64
	// Time is the author's claimed wall-clock time in Unix milliseconds.
	// It is for display only: nothing is ordered or decided by it.
	Time uint64
}

// IsGenesis reports whether the header claims to found a pursuance.
func (h *Header) IsGenesis() bool { return h.Kind == KindGenesis }

// AppendEncode appends the header's deterministic CBOR encoding to b.
func (h *Header) AppendEncode(b []byte) []byte {
	n := uint64(8)
	if !h.Pursuance.IsZero() {
		n++
	}
	if !h.Backlink.IsZero() {
		n++
	}
	if len(h.Parents) > 0 {
		n++
	}
	b = appendHead(b, majorMap, n)
	b = appendUint(b, keyVersion)
	b = appendUint(b, h.Version)
	if !h.Pursuance.IsZero() {
		b = appendUint(b, keyPursuance)
		b = appendBytes(b, h.Pursuance[:])
	}
	b = appendUint(b, keyAuthor)
	b = appendBytes(b, h.Author[:])
	b = appendUint(b, keySeq)
	b = appendUint(b, h.Seq)
	if !h.Backlink.IsZero() {
		b = appendUint(b, keyBacklink)
		b = appendBytes(b, h.Backlink[:])
	}
	if len(h.Parents) > 0 {
		b = appendUint(b, keyParents)
		b = appendHead(b, majorArray, uint64(len(h.Parents)))
		for i := range h.Parents {
			b = appendBytes(b, h.Parents[i][:])
		}
	}
	b = appendUint(b, keyLamport)
	b = appendUint(b, h.Lamport)
	b = appendUint(b, keyKind)
	b = appendUint(b, uint64(h.Kind))
	b = appendUint(b, keyPayloadHash)
	b = appendBytes(b, h.PayloadHash[:])
	b = appendUint(b, keyPayloadSize)
	b = appendUint(b, h.PayloadSize)
	b = appendUint(b, keyTime)
	b = appendUint(b, h.Time)
	return b
}

// DecodeHeader decodes exactly one header from b, which must be its whole
// canonical encoding. It checks the encoding only; StaticValidate checks
// the rules.
func DecodeHeader(b []byte) (*Header, error) {
	var h Header
	if err := decodeHeader(b, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

func decodeHeader(b []byte, h *Header) error {
	if len(b) > MaxHeaderSize {
		return fmt.Errorf("%w: header is %d bytes, limit %d", ErrTooLarge, len(b), MaxHeaderSize)
	}
	r := reader{b: b}
	n, err := r.expect(majorMap, "header")
	if err != nil {
		return err
	}
	if n > keyTime {
		return r.errf(ErrMalformed, "header has %d fields, at most %d are defined", n, keyTime)
	}
	var seen uint64 // bit i set: key i present
	last := uint64(0)
	for i := uint64(0); i < n; i++ {
		keyOff := r.off
		key, err := r.uint("header key")
		if err != nil {
			return err
		}
		if i > 0 && key <= last {
			r.off = keyOff
			if key == last {
				return r.errf(ErrNonCanonical, "duplicate header key %d", key)
			}
			return r.errf(ErrNonCanonical, "header key %d after key %d: keys must ascend", key, last)
		}
		last = key
		seen |= 1 << key
		switch key {
		case keyVersion:
			h.Version, err = r.uint("version")
		case keyPursuance:
			err = r.fixed("pursuance", h.Pursuance[:])
			if err == nil && h.Pursuance.IsZero() {
				err = r.errf(ErrNonCanonical, "zero pursuance must be omitted")
			}
		case keyAuthor:
			err = r.fixed("author", h.Author[:])
		case keySeq:
			h.Seq, err = r.uint("seq")
		case keyBacklink:
			err = r.fixed("backlink", h.Backlink[:])
			if err == nil && h.Backlink.IsZero() {
				err = r.errf(ErrNonCanonical, "zero backlink must be omitted")
			}
		case keyParents:
			err = decodeParents(&r, h)
		case keyLamport:
			h.Lamport, err = r.uint("lamport")
		case keyKind:
			var k uint64
			k, err = r.uint("kind")
			h.Kind = Kind(k)
		case keyPayloadHash:
			err = r.fixed("payload hash", h.PayloadHash[:])
		case keyPayloadSize:
			h.PayloadSize, err = r.uint("payload size")
		case keyTime:
			h.Time, err = r.uint("time")
		default:
			r.off = keyOff
			return r.errf(ErrMalformed, "unknown header key %d", key)
		}
		if err != nil {
			return err
		}
	}
	const required = 1<<keyVersion | 1<<keyAuthor | 1<<keySeq | 1<<keyLamport | 1<<keyKind | 1<<keyPayloadHash | 1<<keyPayloadSize | 1<<keyTime
	if missing := required &^ seen; missing != 0 {
		for k := uint64(1); k <= keyTime; k++ {
			if missing&(1<<k) != 0 {
				return fmt.Errorf("%w: header lacks required key %d", ErrMalformed, k)
			}
		}
	}
	return r.done()
}

func decodeParents(r *reader, h *Header) error {
	n, err := r.expect(majorArray, "parents")
	if err != nil {
		return err
	}
	if n == 0 {
		return r.errf(ErrNonCanonical, "empty parents must be omitted")
	}
	if n > MaxParents {
		return r.errf(ErrTooLarge, "%d parents, limit %d", n, MaxParents)
	}
	h.Parents = make([]ID, n)
	for i := range h.Parents {
		if err := r.fixed("parent", h.Parents[i][:]); err != nil {
			return err
		}
	}
	return nil
}
