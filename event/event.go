package event

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/pursuance/pursuance/identity"
)

// Event is one signed entry of a pursuance's log: a header, the author's
// signature over the header's exact bytes, and an optional body that the
// header references by hash.
//
// An Event is immutable once made by Decode or Sign; its methods are safe
// for concurrent use. The slices it returns alias its storage and must not
// be modified.
type Event struct {
	Header
	header []byte // the exact signed header bytes
	sig    [identity.SignatureSize]byte
	body   []byte // nil when absent (pruned or withheld)
	id     ID
}

// ID returns the event's ID.
func (e *Event) ID() ID { return e.id }

// PursuanceID returns the ID of the pursuance the event belongs to: the
// header's Pursuance field, or the event's own ID for a genesis event.
func (e *Event) PursuanceID() ID {
	if e.Pursuance.IsZero() {
		return e.id
	}
	return e.Pursuance
}

// HeaderBytes returns the exact header bytes the signature covers.
func (e *Event) HeaderBytes() []byte { return e.header }

// Signature returns the author's Ed25519 signature.
func (e *Event) Signature() []byte { return e.sig[:] }

// Body returns the body, or nil if this copy of the event has none.
func (e *Event) Body() []byte { return e.body }

// HasBody reports whether this copy of the event carries its body.
func (e *Event) HasBody() bool { return e.body != nil }

// WithoutBody returns a copy of the event with the body pruned. The ID and
// signature are unchanged.
func (e *Event) WithoutBody() *Event {
	c := *e
	c.body = nil
	return &c
}

// WithBody returns a copy of the event carrying a copy of body, or
// ErrPayloadMismatch if body is not the one the header references. A nil
// body is the empty body: the result always has HasBody true.
func (e *Event) WithBody(body []byte) (*Event, error) {
	if err := checkBody(&e.Header, body); err != nil {
		return nil, err
	}
	c := *e
	c.body = append([]byte{}, body...)
	return &c, nil
}

// Encode returns the event's wire form (docs/events.md): a CBOR array of the
// header bytes, the signature and the body (or null).
func (e *Event) Encode() []byte {
	return e.AppendEncode(make([]byte, 0, e.EncodedSize()))
}

// EncodedSize returns len(e.Encode()).
func (e *Event) EncodedSize() int {
	n := 1 + headSize(uint64(len(e.header))) + len(e.header) + 2 + len(e.sig)
	if e.body == nil {
		return n + 1
	}
	return n + headSize(uint64(len(e.body))) + len(e.body)
}

func headSize(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

// AppendEncode appends the wire form to b.
func (e *Event) AppendEncode(b []byte) []byte {
	b = appendHead(b, majorArray, 3)
	b = appendBytes(b, e.header)
	b = appendBytes(b, e.sig[:])
	if e.body == nil {
		return append(b, cborNull)
	}
	return appendBytes(b, e.body)
}

// Skeleton returns a copy of the event's parsed header and ID alone, for
// a fold that keeps every event of a log (state.Builder): no body, no
// header bytes, no signature, so that it keeps nothing of the buffer
// Decode read them into. It cannot be encoded, verified or sent: Encode
// gives what Decode rejects, VerifySignature fails.
func (e *Event) Skeleton() *Event {
	return &Event{Header: e.Header, id: e.id}
}

// Decode parses the wire form of one event. It checks the encoding (strict,
// canonical, within limits, nothing trailing) and computes the ID; it does
// not check the rules (StaticValidate), the signature (VerifySignature) or
// the links to other events (CheckLinks). The event copies nothing from b
// and keeps no reference to it.
func Decode(b []byte) (*Event, error) {
	if len(b) > MaxEventSize {
		return nil, fmt.Errorf("event: %w: %d bytes, limit %d", ErrTooLarge, len(b), MaxEventSize)
	}
	b = bytes.Clone(b)
	r := reader{b: b}
	n, err := r.expect(majorArray, "event")
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if n != 3 {
		return nil, fmt.Errorf("event: %w: array of %d items, want 3", ErrMalformed, n)
	}
	e := new(Event)
	if e.header, err = r.bytes("header", MaxHeaderSize); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if err := r.fixed("signature", e.sig[:]); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if r.peekNull() {
		r.off++
	} else if e.body, err = r.bytes("body", MaxBodySize); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if err := decodeHeader(e.header, &e.Header); err != nil {
		return nil, fmt.Errorf("event: header: %w", err)
	}
	e.id = computeID(e.header, e.sig[:])
	return e, nil
}

// FromParts rebuilds an event from separately stored header bytes,
// signature and body (nil for none), as Decode would from the wire form.
func FromParts(header, sig, body []byte) (*Event, error) {
	e := new(Event)
	if len(sig) != len(e.sig) {
		return nil, fmt.Errorf("event: %w: signature is %d bytes, want %d", ErrMalformed, len(sig), len(e.sig))
	}
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("event: %w: body is %d bytes, limit %d", ErrTooLarge, len(body), MaxBodySize)
	}
	e.header = bytes.Clone(header)
	copy(e.sig[:], sig)
	if body != nil {
		e.body = bytes.Clone(body)
	}
	if err := decodeHeader(e.header, &e.Header); err != nil {
		return nil, fmt.Errorf("event: header: %w", err)
	}
	e.id = computeID(e.header, e.sig[:])
	return e, nil
}

