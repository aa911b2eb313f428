package event_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// allEvents returns every valid event of the vector world, with and
// without bodies.
func allEvents(w *vectorWorld) []*event.Event {
	evs := []*event.Event{w.g, w.a2, w.b1, w.c1, w.a3, w.b2, w.c2, w.a2x, w.g2}
	for _, e := range slices.Clone(evs) {
		evs = append(evs, e.WithoutBody())
	}
	return evs
}

// sentinels returns the names of the package's sentinels that err matches.
func sentinels(err error) []string {
	var out []string
	for name, s := range expectErrs {
		if errors.Is(err, s) {
			out = append(out, name)
		}
	}
	if errors.Is(err, event.ErrNotEquivocation) {
		out = append(out, "not-equivocation")
	}
	slices.Sort(out)
	return out
}

func TestRoundTrip(t *testing.T) {
	w := newVectorWorld(t)
	for _, e := range allEvents(w) {
		wire := e.Encode()
		if len(wire) != e.EncodedSize() {
			t.Errorf("EncodedSize = %d, len(Encode()) = %d", e.EncodedSize(), len(wire))
		}
		if got := e.AppendEncode([]byte("prefix")); !bytes.Equal(got, append([]byte("prefix"), wire...)) {
			t.Errorf("AppendEncode does not append the wire form")
		}
		d, err := event.Decode(wire)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if !bytes.Equal(d.Encode(), wire) {
			t.Errorf("Decode(Encode(e)).Encode() differs")
		}
		if d.ID() != e.ID() || d.PursuanceID() != e.PursuanceID() || d.HasBody() != e.HasBody() {
			t.Errorf("decoded ID/pursuance/body presence differ")
		}
		if !bytes.Equal(d.HeaderBytes(), e.HeaderBytes()) || !bytes.Equal(d.Signature(), e.Signature()) || !bytes.Equal(d.Body(), e.Body()) {
			t.Errorf("decoded parts differ")
		}
		if !equalHeaders(&d.Header, &e.Header) {
			t.Errorf("decoded header = %+v, want %+v", d.Header, e.Header)
		}
		h, err := event.DecodeHeader(e.HeaderBytes())
		if err != nil {
			t.Fatalf("DecodeHeader: %v", err)
		}
		if got := h.AppendEncode(nil); !bytes.Equal(got, e.HeaderBytes()) {
			t.Errorf("re-encoded header differs:\n got %x\nwant %x", got, e.HeaderBytes())
		}
		// The independent encoder of wire_test.go agrees, and so do the
		// hash and ID computed from the spec.
		if got := cMap(fieldsOf(&e.Header)); !bytes.Equal(got, e.HeaderBytes()) {
			t.Errorf("spec encoding of the header differs:\n got %x\nwant %x", got, e.HeaderBytes())
		}
		if got := sha256.Sum256(cat([]byte(specLabelID), []byte{0}, e.HeaderBytes(), e.Signature())); got != e.ID() {
			t.Errorf("ID = %s, spec computes %x", e.ID(), got)
		}
		if e.HasBody() && !bytes.Equal(container(e.HeaderBytes(), e.Signature(), e.Body()), wire) {
			t.Errorf("spec container differs")
		}
	}
}

func equalHeaders(a, b *event.Header) bool {
	return a.Version == b.Version && a.Pursuance == b.Pursuance && a.Author == b.Author &&
		a.Seq == b.Seq && a.Backlink == b.Backlink && slices.Equal(a.Parents, b.Parents) &&
		a.Lamport == b.Lamport && a.Kind == b.Kind && a.PayloadHash == b.PayloadHash &&
		a.PayloadSize == b.PayloadSize && a.Time == b.Time
}

// TestHeadSizes exercises every CBOR head width in the container and the
// header: bodies whose lengths straddle each boundary, and integers of every
// width.
func TestHeadSizes(t *testing.T) {
	k := vectorKey(t, 0x01)
	for _, n := range []int{0, 1, 23, 24, 255, 256, 65535, 65536, event.MaxBodySize} {
		for _, v := range []uint64{0, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1} {
			e, err := event.Sign(k, event.Draft{Seq: 1, Lamport: 1, Kind: event.KindGenesis, Time: v, Body: make([]byte, n)})
			if err != nil {
				t.Fatal(err)
			}
			wire := e.Encode()
			if len(wire) != e.EncodedSize() {
				t.Fatalf("body %d, time %d: EncodedSize = %d, len = %d", n, v, e.EncodedSize(), len(wire))
			}
			d, err := event.Decode(wire)
			if err != nil {
				t.Fatalf("body %d, time %d: %v", n, v, err)
			}
			if d.Time != v || len(d.Body()) != n || !bytes.Equal(d.Encode(), wire) {
				t.Fatalf("body %d, time %d: round trip differs", n, v)
			}
			if !bytes.Equal(cMap(fieldsOf(&d.Header)), d.HeaderBytes()) {
				t.Fatalf("time %d: spec header encoding differs", v)
			}
		}
	}
}

