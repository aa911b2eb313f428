package event_test

// This file holds a second, independent encoder for the wire format, written
// from docs/events.md rather than from the package's code. The tests use it
// to cross-check the package's encoder and to build the malformed and
// non-canonical inputs that the package's encoder refuses to produce.

import (
	"encoding/binary"
	"slices"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// Labels, spelled out again from docs/events.md.
const (
	specLabelID      = "pursuance/v1/event-id"
	specLabelSig     = "pursuance/v1/event-sig"
	specLabelPayload = "pursuance/v1/payload"
)

// cHead encodes a CBOR item head in its shortest form.
func cHead(major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return []byte{m | byte(n)}
	case n <= 0xff:
		return []byte{m | 24, byte(n)}
	case n <= 0xffff:
		return []byte{m | 25, byte(n >> 8), byte(n)}
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32([]byte{m | 26}, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{m | 27}, n)
}

func cUint(n uint64) []byte { return cHead(0, n) }

func cBytes(b []byte) []byte { return append(cHead(2, uint64(len(b))), b...) }

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// field is one header map entry, key and value already encoded.
type field struct{ key, val []byte }

func kv(key uint64, val []byte) field { return field{cUint(key), val} }

// fieldsOf returns the canonical entries of h, following the key table of
// docs/events.md.
func fieldsOf(h *event.Header) []field {
	fs := []field{kv(1, cUint(h.Version))}
	if !h.Pursuance.IsZero() {
		fs = append(fs, kv(2, cBytes(h.Pursuance[:])))
	}
	fs = append(fs, kv(3, cBytes(h.Author[:])), kv(4, cUint(h.Seq)))
	if !h.Backlink.IsZero() {
		fs = append(fs, kv(5, cBytes(h.Backlink[:])))
	}
	if len(h.Parents) > 0 {
		ps := cHead(4, uint64(len(h.Parents)))
		for _, p := range h.Parents {
			ps = append(ps, cBytes(p[:])...)
		}
		fs = append(fs, kv(6, ps))
	}
	return append(fs,
		kv(7, cUint(h.Lamport)),
		kv(8, cUint(uint64(h.Kind))),
		kv(9, cBytes(h.PayloadHash[:])),
		kv(10, cUint(h.PayloadSize)),
		kv(11, cUint(h.Time)),
	)
}

// cMap encodes entries as a definite-length map, in the order given.
func cMap(fs []field) []byte {
	b := cHead(5, uint64(len(fs)))
	for _, f := range fs {
		b = append(b, f.key...)
		b = append(b, f.val...)
	}
	return b
}

// findField returns the index of the entry with the given (shortest-form)
// key, or -1.
func findField(fs []field, key uint64) int {
	k := cUint(key)
	return slices.IndexFunc(fs, func(f field) bool { return string(f.key) == string(k) })
}

// specSign signs header bytes as docs/events.md says.
func specSign(k *identity.SigningKey, header []byte) []byte {
	return k.Sign(cat([]byte(specLabelSig), []byte{0}, header))
}

// container encodes the event container. A nil body is null.
func container(header, sig, body []byte) []byte {
	b := cat(cHead(4, 3), cBytes(header), cBytes(sig))
	if body == nil {
		return append(b, 0xf6)
	}
	return append(b, cBytes(body)...)
}