// StaticValidate checks every rule that needs no other event, and is cheap:
// run it before any signature work. It checks the body against the payload
// hash when the body is present.
func (e *Event) StaticValidate() error {
	if err := e.Header.StaticValidate(); err != nil {
		return fmt.Errorf("event %s: %w", e.id.Short(), err)
	}
	if e.body != nil {
		if err := checkBody(&e.Header, e.body); err != nil {
			return fmt.Errorf("event %s: %w", e.id.Short(), err)
		}
	}
	return nil
}

// StaticValidate checks the header's own rules (docs/events.md, "Static
// rules").
func (h *Header) StaticValidate() error {
	switch {
	case h.Version != Version:
		return fmt.Errorf("%w: version %d, want %d", ErrInvalid, h.Version, Version)
	case h.Author.IsZero():
		return fmt.Errorf("%w: zero author key", ErrInvalid)
	case h.Seq == 0:
		return fmt.Errorf("%w: seq 0; chains start at 1", ErrInvalid)
	case h.Kind == KindInvalid:
		return fmt.Errorf("%w: kind 0", ErrInvalid)
	case h.PayloadSize > MaxBodySize:
		return fmt.Errorf("%w: payload size %d, limit %d", ErrTooLarge, h.PayloadSize, MaxBodySize)
	case len(h.Parents) > MaxParents:
		return fmt.Errorf("%w: %d parents, limit %d", ErrTooLarge, len(h.Parents), MaxParents)
	}
	if h.Seq == 1 && !h.Backlink.IsZero() {
		return fmt.Errorf("%w: seq 1 has a backlink", ErrBacklink)
	}
	if h.Seq > 1 && h.Backlink.IsZero() {
		return fmt.Errorf("%w: seq %d has no backlink", ErrBacklink, h.Seq)
	}
	for i := 1; i < len(h.Parents); i++ {
		if c := h.Parents[i-1].Compare(h.Parents[i]); c >= 0 {
			if c == 0 {
				return fmt.Errorf("%w: parent %s listed twice", ErrInvalid, h.Parents[i].Short())
			}
			return fmt.Errorf("%w: parents not in ascending order", ErrInvalid)
		}
	}
	if h.Kind == KindGenesis {
		switch {
		case !h.Pursuance.IsZero():
			return fmt.Errorf("%w: genesis names a pursuance", ErrInvalid)
		case h.Seq != 1:
			return fmt.Errorf("%w: genesis at seq %d, want 1", ErrInvalid, h.Seq)
		case len(h.Parents) != 0:
			return fmt.Errorf("%w: genesis has parents", ErrInvalid)
		case h.Lamport != 1:
			return fmt.Errorf("%w: genesis lamport %d, want 1", ErrLamport, h.Lamport)
		}
		return nil
	}
	switch {
	case h.Pursuance.IsZero():
		return fmt.Errorf("%w: %s event names no pursuance", ErrInvalid, h.Kind)
	case len(h.Parents) == 0:
		return fmt.Errorf("%w: %s event has no parents", ErrInvalid, h.Kind)
	case h.Lamport < 2:
		return fmt.Errorf("%w: lamport %d below any parent's successor", ErrLamport, h.Lamport)
	}
	return nil
}