// TestLargestEvent checks that an event at every limit at once (largest
// body, most parents, largest integers) is within MaxEventSize and decodes.
func TestLargestEvent(t *testing.T) {
	w := newVectorWorld(t)
	parents := make([]event.ID, event.MaxParents)
	for i := range parents {
		parents[i] = event.PayloadHash([]byte{byte(i)})
	}
	const max = 1<<64 - 1
	e, err := event.Sign(w.bob, event.Draft{
		Pursuance: w.g.ID(), Seq: max, Backlink: w.b1.ID(), Parents: parents, Lamport: max,
		Kind: event.Kind(max), Time: max, Body: make([]byte, event.MaxBodySize),
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.EncodedSize(); n > event.MaxEventSize {
		t.Fatalf("largest event is %d bytes, MaxEventSize %d", n, event.MaxEventSize)
	}
	if _, err := event.Decode(e.Encode()); err != nil {
		t.Fatal(err)
	}
	if len(e.HeaderBytes()) > event.MaxHeaderSize {
		t.Fatalf("largest header is %d bytes", len(e.HeaderBytes()))
	}
}

func TestDecodeCopiesInput(t *testing.T) {
	w := newVectorWorld(t)
	wire := w.a3.Encode()
	e, err := event.Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	for i := range wire {
		wire[i] = 0
	}
	if e.ID() != w.a3.ID() || !bytes.Equal(e.Encode(), w.a3.Encode()) {
		t.Fatal("decoded event changed with its input")
	}
}

func TestDecodeTooLarge(t *testing.T) {
	if _, err := event.Decode(make([]byte, event.MaxEventSize+1)); !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("Decode of MaxEventSize+1 bytes: %v, want ErrTooLarge", err)
	}
	if _, err := event.DecodeHeader(make([]byte, event.MaxHeaderSize+1)); !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("DecodeHeader of MaxHeaderSize+1 bytes: %v, want ErrTooLarge", err)
	}
}

