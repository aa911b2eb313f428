package event_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/pursuance/pursuance/event"
)

// decodeErrs are the only errors Decode may return (wrapped).
var decodeErrs = []error{event.ErrMalformed, event.ErrNonCanonical, event.ErrTooLarge, event.ErrTrailingBytes}

// fuzzSeeds returns the wire bytes of every event in the golden vectors,
// context and tested event alike, plus a few hand-picked inputs.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, v := range readVectors(f, vectorDir) {
		for _, h := range append(v.Context, v.Event) {
			b, err := hex.DecodeString(h)
			if err != nil {
				f.Fatalf("vector %s: %v", v.Name, err)
			}
			seeds = append(seeds, b)
		}
	}
	return append(seeds,
		nil,
		[]byte{0x83},
		[]byte{0x83, 0x40, 0x40, 0xf6},
		[]byte{0x83, 0x41, 0xa0, 0x58, 0x40},
		[]byte{0x83, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		[]byte{0x9f, 0xff},
	)
}

// checkDecoded checks what must hold of every event Decode accepts.
func checkDecoded(t *testing.T, data []byte, e *event.Event) {
	if got := e.Encode(); !bytes.Equal(got, data) {
		t.Fatalf("Encode does not reproduce the input:\n got %x\nwant %x", got, data)
	}
	if e.EncodedSize() != len(data) {
		t.Fatalf("EncodedSize = %d, input is %d bytes", e.EncodedSize(), len(data))
	}
	h, err := event.DecodeHeader(e.HeaderBytes())
	if err != nil {
		t.Fatalf("DecodeHeader of decoded header bytes: %v", err)
	}
	if got := h.AppendEncode(nil); !bytes.Equal(got, e.HeaderBytes()) {
		t.Fatalf("header re-encodes differently:\n got %x\nwant %x", got, e.HeaderBytes())
	}
	if got := cMap(fieldsOf(&e.Header)); !bytes.Equal(got, e.HeaderBytes()) {
		t.Fatalf("spec encoder disagrees:\n got %x\nwant %x", got, e.HeaderBytes())
	}
	if id := sha256.Sum256(cat([]byte(specLabelID), []byte{0}, e.HeaderBytes(), e.Signature())); id != e.ID() {
		t.Fatalf("ID differs from the spec's")
	}
	var body []byte
	if e.HasBody() {
		body = e.Body()
	}
	p, err := event.FromParts(e.HeaderBytes(), e.Signature(), body)
	if err != nil {
		t.Fatalf("FromParts of decoded parts: %v", err)
	}
	if !bytes.Equal(p.Encode(), data) || p.ID() != e.ID() {
		t.Fatalf("FromParts differs from Decode")
	}
}

// FuzzDecode: Decode never panics, fails only with its sentinels, and
// whatever it accepts is the one canonical encoding of what it decoded.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := event.Decode(data)
		if err != nil {
			if e != nil {
				t.Fatalf("Decode returned an event and an error")
			}
			n := 0
			for _, s := range decodeErrs {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("Decode error matches %d of its sentinels: %v", n, err)
			}
			return
		}
		checkDecoded(t, data, e)
	})
}

// FuzzValidate decodes and then runs every other check, with links to
// synthetic events chosen by mode. Nothing panics, every rejection names
// exactly one rule, and anything accepted round-trips. With mode 0 the
// synthetic events are exactly what the event claims to link to, so an
// event that passes the static rules must pass CheckLinks too.
func FuzzValidate(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		for mode := range byte(4) {
			f.Add(s, mode)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, mode byte) {
		e, err := event.Decode(data)
		if err != nil {
			return
		}
		staticErr := e.StaticValidate()
		sigErr := e.VerifySignature()
		if sigErr != nil && !errors.Is(sigErr, event.ErrBadSignature) {
			t.Fatalf("VerifySignature: %v", sigErr)
		}
		pid := e.PursuanceID()
		var back *event.Ref
		if e.Seq > 1 || mode&1 != 0 {
			back = &event.Ref{ID: e.Backlink, Pursuance: pid, Author: e.Author, Seq: e.Seq - 1, Lamport: e.Lamport - 1}
		}
		parents := make([]event.Ref, len(e.Parents))
		for i, p := range e.Parents {
			parents[i] = event.Ref{ID: p, Pursuance: pid, Lamport: e.Lamport - 1}
			if mode&2 != 0 {
				parents[i].Lamport = e.Lamport - 1 - uint64(i%2)
			}
			if mode&4 != 0 && i == len(e.Parents)-1 {
				parents[i].Pursuance[0] ^= 1
			}
			if mode&8 != 0 {
				parents[i].Lamport = uint64(mode) << 56
			}
		}
		if mode&16 != 0 && back != nil {
			back.Seq += uint64(mode >> 5)
		}
		linkErr := event.CheckLinks(e, back, parents)
		if staticErr != nil {
			if len(sentinels(staticErr)) != 1 {
				t.Fatalf("StaticValidate error matches %v: %v", sentinels(staticErr), staticErr)
			}
			return
		}
		if linkErr != nil && mode == 0 {
			t.Fatalf("statically valid event fails CheckLinks against the events it names: %v", linkErr)
		}
		if sigErr == nil && linkErr == nil {
			checkDecoded(t, data, e)
		}
	})
}