func checkBody(h *Header, body []byte) error {
	if uint64(len(body)) != h.PayloadSize {
		return fmt.Errorf("%w: body is %d bytes, header says %d", ErrPayloadMismatch, len(body), h.PayloadSize)
	}
	if PayloadHash(body) != h.PayloadHash {
		return fmt.Errorf("%w: body hash differs from the header's", ErrPayloadMismatch)
	}
	return nil
}

// VerifySignature checks the author's signature over the exact header
// bytes. It is the expensive check (tens of microseconds); see the ingest
// package for when it may be skipped.
func (e *Event) VerifySignature() error {
	if !e.Author.Verify(sigMessage(e.header), e.sig[:]) {
		return fmt.Errorf("event %s: %w by %s", e.id.Short(), ErrBadSignature, e.Author.Short())
	}
	return nil
}

// Ref is what the chain rules need to know about an event that another
// event links to.
type Ref struct {
	ID        ID
	Pursuance ID // the pursuance it belongs to (for a genesis event, its own ID)
	Author    identity.PublicKey
	Seq       uint64
	Lamport   uint64
}

// Ref returns e's Ref.
func (e *Event) Ref() Ref {
	return Ref{ID: e.id, Pursuance: e.PursuanceID(), Author: e.Author, Seq: e.Seq, Lamport: e.Lamport}
}

// CheckLinks checks e against the events it links to: back is the event its
// backlink names (nil exactly when e.Seq is 1), parents the events its
// parents name, in the header's order. Finding those events is the
// caller's job; an event whose links name events the caller does not have
// cannot be checked yet (it waits).
func CheckLinks(e *Event, back *Ref, parents []Ref) error {
	if err := checkLinks(e, back, parents); err != nil {
		return fmt.Errorf("event %s: %w", e.id.Short(), err)
	}
	return nil
}

