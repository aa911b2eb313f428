package charter

import (
	"bytes"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// wireCharter is Charter without its methods, so that the CBOR encoder
// encodes its fields instead of calling MarshalBinary.
type wireCharter Charter

// Limits of the wire decoder. A charter nests six levels deep: charter map,
// roles array, role map, grants array, grant map, roles array.
const (
	wireMaxNesting  = 8
	wireMaxElements = 1024
)

// encMode returns the encoder of the wire form: CBOR core deterministic
// encoding (RFC 8949 §4.2.1), struct fields as maps with integer keys.
func encMode() (cbor.EncMode, error) {
	return cbor.CoreDetEncOptions().EncMode()
}

// decMode returns the strict decoder of the wire form.
func decMode() (cbor.DecMode, error) {
	return cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   wireMaxNesting,
		MaxArrayElements:  wireMaxElements,
		MaxMapPairs:       wireMaxElements,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
}

// encode returns the wire form of c, valid or not.
func (c *Charter) encode() ([]byte, error) {
	em, err := encMode()
	if err != nil {
		return nil, err
	}
	return em.Marshal((*wireCharter)(c))
}

// MarshalBinary returns the wire form of c (docs/charter.md): canonical
// CBOR, at most MaxWireSize bytes, the same bytes for equal charters. It
// returns the errors of Validate, and encodes nothing, if c is not valid.
func (c *Charter) MarshalBinary() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c.encode()
}

// Unmarshal decodes and validates a charter from its wire form. It accepts
// only the encoding MarshalBinary produces: anything else (more than
// MaxWireSize bytes, trailing bytes, duplicate or unknown map keys,
// indefinite lengths, tags, non-canonical encodings, too deep a nesting)
// is an error wrapping ErrInvalid, as is a charter Validate rejects. So
// MarshalBinary of the result returns b exactly.
func Unmarshal(b []byte) (*Charter, error) {
	invalid := func(format string, args ...any) error {
		return ErrorList{{Msg: "wire form: " + fmt.Sprintf(format, args...)}}
	}
	if len(b) > MaxWireSize {
		return nil, invalid("%d bytes (at most %d)", len(b), MaxWireSize)
	}
	dm, err := decMode()
	if err != nil {
		return nil, fmt.Errorf("charter: %w", err)
	}
	var w wireCharter
	if err := dm.Unmarshal(b, &w); err != nil {
		return nil, invalid("%v", err)
	}
	c := (*Charter)(&w)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if canon, err := c.encode(); err != nil || !bytes.Equal(canon, b) {
		return nil, invalid("not the canonical encoding")
	}
	return c, nil
}