func TestSignVerify(t *testing.T) {
	w := newVectorWorld(t)
	for _, e := range allEvents(w) {
		if err := e.VerifySignature(); err != nil {
			t.Errorf("%s: %v", e.ID().Short(), err)
		}
		want := w.alice.Sign(cat([]byte(specLabelSig), []byte{0}, e.HeaderBytes()))
		if e.Author == w.alice.Public() && !bytes.Equal(e.Signature(), want) {
			t.Errorf("signature is not Ed25519 over the labelled header")
		}
	}
	// A signature by another key, or over other bytes, does not verify.
	other, err := event.FromParts(w.a3.HeaderBytes(), specSign(w.bob, w.a3.HeaderBytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.VerifySignature(); !errors.Is(err, event.ErrBadSignature) {
		t.Errorf("signature by another key: %v", err)
	}
	swapped, err := event.FromParts(w.a3.HeaderBytes(), w.a2.Signature(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := swapped.VerifySignature(); !errors.Is(err, event.ErrBadSignature) {
		t.Errorf("signature of another header: %v", err)
	}
	// Sign refuses drafts that break the static rules or the limits.
	for _, d := range []event.Draft{
		{Seq: 0, Lamport: 1, Kind: event.KindGenesis},
		{Seq: 1, Lamport: 2, Kind: event.KindGenesis},
		{Seq: 1, Lamport: 2, Kind: event.KindJoin, Parents: []event.ID{w.g.ID()}},
		{Seq: 1, Lamport: 1, Kind: event.KindInvalid},
		{Pursuance: w.g.ID(), Seq: 2, Lamport: 2, Kind: event.KindJoin, Parents: []event.ID{w.g.ID()}},
	} {
		if _, err := event.Sign(w.bob, d); !errors.Is(err, event.ErrInvalid) && !errors.Is(err, event.ErrLamport) && !errors.Is(err, event.ErrBacklink) {
			t.Errorf("Sign(%+v) = %v, want a static-rule error", d, err)
		}
	}
	if _, err := event.Sign(w.bob, event.Draft{Seq: 1, Lamport: 1, Kind: event.KindGenesis, Body: make([]byte, event.MaxBodySize+1)}); !errors.Is(err, event.ErrTooLarge) {
		t.Errorf("Sign with oversize body: %v", err)
	}
	// Sign sorts parents and drops repeats, and copies the body.
	body := []byte("body")
	e, err := event.Sign(w.bob, event.Draft{
		Pursuance: w.g.ID(), Seq: 1, Lamport: 3, Kind: event.KindJoin,
		Parents: []event.ID{w.b1.ID(), w.a2.ID(), w.b1.ID(), w.a2.ID()}, Body: body,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []event.ID{w.a2.ID(), w.b1.ID()}
	slices.SortFunc(want, event.ID.Compare)
	if !slices.Equal(e.Parents, want) {
		t.Errorf("parents = %v, want %v", e.Parents, want)
	}
	body[0] = 'B'
	if string(e.Body()) != "body" || e.StaticValidate() != nil {
		t.Errorf("Sign does not copy the body")
	}
	// A signed event with no body carries the empty body, not none.
	e, err = event.Sign(w.bob, event.Draft{Seq: 1, Lamport: 1, Kind: event.KindGenesis})
	if err != nil {
		t.Fatal(err)
	}
	if !e.HasBody() || e.PayloadHash != event.PayloadHash(nil) || e.PayloadSize != 0 {
		t.Errorf("empty draft body: HasBody %v, payload %x/%d", e.HasBody(), e.PayloadHash, e.PayloadSize)
	}
}

// TestBitFlips flips every bit of some small encoded events, one at a time,
// and checks that each change is caught by Decode, StaticValidate or
// VerifySignature: no single-bit change yields another event that passes.
func TestBitFlips(t *testing.T) {
	w := newVectorWorld(t)
	for _, e := range []*event.Event{w.g, w.a3, w.a3.WithoutBody(), w.c2} {
		wire := e.Encode()
		caught := map[string]int{}
		for i := range wire {
			for bit := range 8 {
				m := slices.Clone(wire)
				m[i] ^= 1 << bit
				d, err := event.Decode(m)
				switch {
				case err != nil:
					caught["decode"]++
					continue
				case d.StaticValidate() != nil:
					caught["static"]++
					continue
				case d.VerifySignature() != nil:
					caught["signature"]++
					continue
				}
				t.Errorf("%s: flipping bit %d of byte %d gives an event that passes every check (ID %s, was %s)",
					e.ID().Short(), bit, i, d.ID().Short(), e.ID().Short())
			}
		}
		t.Logf("%s (%d bytes): caught %v", e.ID().Short(), len(wire), caught)
	}
}

// validHeader returns a valid non-genesis header for table tests.
func validHeader(w *vectorWorld) event.Header { return headerOf(w.b2) }

func TestStaticValidate(t *testing.T) {
	w := newVectorWorld(t)
	other := w.g2.ID()
	tests := []struct {
		name    string
		genesis bool
		edit    func(*event.Header)
		want    error // nil: valid
	}{
		{"valid", false, func(h *event.Header) {}, nil},
		{"valid genesis", true, func(h *event.Header) {}, nil},
		{"valid first event", false, func(h *event.Header) { h.Seq = 1; h.Backlink = event.ID{} }, nil},
		{"unknown kind", false, func(h *event.Header) { h.Kind = 1 << 40 }, nil},
		{"payload at limit", false, func(h *event.Header) { h.PayloadSize = event.MaxBodySize }, nil},
		{"parents at limit", false, func(h *event.Header) { h.Parents = ids(event.MaxParents) }, nil},
		{"huge lamport", false, func(h *event.Header) { h.Lamport = 1<<64 - 1 }, nil},
		{"version 0", false, func(h *event.Header) { h.Version = 0 }, event.ErrInvalid},
		{"version 2", true, func(h *event.Header) { h.Version = 2 }, event.ErrInvalid},
		{"zero author", false, func(h *event.Header) { h.Author = identity.PublicKey{} }, event.ErrInvalid},
		{"seq 0", false, func(h *event.Header) { h.Seq = 0; h.Backlink = event.ID{} }, event.ErrInvalid},
		{"kind 0", false, func(h *event.Header) { h.Kind = event.KindInvalid }, event.ErrInvalid},
		{"payload over limit", false, func(h *event.Header) { h.PayloadSize = event.MaxBodySize + 1 }, event.ErrTooLarge},
		{"parents over limit", false, func(h *event.Header) { h.Parents = ids(event.MaxParents + 1) }, event.ErrTooLarge},
		{"seq 1 with backlink", false, func(h *event.Header) { h.Seq = 1 }, event.ErrBacklink},
		{"seq 2 without backlink", false, func(h *event.Header) { h.Backlink = event.ID{} }, event.ErrBacklink},
		{"parents descending", false, func(h *event.Header) { h.Parents = ids(3); slices.Reverse(h.Parents) }, event.ErrInvalid},
		{"parent repeated", false, func(h *event.Header) { h.Parents = append(ids(2), ids(2)[1]) }, event.ErrInvalid},
		{"no pursuance", false, func(h *event.Header) { h.Pursuance = event.ID{} }, event.ErrInvalid},
		{"no parents", false, func(h *event.Header) { h.Parents = nil }, event.ErrInvalid},
		{"lamport 1", false, func(h *event.Header) { h.Lamport = 1 }, event.ErrLamport},
		{"lamport 0", false, func(h *event.Header) { h.Lamport = 0 }, event.ErrLamport},
		{"genesis with pursuance", true, func(h *event.Header) { h.Pursuance = other }, event.ErrInvalid},
		{"genesis at seq 2", true, func(h *event.Header) { h.Seq = 2; h.Backlink = other }, event.ErrInvalid},
		{"genesis with parents", true, func(h *event.Header) { h.Parents = []event.ID{other} }, event.ErrInvalid},
		{"genesis lamport 0", true, func(h *event.Header) { h.Lamport = 0 }, event.ErrLamport},
		{"genesis lamport 2", true, func(h *event.Header) { h.Lamport = 2 }, event.ErrLamport},
		{"genesis with backlink", true, func(h *event.Header) { h.Backlink = other }, event.ErrBacklink},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := validHeader(w)
			if tt.genesis {
				h = headerOf(w.g)
			}
			tt.edit(&h)
			err := h.StaticValidate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("StaticValidate: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("StaticValidate = %v, want %v", err, tt.want)
			}
			if s := sentinels(err); len(s) != 1 {
				t.Errorf("error matches %v; want exactly one sentinel", s)
			}
		})
	}
}

// ids returns n distinct IDs in ascending order.
func ids(n int) []event.ID {
	out := make([]event.ID, n)
	for i := range out {
		out[i][0] = byte(i >> 8)
		out[i][1] = byte(i)
		out[i][31] = 1
	}
	return out
}

func TestStaticValidateBody(t *testing.T) {
	w := newVectorWorld(t)
	bad, err := event.FromParts(w.a3.HeaderBytes(), w.a3.Signature(), []byte("role: bob is EDITOR"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.StaticValidate(); !errors.Is(err, event.ErrPayloadMismatch) {
		t.Errorf("StaticValidate with a wrong body: %v", err)
	}
	if err := bad.WithoutBody().StaticValidate(); err != nil {
		t.Errorf("StaticValidate without body: %v", err)
	}
	if !strings.Contains(bad.StaticValidate().Error(), bad.ID().Short()) {
		t.Errorf("error does not name the event: %v", bad.StaticValidate())
	}
}

func TestCheckLinks(t *testing.T) {
	w := newVectorWorld(t)
	// b2: bob seq 2, backlink b1, parents a3 and c1 (in ID order).
	e := w.b2
	refs := map[event.ID]event.Ref{}
	for _, x := range []*event.Event{w.g, w.a2, w.b1, w.c1, w.a3, w.g2} {
		refs[x.ID()] = x.Ref()
	}
	baseParents := func() []event.Ref {
		var ps []event.Ref
		for _, p := range e.Parents {
			ps = append(ps, refs[p])
		}
		return ps
	}
	var errCaller = errors.New("caller error") // a mistake by the caller: no sentinel
	tests := []struct {
		name string
		edit func(back **event.Ref, parents *[]event.Ref)
		want error
	}{
		{"valid", func(**event.Ref, *[]event.Ref) {}, nil},
		{"backlink missing", func(b **event.Ref, _ *[]event.Ref) { *b = nil }, errCaller},
		{"backlink is another event", func(b **event.Ref, _ *[]event.Ref) { r := w.a2.Ref(); *b = &r }, errCaller},
		{"backlink by another author", func(b **event.Ref, _ *[]event.Ref) { (*b).Author = w.alice.Public() }, event.ErrBacklink},
		{"backlink in another pursuance", func(b **event.Ref, _ *[]event.Ref) { (*b).Pursuance = w.g2.ID() }, event.ErrBacklink},
		{"backlink seq 0", func(b **event.Ref, _ *[]event.Ref) { (*b).Seq = 0 }, event.ErrSeqGap},
		{"backlink seq 2", func(b **event.Ref, _ *[]event.Ref) { (*b).Seq = 2 }, event.ErrSeqGap},
		{"backlink lamport raises max", func(b **event.Ref, _ *[]event.Ref) { (*b).Lamport = 5 }, event.ErrLamport},
		{"backlink lamport is the max", func(b **event.Ref, ps *[]event.Ref) {
			(*b).Lamport = 4
			for i := range *ps {
				(*ps)[i].Lamport = 1
			}
		}, nil},
		{"too few parents", func(_ **event.Ref, ps *[]event.Ref) { *ps = (*ps)[:1] }, errCaller},
		{"too many parents", func(_ **event.Ref, ps *[]event.Ref) { *ps = append(*ps, w.g.Ref()) }, errCaller},
		{"parents swapped", func(_ **event.Ref, ps *[]event.Ref) { (*ps)[0], (*ps)[1] = (*ps)[1], (*ps)[0] }, errCaller},
		{"foreign parent", func(_ **event.Ref, ps *[]event.Ref) { (*ps)[1].Pursuance = w.g2.ID() }, event.ErrForeignParent},
		{"parent lamport higher", func(_ **event.Ref, ps *[]event.Ref) { (*ps)[0].Lamport = 9 }, event.ErrLamport},
		{"parents lamport lower", func(_ **event.Ref, ps *[]event.Ref) {
			for i := range *ps {
				(*ps)[i].Lamport = 1
			}
		}, event.ErrLamport},
		{"parent lamport at max", func(_ **event.Ref, ps *[]event.Ref) { (*ps)[0].Lamport = 1<<64 - 1 }, event.ErrLamport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			back := ptr(refs[e.Backlink])
			parents := baseParents()
			tt.edit(&back, &parents)
			err := event.CheckLinks(e, back, parents)
			switch tt.want {
			case nil:
				if err != nil {
					t.Fatalf("CheckLinks: %v", err)
				}
			case errCaller:
				if err == nil || len(sentinels(err)) != 0 {
					t.Fatalf("CheckLinks = %v, want an error matching no sentinel", err)
				}
			default:
				if !errors.Is(err, tt.want) {
					t.Fatalf("CheckLinks = %v, want %v", err, tt.want)
				}
				if s := sentinels(err); len(s) != 1 {
					t.Errorf("error matches %v; want exactly one sentinel", s)
				}
			}
		})
	}

	// Events at seq 1.
	if err := event.CheckLinks(w.g, nil, nil); err != nil {
		t.Errorf("genesis: %v", err)
	}
	if err := event.CheckLinks(w.b1, nil, []event.Ref{w.a2.Ref()}); err != nil {
		t.Errorf("first event: %v", err)
	}
	if err := event.CheckLinks(w.b1, ptr(w.a2.Ref()), []event.Ref{w.a2.Ref()}); !errors.Is(err, event.ErrBacklink) {
		t.Errorf("first event given a backlink: %v", err)
	}
	// A parent in the same pursuance but by the genesis: the genesis's
	// pursuance is its own ID.
	if err := event.CheckLinks(w.a2, ptr(w.g.Ref()), []event.Ref{w.g.Ref()}); err != nil {
		t.Errorf("child of genesis: %v", err)
	}
	if r := w.g.Ref(); r.Pursuance != w.g.ID() || w.g.PursuanceID() != w.g.ID() {
		t.Errorf("genesis Ref.Pursuance = %s, want its own ID", r.Pursuance.Short())
	}
}

func TestChain(t *testing.T) {
	w := newVectorWorld(t)
	refs := map[event.ID]event.Ref{}
	accept := func(e *event.Event) {
		t.Helper()
		got, err := checkAll(e.Encode(), refs)
		if err != nil {
			t.Fatal(err)
		}
		refs[got.ID()] = got.Ref()
	}
	a := &event.Chain{Key: w.alice}
	if _, err := a.Next(event.KindInvite, nil, 0, nil); err == nil {
		t.Fatal("Next before Genesis succeeded")
	}
	g, err := a.Genesis(1, []byte("charter"))
	if err != nil {
		t.Fatal(err)
	}
	accept(g)
	if a.Pursuance != g.ID() || a.Last == nil || a.Last.ID != g.ID() {
		t.Fatalf("after Genesis: chain %+v", a)
	}
	if _, err := a.Genesis(2, nil); err == nil {
		t.Fatal("second Genesis succeeded")
	}
	b := &event.Chain{Key: w.bob, Pursuance: g.ID()}
	heads := []event.Ref{g.Ref()}
	for i := range 10 {
		c := a
		if i%3 == 1 {
			c = b
		}
		e, err := c.Next(event.KindTaskComment, heads, uint64(10+i), []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		accept(e)
		if e.Author != c.Key.Public() || e.PursuanceID() != g.ID() {
			t.Fatalf("event %d: wrong author or pursuance", i)
		}
		if c.Last.ID != e.ID() || c.Last.Seq != e.Seq {
			t.Fatalf("event %d: chain's Last not updated", i)
		}
		heads = []event.Ref{e.Ref()}
	}
	// The author's own last event need not be a parent: the backlink
	// counts toward the lamport clock anyway.
	prev := *a.Last
	if prev.Lamport <= g.Lamport {
		t.Fatalf("test setup: alice's last event has lamport %d", prev.Lamport)
	}
	e, err := a.Next(event.KindTaskComment, []event.Ref{g.Ref()}, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	accept(e)
	if e.Lamport != prev.Lamport+1 || e.Backlink != prev.ID || e.Seq != prev.Seq+1 {
		t.Errorf("lamport %d, seq %d: does not follow the author's previous event (lamport %d, seq %d)", e.Lamport, e.Seq, prev.Lamport, prev.Seq)
	}
	// A failed Next leaves the chain as it was.
	before := *a.Last
	if _, err := a.Next(event.KindTaskComment, nil, 0, nil); err == nil {
		t.Fatal("Next with no parents succeeded")
	}
	if *a.Last != before {
		t.Fatal("failed Next changed the chain")
	}
}

func TestCheckEquivocation(t *testing.T) {
	w := newVectorWorld(t)
	for _, pair := range [][2]*event.Event{{w.a2, w.a2x}, {w.a2x, w.a2}} {
		eq, err := event.CheckEquivocation(pair[0], pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if eq.A.Compare(eq.B) >= 0 || eq.Author != w.alice.Public() || eq.Seq != 2 || eq.Pursuance != w.g.ID() {
			t.Fatalf("record %+v", eq)
		}
		if !(eq.A == w.a2.ID() && eq.B == w.a2x.ID()) && !(eq.A == w.a2x.ID() && eq.B == w.a2.ID()) {
			t.Fatalf("record names other events: %+v", eq)
		}
	}
	// The same event with and without body is one event.
	for _, pair := range [][2]*event.Event{
		{w.a2, w.a2},
		{w.a2, w.a2.WithoutBody()},
		{w.b1, w.c1},  // different authors
		{w.a2, w.a3},  // different seqs
		{w.g, w.g2},   // different pursuances
		{w.b1, w.b2},  // same author, different seqs
		{w.a2x, w.g2}, // different seqs and pursuances
	} {
		if _, err := event.CheckEquivocation(pair[0], pair[1]); !errors.Is(err, event.ErrNotEquivocation) {
			t.Errorf("CheckEquivocation(%s, %s) = %v", pair[0].ID().Short(), pair[1].ID().Short(), err)
		}
	}
}

func TestKind(t *testing.T) {
	// The numbers are the wire format: this table must only ever grow.
	want := []string{
		"invalid", "genesis", "charter-amend", "role-assign", "role-revoke", "invite", "join",
		"remove", "leave", "proposal", "approval", "task-create", "task-edit", "task-move",
		"task-assign", "task-unassign", "task-status", "task-comment", "task-archive",
		"key-update", "relays", "link", "invite-revoke", "task-sealed", "member-key",
		"link-accept", "link-end", "handoff", "link-receive", "link-report", "profile",
		"succession", "succeed",
		"node-address", "device", "task-attach",
	}
	for i, name := range want {
		k := event.Kind(i)
		if k.String() != name {
			t.Errorf("Kind(%d).String() = %q, want %q", i, k.String(), name)
		}
		if k.Known() != (i != 0) {
			t.Errorf("Kind(%d).Known() = %v", i, k.Known())
		}
		p, err := event.ParseKind(name)
		if i == 0 {
			if err == nil {
				t.Errorf("ParseKind(%q) succeeded", name)
			}
			continue
		}
		if err != nil || p != k {
			t.Errorf("ParseKind(%q) = %v, %v", name, p, err)
		}
	}
	if event.KindGenesis != 1 || event.KindInviteRevoke != 22 || event.KindTaskSealed != 23 || event.KindMemberKey != 24 || event.KindLinkReport != 29 || event.KindProfile != 30 || event.KindSuccession != 31 || event.KindSucceed != 32 || event.KindNodeAddress != 33 || event.KindDevice != 34 || event.KindTaskAttach != 35 {
		t.Errorf("kind constants moved")
	}
	for _, k := range []event.Kind{event.Kind(len(want)), 1000, 1<<64 - 1} {
		if k.Known() {
			t.Errorf("Kind(%d).Known()", uint64(k))
		}
		if !strings.HasPrefix(k.String(), "kind(") {
			t.Errorf("Kind(%d).String() = %q", uint64(k), k.String())
		}
		if _, err := event.ParseKind(k.String()); err == nil {
			t.Errorf("ParseKind(%q) succeeded", k.String())
		}
	}
	for _, s := range []string{"", "Genesis", " genesis", "kind(1)"} {
		if _, err := event.ParseKind(s); err == nil {
			t.Errorf("ParseKind(%q) succeeded", s)
		}
	}
}

func TestIDText(t *testing.T) {
	w := newVectorWorld(t)
	id := w.a3.ID()
	s := id.String()
	if len(s) != 64 || strings.ToLower(s) != s {
		t.Fatalf("String() = %q", s)
	}
	if id.Short() != s[:12] {
		t.Errorf("Short() = %q", id.Short())
	}
	p, err := event.ParseID(s)
	if err != nil || p != id {
		t.Fatalf("ParseID(String()) = %v, %v", p, err)
	}
	b, err := json.Marshal(map[string]event.ID{"id": id})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"id":"`+s+`"}` {
		t.Fatalf("JSON = %s", b)
	}
	var back map[string]event.ID
	if err := json.Unmarshal(b, &back); err != nil || back["id"] != id {
		t.Fatalf("JSON round trip: %v, %v", back, err)
	}
	for _, bad := range []string{"", s[:63], s + "0", "g" + s[1:], s[:62] + "  x"} {
		if _, err := event.ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) succeeded", bad)
		}
		var x event.ID
		if err := x.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", bad)
		}
	}
	if !(event.ID{}).IsZero() || id.IsZero() {
		t.Error("IsZero")
	}
	if id.Compare(id) != 0 || (event.ID{}).Compare(id) >= 0 || id.Compare(event.ID{}) <= 0 {
		t.Error("Compare")
	}
}

func TestPayloadHash(t *testing.T) {
	for _, body := range [][]byte{nil, {}, []byte("x"), make([]byte, 1000)} {
		want := sha256.Sum256(cat([]byte(specLabelPayload), []byte{0}, body))
		if got := event.PayloadHash(body); got != want {
			t.Errorf("PayloadHash(%d bytes) = %x, want %x", len(body), got, want)
		}
		if event.PayloadHash(body) == sha256.Sum256(body) {
			t.Errorf("PayloadHash is the unlabelled hash")
		}
	}
	// The labels separate the three hashes.
	if event.PayloadHash(nil) == event.ID(sha256.Sum256([]byte(specLabelID+"\x00"))) {
		t.Error("payload and ID labels collide")
	}
}

func TestWithBody(t *testing.T) {
	w := newVectorWorld(t)
	e := w.a3
	pruned := e.WithoutBody()
	if pruned.HasBody() || pruned.Body() != nil || pruned.ID() != e.ID() || !e.HasBody() {
		t.Fatal("WithoutBody")
	}
	wire := pruned.Encode()
	if wire[len(wire)-1] != 0xf6 || len(wire) != pruned.EncodedSize() {
		t.Fatalf("pruned wire form does not end in null")
	}
	body := slices.Clone(e.Body())
	full, err := pruned.WithBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(full.Encode(), e.Encode()) || pruned.HasBody() {
		t.Fatal("WithBody does not restore the event, or changes the original")
	}
	body[0] ^= 1
	if !bytes.Equal(full.Body(), e.Body()) {
		t.Fatal("WithBody keeps the caller's slice")
	}
	if _, err := pruned.WithBody(body); !errors.Is(err, event.ErrPayloadMismatch) {
		t.Fatalf("WithBody(wrong) = %v", err)
	}
	if _, err := pruned.WithBody(nil); !errors.Is(err, event.ErrPayloadMismatch) {
		t.Fatalf("WithBody(nil) for a non-empty payload = %v", err)
	}
	// The empty body: nil and empty both give an event that has it.
	empty := w.c2.WithoutBody()
	for _, b := range [][]byte{nil, {}} {
		f, err := empty.WithBody(b)
		if err != nil {
			t.Fatal(err)
		}
		if !f.HasBody() || !bytes.Equal(f.Encode(), w.c2.Encode()) {
			t.Fatalf("WithBody(%v) on the empty payload: HasBody %v", b, f.HasBody())
		}
	}
}

func TestFromParts(t *testing.T) {
	w := newVectorWorld(t)
	e := w.a3
	hdr, sig, body := slices.Clone(e.HeaderBytes()), slices.Clone(e.Signature()), slices.Clone(e.Body())
	f, err := event.FromParts(hdr, sig, body)
	if err != nil {
		t.Fatal(err)
	}
	if f.ID() != e.ID() || !bytes.Equal(f.Encode(), e.Encode()) || !equalHeaders(&f.Header, &e.Header) {
		t.Fatal("FromParts differs from the signed event")
	}
	hdr[0], sig[0], body[0] = 0, 0, 0
	if !bytes.Equal(f.Encode(), e.Encode()) {
		t.Fatal("FromParts keeps the caller's slices")
	}
	p, err := event.FromParts(e.HeaderBytes(), e.Signature(), nil)
	if err != nil || p.HasBody() || p.ID() != e.ID() {
		t.Fatalf("FromParts without body: %v", err)
	}
	p, err = event.FromParts(w.c2.HeaderBytes(), w.c2.Signature(), []byte{})
	if err != nil || !p.HasBody() || !bytes.Equal(p.Encode(), w.c2.Encode()) {
		t.Fatalf("FromParts with empty body: %v", err)
	}
	for _, tt := range []struct {
		name              string
		header, sig, body []byte
		want              error
	}{
		{"short signature", e.HeaderBytes(), e.Signature()[:63], nil, event.ErrMalformed},
		{"long signature", e.HeaderBytes(), append(slices.Clone(e.Signature()), 0), nil, event.ErrMalformed},
		{"no signature", e.HeaderBytes(), nil, nil, event.ErrMalformed},
		{"body over limit", e.HeaderBytes(), e.Signature(), make([]byte, event.MaxBodySize+1), event.ErrTooLarge},
		{"empty header", nil, e.Signature(), nil, event.ErrMalformed},
		{"header trailing", append(slices.Clone(e.HeaderBytes()), 0), e.Signature(), nil, event.ErrTrailingBytes},
		{"header too large", make([]byte, event.MaxHeaderSize+1), e.Signature(), nil, event.ErrTooLarge},
	} {
		if _, err := event.FromParts(tt.header, tt.sig, tt.body); !errors.Is(err, tt.want) {
			t.Errorf("%s: FromParts = %v, want %v", tt.name, err, tt.want)
		}
	}
	// FromParts does not check the body against the header: StaticValidate
	// does.
	p, err = event.FromParts(e.HeaderBytes(), e.Signature(), []byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.StaticValidate(); !errors.Is(err, event.ErrPayloadMismatch) {
		t.Errorf("StaticValidate of mismatched body: %v", err)
	}
}

func TestForkedFrom(t *testing.T) {
	var a, b identity.PublicKey
	a[0], b[0] = 1, 2
	got := event.ForkedFrom([]event.Equivocation{{Author: a, Seq: 9}, {Author: b, Seq: 4}, {Author: a, Seq: 3}, {Author: a, Seq: 7}})
	if len(got) != 2 || got[a] != 3 || got[b] != 4 {
		t.Fatalf("ForkedFrom = %v, want a:3 b:4", got)
	}
	if len(event.ForkedFrom(nil)) != 0 {
		t.Fatal("no evidence flags someone")
	}
}