func checkLinks(e *Event, back *Ref, parents []Ref) error {
	if len(parents) != len(e.Parents) {
		return fmt.Errorf("checking links: %d parents given for %d", len(parents), len(e.Parents))
	}
	pid := e.PursuanceID()
	max := uint64(0)
	if e.Seq == 1 {
		if back != nil {
			return fmt.Errorf("%w: seq 1 has a backlink", ErrBacklink)
		}
	} else {
		switch {
		case back == nil || back.ID != e.Backlink:
			return fmt.Errorf("checking links: backlink event not given")
		case !back.Author.Equal(e.Author):
			return fmt.Errorf("%w: backlink %s is by %s, not the author", ErrBacklink, back.ID.Short(), back.Author.Short())
		case back.Pursuance != pid:
			return fmt.Errorf("%w: backlink %s is in another pursuance", ErrBacklink, back.ID.Short())
		case back.Seq != e.Seq-1:
			return fmt.Errorf("%w: backlink %s is seq %d, event is seq %d", ErrSeqGap, back.ID.Short(), back.Seq, e.Seq)
		}
		max = back.Lamport
	}
	for i, p := range parents {
		if p.ID != e.Parents[i] {
			return fmt.Errorf("checking links: parent %d is %s, given %s", i, e.Parents[i].Short(), p.ID.Short())
		}
		if p.Pursuance != pid {
			return fmt.Errorf("%w: parent %s", ErrForeignParent, p.ID.Short())
		}
		max = maxU(max, p.Lamport)
	}
	if e.Kind != KindGenesis && e.Lamport != max+1 {
		return fmt.Errorf("%w: lamport %d, want %d (1 + max of parents and backlink)", ErrLamport, e.Lamport, max+1)
	}
	return nil
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// Draft is an event not yet signed.
type Draft struct {
	Pursuance ID // zero for genesis
	Seq       uint64
	Backlink  ID
	Parents   []ID // any order; Sign sorts them and drops repeats
	Lamport   uint64
	Kind      Kind
	Time      uint64 // Unix milliseconds, display only
	Body      []byte
}

// Sign signs d as key's event. It checks the static rules, so a Draft that
// could never be valid is an error, not an event.
func Sign(key *identity.SigningKey, d Draft) (*Event, error) {
	if len(d.Body) > MaxBodySize {
		return nil, fmt.Errorf("event: sign: %w: body is %d bytes, limit %d", ErrTooLarge, len(d.Body), MaxBodySize)
	}
	parents := slices.Clone(d.Parents)
	slices.SortFunc(parents, ID.Compare)
	parents = slices.Compact(parents)
	e := &Event{Header: Header{
		Version:     Version,
		Pursuance:   d.Pursuance,
		Author:      key.Public(),
		Seq:         d.Seq,
		Backlink:    d.Backlink,
		Parents:     parents,
		Lamport:     d.Lamport,
		Kind:        d.Kind,
		PayloadHash: PayloadHash(d.Body),
		PayloadSize: uint64(len(d.Body)),
		Time:        d.Time,
	}}
	if err := e.Header.StaticValidate(); err != nil {
		return nil, fmt.Errorf("event: sign: %w", err)
	}
	e.header = e.Header.AppendEncode(nil)
	if len(e.header) > MaxHeaderSize {
		return nil, fmt.Errorf("event: sign: %w: header is %d bytes", ErrTooLarge, len(e.header))
	}
	copy(e.sig[:], key.Sign(sigMessage(e.header)))
	e.body = slices.Clone(d.Body)
	if e.body == nil {
		e.body = []byte{}
	}
	e.id = computeID(e.header, e.sig[:])
	return e, nil
}

// Equivocation records that one author signed two different events at the
// same seq of one pursuance. A and B are the two event IDs, A < B.
type Equivocation struct {
	Pursuance ID
	Author    identity.PublicKey
	Seq       uint64
	A, B      ID
}

// CheckEquivocation returns the record proving that a and b equivocate, or
// an error wrapping ErrNotEquivocation. It does not verify signatures: the
// caller has already accepted both events.
func CheckEquivocation(a, b *Event) (Equivocation, error) {
	switch {
	case a.id == b.id:
		return Equivocation{}, fmt.Errorf("event: %w: one event twice", ErrNotEquivocation)
	case !a.Author.Equal(b.Author):
		return Equivocation{}, fmt.Errorf("event: %w: different authors", ErrNotEquivocation)
	case a.Seq != b.Seq:
		return Equivocation{}, fmt.Errorf("event: %w: seq %d and %d", ErrNotEquivocation, a.Seq, b.Seq)
	case a.PursuanceID() != b.PursuanceID():
		return Equivocation{}, fmt.Errorf("event: %w: different pursuances", ErrNotEquivocation)
	}
	if a.id.Compare(b.id) > 0 {
		a, b = b, a
	}
	return Equivocation{Pursuance: a.PursuanceID(), Author: a.Author, Seq: a.Seq, A: a.id, B: b.id}, nil
}

// ForkedFrom returns, for each author that equivocated, the lowest seq at
// which it did: the author is flagged from that seq on, since everything
// it signed after a fork may belong to either branch.
func ForkedFrom(evidence []Equivocation) map[identity.PublicKey]uint64 {
	out := make(map[identity.PublicKey]uint64)
	for _, q := range evidence {
		if s, ok := out[q.Author]; !ok || q.Seq < s {
			out[q.Author] = q.Seq
		}
	}
	return out
}
