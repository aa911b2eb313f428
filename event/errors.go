package event

import "errors"

// Sentinel errors. Functions in this package wrap them with details (which
// field, which byte offset, which event), so callers test with errors.Is.
var (
	// ErrMalformed: the bytes are not a well-formed event (not the CBOR
	// shape the format requires, a wrong-sized field, a missing field).
	ErrMalformed = errors.New("malformed event")
	// ErrNonCanonical: well-formed, but not the single deterministic
	// encoding (a non-shortest integer, map keys out of order or repeated,
	// an indefinite length, an empty field that must be omitted).
	ErrNonCanonical = errors.New("non-canonical encoding")
	// ErrTooLarge: an event, header, body or list is over its limit.
	ErrTooLarge = errors.New("event too large")
	// ErrTrailingBytes: bytes follow the end of the encoded event.
	ErrTrailingBytes = errors.New("trailing bytes after event")
	// ErrInvalid: the header breaks a rule that needs no other event (a
	// zero seq, a genesis with parents, parents not sorted, an unknown
	// version).
	ErrInvalid = errors.New("invalid event")
	// ErrPayloadMismatch: the body does not match the payload hash or size
	// in the header.
	ErrPayloadMismatch = errors.New("body does not match payload hash")
	// ErrBadSignature: the author's signature does not verify.
	ErrBadSignature = errors.New("bad signature")
	// ErrBacklink: the backlink does not name the author's own previous
	// event in the same pursuance.
	ErrBacklink = errors.New("wrong backlink")
	// ErrSeqGap: the backlink names the author's event, but its seq is not
	// exactly one less.
	ErrSeqGap = errors.New("seq gap")
	// ErrLamport: the lamport clock is not 1 + the largest lamport of the
	// parents and the backlink.
	ErrLamport = errors.New("lamport clock lie")
	// ErrForeignParent: a parent belongs to another pursuance.
	ErrForeignParent = errors.New("parent from another pursuance")
	// ErrNotEquivocation: two events offered as equivocation evidence are not
	// two different signed events of one author at one seq.
	ErrNotEquivocation = errors.New("not an equivocation")
)
