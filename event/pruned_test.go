package event_test

import (
	"testing"

	"github.com/pursuance/pursuance/event"
)

// Skeleton keeps the parsed header and the ID of an event, nothing of the
// buffer Decode read it into, and is never taken for the event: it does
// not verify, and its encoding does not decode.
func TestSkeleton(t *testing.T) {
	w := newVectorWorld(t)
	d, err := event.Decode(w.a3.Encode())
	if err != nil {
		t.Fatal(err)
	}
	s := d.Skeleton()
	if s.HasBody() || s.ID() != d.ID() || s.PursuanceID() != d.PursuanceID() || s.Author != d.Author || s.Seq != d.Seq ||
		s.Lamport != d.Lamport || s.Backlink != d.Backlink || len(s.Parents) != len(d.Parents) || len(s.HeaderBytes()) != 0 {
		t.Fatalf("skeleton: %+v, of %+v", s.Header, d.Header)
	}
	if s.VerifySignature() == nil {
		t.Error("a skeleton verifies")
	}
	if _, err := event.Decode(s.Encode()); err == nil {
		t.Error("a skeleton's encoding decodes")
	}
}
