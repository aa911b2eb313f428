package event

import (
	"encoding/binary"
	"fmt"
)

// This file holds the small, strict CBOR reader and writer used for the
// event header and the event container. They accept exactly the subset of
// RFC 8949 "core deterministic" encoding that those objects use: unsigned
// integers, byte strings, definite-length arrays and maps with unsigned
// integer keys, and null. Every argument must use its shortest form; map
// keys must be strictly ascending (which also forbids duplicates); tags,
// floats, text strings, negative integers and indefinite lengths are
// rejected. Decoding and re-encoding therefore always gives the same bytes.

// CBOR major types.
const (
	majorUint  = 0
	majorBytes = 2
	majorArray = 4
	majorMap   = 5
	majorOther = 7
)

// cborNull is the one-byte encoding of CBOR null.
const cborNull = 0xf6

// appendHead appends a CBOR item head with the given major type and
// argument in its shortest form.
func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		b = append(b, m|27)
		return binary.BigEndian.AppendUint64(b, n)
	}
}

func appendUint(b []byte, n uint64) []byte { return appendHead(b, majorUint, n) }

func appendBytes(b, v []byte) []byte {
	b = appendHead(b, majorBytes, uint64(len(v)))
	return append(b, v...)
}

// reader decodes the strict subset from a byte slice. Errors wrap
// ErrMalformed or ErrNonCanonical and carry the byte offset.
type reader struct {
	b   []byte
	off int
}

func (r *reader) errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", sentinel, r.off, fmt.Sprintf(format, args...))
}

// head reads an item head and returns its major type and argument.
func (r *reader) head() (major byte, n uint64, err error) {
	if r.off >= len(r.b) {
		return 0, 0, r.errf(ErrMalformed, "unexpected end of input")
	}
	start := r.off
	ib := r.b[r.off]
	r.off++
	major, ai := ib>>5, ib&0x1f
	var size int
	switch {
	case ai < 24:
		return major, uint64(ai), nil
	case ai == 24:
		size = 1
	case ai == 25:
		size = 2
	case ai == 26:
		size = 4
	case ai == 27:
		size = 8
	case ai == 31 && major >= majorBytes && major <= majorMap:
		// Indefinite-length byte string, text string, array or map:
		// well-formed CBOR, but never deterministic.
		r.off = start
		return 0, 0, r.errf(ErrNonCanonical, "indefinite-length item")
	default:
		r.off = start
		return 0, 0, r.errf(ErrMalformed, "reserved additional information %d", ai)
	}
	if len(r.b)-r.off < size {
		r.off = start
		return 0, 0, r.errf(ErrMalformed, "unexpected end of input in item head")
	}
	switch size {
	case 1:
		n = uint64(r.b[r.off])
	case 2:
		n = uint64(binary.BigEndian.Uint16(r.b[r.off:]))
	case 4:
		n = uint64(binary.BigEndian.Uint32(r.b[r.off:]))
	case 8:
		n = binary.BigEndian.Uint64(r.b[r.off:])
	}
	r.off += size
	if major == majorOther {
		// Simple values and floats: only the one-byte null is used, and it
		// never reaches here (ai < 24).
		r.off = start
		return 0, 0, r.errf(ErrMalformed, "unexpected float or simple value")
	}
	if (size == 1 && n < 24) || (size == 2 && n <= 0xff) || (size == 4 && n <= 0xffff) || (size == 8 && n <= 0xffffffff) {
		r.off = start
		return 0, 0, r.errf(ErrNonCanonical, "integer %d not in its shortest form", n)
	}
	return major, n, nil
}

func (r *reader) expect(want byte, what string) (uint64, error) {
	start := r.off
	major, n, err := r.head()
	if err != nil {
		return 0, err
	}
	if major != want {
		r.off = start
		return 0, r.errf(ErrMalformed, "%s: got CBOR major type %d, want %d", what, major, want)
	}
	return n, nil
}

func (r *reader) uint(what string) (uint64, error) { return r.expect(majorUint, what) }

// bytes reads a byte string of at most max bytes. The result aliases the
// input.
func (r *reader) bytes(what string, max int) ([]byte, error) {
	n, err := r.expect(majorBytes, what)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, r.errf(ErrTooLarge, "%s is %d bytes, limit %d", what, n, max)
	}
	if uint64(len(r.b)-r.off) < n {
		return nil, r.errf(ErrMalformed, "%s: unexpected end of input", what)
	}
	v := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return v, nil
}

// fixed reads a byte string of exactly len(dst) bytes into dst. Any other
// length, shorter or longer, is ErrMalformed.
func (r *reader) fixed(what string, dst []byte) error {
	start := r.off
	n, err := r.expect(majorBytes, what)
	if err != nil {
		return err
	}
	if n != uint64(len(dst)) {
		r.off = start
		return r.errf(ErrMalformed, "%s is %d bytes, want %d", what, n, len(dst))
	}
	if len(r.b)-r.off < len(dst) {
		return r.errf(ErrMalformed, "%s: unexpected end of input", what)
	}
	r.off += copy(dst, r.b[r.off:])
	return nil
}

func (r *reader) peekNull() bool { return r.off < len(r.b) && r.b[r.off] == cborNull }

func (r *reader) done() error {
	if r.off != len(r.b) {
		return r.errf(ErrTrailingBytes, "%d bytes after the end of the item", len(r.b)-r.off)
	}
	return nil
}
