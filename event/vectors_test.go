package event_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/events from the generator")

// vectorDir holds the golden vectors, one JSON file per vector
// (testdata/events/README.md describes the format).
const vectorDir = "../testdata/events"

// vector is one golden vector as stored.
type vector struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Context     []string `json:"context"`
	Event       string   `json:"event"`
	Expect      string   `json:"expect"`
	// ID is the event's ID, present whenever the event decodes.
	ID string `json:"id,omitempty"`
	// Equivocation is the evidence record, for expect "equivocation".
	Equivocation *equivocationJSON `json:"equivocation,omitempty"`
}

type equivocationJSON struct {
	Pursuance string `json:"pursuance"`
	Author    string `json:"author"`
	Seq       uint64 `json:"seq"`
	A         string `json:"a"`
	B         string `json:"b"`
}

// expectErrs maps the vectors' error names to the package's sentinels.
var expectErrs = map[string]error{
	"malformed":        event.ErrMalformed,
	"non-canonical":    event.ErrNonCanonical,
	"too-large":        event.ErrTooLarge,
	"trailing-bytes":   event.ErrTrailingBytes,
	"invalid":          event.ErrInvalid,
	"payload-mismatch": event.ErrPayloadMismatch,
	"bad-signature":    event.ErrBadSignature,
	"backlink":         event.ErrBacklink,
	"seq-gap":          event.ErrSeqGap,
	"lamport":          event.ErrLamport,
	"foreign-parent":   event.ErrForeignParent,
}

// errUnresolved marks a vector whose event links to an event its context
// lacks: a broken vector, never an expected outcome.
var errUnresolved = errors.New("links to an event not in the context")

// checkAll runs every check in the order docs/events.md gives, looking up
// linked events in refs. It returns the decoded event whenever Decode
// succeeds, even if a later check fails.
func checkAll(b []byte, refs map[event.ID]event.Ref) (*event.Event, error) {
	e, err := event.Decode(b)
	if err != nil {
		return nil, err
	}
	if err := e.StaticValidate(); err != nil {
		return e, err
	}
	if err := e.VerifySignature(); err != nil {
		return e, err
	}
	var back *event.Ref
	if e.Seq > 1 {
		r, ok := refs[e.Backlink]
		if !ok {
			return e, fmt.Errorf("backlink %s: %w", e.Backlink.Short(), errUnresolved)
		}
		back = &r
	}
	parents := make([]event.Ref, len(e.Parents))
	for i, p := range e.Parents {
		r, ok := refs[p]
		if !ok {
			return e, fmt.Errorf("parent %s: %w", p.Short(), errUnresolved)
		}
		parents[i] = r
	}
	return e, event.CheckLinks(e, back, parents)
}

// runVector checks one vector's outcome against its expectation.
func runVector(t *testing.T, v vector) {
	t.Helper()
	if v.Name == "" || v.Description == "" || v.Context == nil {
		t.Fatalf("vector lacks name, description or context: %+v", v)
	}
	refs := make(map[event.ID]event.Ref)
	var ctx []*event.Event
	for i, h := range v.Context {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("context %d: %v", i, err)
		}
		e, err := checkAll(b, refs)
		if err != nil {
			t.Fatalf("context %d is not valid: %v", i, err)
		}
		refs[e.ID()] = e.Ref()
		ctx = append(ctx, e)
	}
	b, err := hex.DecodeString(v.Event)
	if err != nil {
		t.Fatalf("event: %v", err)
	}
	e, err := checkAll(b, refs)
	if e != nil {
		if got := e.ID().String(); got != v.ID {
			t.Errorf("ID = %s, vector says %q", got, v.ID)
		}
	} else if v.ID != "" {
		t.Errorf("event does not decode, but the vector gives an ID")
	}
	switch v.Expect {
	case "ok", "equivocation":
		if err != nil {
			t.Fatalf("want %s, got error: %v", v.Expect, err)
		}
		if got := e.Encode(); !bytes.Equal(got, b) {
			t.Errorf("re-encoding differs:\n got %x\nwant %x", got, b)
		}
	default:
		want, ok := expectErrs[v.Expect]
		if !ok {
			t.Fatalf("unknown expectation %q", v.Expect)
		}
		if !errors.Is(err, want) {
			t.Fatalf("want %s, got: %v", v.Expect, err)
		}
		// The error must name one rule only, so that every
		// implementation can agree on it.
		for name, other := range expectErrs {
			if name != v.Expect && errors.Is(err, other) {
				t.Errorf("error also matches %s: %v", name, err)
			}
		}
		t.Logf("%s: %v", v.Expect, err)
		return
	}
	// Accepted: look for the author's other events at the same seq.
	var eqs []event.Equivocation
	for _, c := range ctx {
		if c.Author != e.Author || c.Seq != e.Seq || c.PursuanceID() != e.PursuanceID() || c.ID() == e.ID() {
			continue
		}
		eq, err := event.CheckEquivocation(c, e)
		if err != nil {
			t.Fatalf("CheckEquivocation: %v", err)
		}
		eqs = append(eqs, eq)
	}
	if v.Expect == "ok" {
		if len(eqs) != 0 || v.Equivocation != nil {
			t.Fatalf("expect ok, but equivocation %+v (vector: %+v)", eqs, v.Equivocation)
		}
		return
	}
	if len(eqs) != 1 || v.Equivocation == nil {
		t.Fatalf("want one equivocation as %+v, got %+v", v.Equivocation, eqs)
	}
	if got := equivocationToJSON(eqs[0]); got != *v.Equivocation {
		t.Errorf("equivocation = %+v, vector says %+v", got, *v.Equivocation)
	}
}

func equivocationToJSON(eq event.Equivocation) equivocationJSON {
	return equivocationJSON{
		Pursuance: eq.Pursuance.String(),
		Author:    hex.EncodeToString(eq.Author[:]),
		Seq:       eq.Seq,
		A:         eq.A.String(),
		B:         eq.B.String(),
	}
}

// readVectors reads every vector file in dir.
func readVectors(tb testing.TB, dir string) []vector {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatalf("no vectors in %s (run go test ./event -run TestVectors -update)", dir)
	}
	var vs []vector
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var v vector
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		if want := v.Name + ".json"; filepath.Base(f) != want {
			tb.Fatalf("%s holds vector %q; want file name %s", f, v.Name, want)
		}
		vs = append(vs, v)
	}
	return vs
}

func marshalVector(v vector) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// TestVectors checks every golden vector in testdata/events by running the
// real checks, and that the generator still produces exactly those files.
// With -update it first rewrites the files from the generator.
func TestVectors(t *testing.T) {
	gen := generateVectors(t)
	if *update {
		old, _ := filepath.Glob(filepath.Join(vectorDir, "*.json"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(vectorDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, v := range gen {
			if err := os.WriteFile(filepath.Join(vectorDir, v.Name+".json"), marshalVector(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	stored := readVectors(t, vectorDir)
	for _, v := range stored {
		t.Run(v.Name, func(t *testing.T) { runVector(t, v) })
	}

	// The files are the generator's output, byte for byte: any change to
	// the encoding shows up here and must be made deliberately with -update.
	byName := make(map[string]vector)
	for _, v := range stored {
		byName[v.Name] = v
	}
	for _, v := range gen {
		s, ok := byName[v.Name]
		if !ok {
			t.Errorf("generated vector %s is not in %s (run with -update)", v.Name, vectorDir)
			continue
		}
		if !bytes.Equal(marshalVector(s), marshalVector(v)) {
			t.Errorf("vector %s differs from the generator's (run with -update if intended)", v.Name)
		}
		delete(byName, v.Name)
	}
	for name := range byName {
		t.Errorf("vector %s is not generated (stale file?)", name)
	}

	// Every required kind of outcome is covered.
	seen := make(map[string]bool)
	for _, v := range stored {
		seen[v.Expect] = true
	}
	for name := range expectErrs {
		if !seen[name] {
			t.Errorf("no vector expects %s", name)
		}
	}
	for _, name := range []string{"ok", "equivocation"} {
		if !seen[name] {
			t.Errorf("no vector expects %s", name)
		}
	}
}

// TestVectorsStable checks that generating twice gives identical vectors.
func TestVectorsStable(t *testing.T) {
	a, b := generateVectors(t), generateVectors(t)
	if len(a) != len(b) {
		t.Fatalf("%d vectors, then %d", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(marshalVector(a[i]), marshalVector(b[i])) {
			t.Errorf("vector %s is not deterministic", a[i].Name)
		}
	}
}

// The generator. Everything in it is fixed: keys come from constant seeds,
// times are constants, and Ed25519 signatures are deterministic.

// vectorTime is 2026-01-01T00:00:00Z in Unix milliseconds.
const vectorTime = 1767225600000

// vectorKey returns the test key whose seed is 32 bytes of b.
func vectorKey(tb testing.TB, b byte) *identity.SigningKey {
	k, err := identity.SigningKeyFromSeed(bytes.Repeat([]byte{b}, identity.SeedSize))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// vectorWorld is the small pursuance the vectors are cut from.
type vectorWorld struct {
	alice, bob, carol *identity.SigningKey

	g  *event.Event // alice seq 1: genesis of P
	a2 *event.Event // alice seq 2: invite, parents [g]
	b1 *event.Event // bob seq 1: join, parents [a2]
	c1 *event.Event // carol seq 1: join, parents [a2]
	a3 *event.Event // alice seq 3: role-assign, parents [b1]
	b2 *event.Event // bob seq 2: task-create, parents [a3, c1]
	c2 *event.Event // carol seq 2: leave, parents [b2], empty body

	a2x *event.Event // alice seq 2 again: equivocates with a2
	g2  *event.Event // alice seq 1 of another pursuance P2
}

func newVectorWorld(tb testing.TB) *vectorWorld {
	w := &vectorWorld{alice: vectorKey(tb, 0x01), bob: vectorKey(tb, 0x02), carol: vectorKey(tb, 0x03)}
	must := func(e *event.Event, err error) *event.Event {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return e
	}
	ca := &event.Chain{Key: w.alice}
	w.g = must(ca.Genesis(vectorTime, []byte("name: Vector Collective\n")))
	w.a2 = must(ca.Next(event.KindInvite, []event.Ref{w.g.Ref()}, vectorTime+60_000, []byte("invite: bob, carol")))
	cb := &event.Chain{Key: w.bob, Pursuance: w.g.ID()}
	w.b1 = must(cb.Next(event.KindJoin, []event.Ref{w.a2.Ref()}, vectorTime+120_000, []byte("join: bob")))
	cc := &event.Chain{Key: w.carol, Pursuance: w.g.ID()}
	w.c1 = must(cc.Next(event.KindJoin, []event.Ref{w.a2.Ref()}, vectorTime+125_000, []byte("join: carol")))
	w.a3 = must(ca.Next(event.KindRoleAssign, []event.Ref{w.b1.Ref()}, vectorTime+180_000, []byte("role: bob is editor")))
	w.b2 = must(cb.Next(event.KindTaskCreate, []event.Ref{w.a3.Ref(), w.c1.Ref()}, vectorTime+240_000, []byte("task: check the leak")))
	w.c2 = must(cc.Next(event.KindLeave, []event.Ref{w.b2.Ref()}, vectorTime+300_000, nil))

	fork := &event.Chain{Key: w.alice, Pursuance: w.g.ID(), Last: ptr(w.g.Ref())}
	w.a2x = must(fork.Next(event.KindInvite, []event.Ref{w.g.Ref()}, vectorTime+61_000, []byte("invite: mallory")))

	c2 := &event.Chain{Key: w.alice}
	w.g2 = must(c2.Genesis(vectorTime+1, []byte("name: Another Collective\n")))
	return w
}

func ptr[T any](v T) *T { return &v }

func hexs(evs ...*event.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, hex.EncodeToString(e.Encode()))
	}
	return out
}

// signed returns the wire form of an event whose header is hdr, signed by
// k, with body (nil: null).
func signed(k *identity.SigningKey, hdr, body []byte) []byte {
	return container(hdr, specSign(k, hdr), body)
}

// headerOf returns a copy of e's header, for editing.
func headerOf(e *event.Event) event.Header {
	h := e.Header
	h.Parents = slices.Clone(h.Parents)
	return h
}

// editFields re-encodes e's header after edit changes its entries, signs
// it with k and keeps e's body.
func editFields(k *identity.SigningKey, e *event.Event, edit func([]field) []field) []byte {
	h := headerOf(e)
	return signed(k, cMap(edit(fieldsOf(&h))), bodyOf(e))
}

// editHeader re-encodes e's header canonically after edit changes it (the
// result may break the static rules), signs it with k and keeps e's body.
func editHeader(k *identity.SigningKey, e *event.Event, edit func(*event.Header)) []byte {
	h := headerOf(e)
	edit(&h)
	return signed(k, cMap(fieldsOf(&h)), bodyOf(e))
}

func bodyOf(e *event.Event) []byte {
	if !e.HasBody() {
		return nil
	}
	return e.Body()
}

// replaceVal replaces the value of key in fs.
func replaceVal(fs []field, key uint64, val []byte) []field {
	i := findField(fs, key)
	fs[i].val = val
	return fs
}

// insertField inserts f at position i.
func insertField(fs []field, i int, f field) []field { return slices.Insert(fs, i, f) }

func generateVectors(tb testing.TB) []vector {
	w := newVectorWorld(tb)
	var vs []vector
	add := func(name, expect, desc string, ctx []*event.Event, wire []byte) {
		v := vector{Name: name, Description: desc, Context: hexs(ctx...), Event: hex.EncodeToString(wire), Expect: expect}
		if e, err := event.Decode(wire); err == nil {
			v.ID = e.ID().String()
		}
		vs = append(vs, v)
	}
	ok := func(name, desc string, ctx []*event.Event, e *event.Event) {
		add(name, "ok", desc, ctx, e.Encode())
	}

	// Valid events.
	ok("ok-genesis", "A genesis event: seq 1, lamport 1, no pursuance, no backlink, no parents. Its ID is the pursuance ID.",
		nil, w.g)
	ok("ok-chain-continuation", "The founder's second event: seq 2, backlink to the genesis, which is also its parent; lamport 2.",
		[]*event.Event{w.g}, w.a2)
	ok("ok-second-member-first-event", "Another member's first event: seq 1 and no backlink, but a pursuance and a parent; lamport 1 + the parent's.",
		[]*event.Event{w.g, w.a2}, w.b1)
	ok("ok-chain-continuation-2", "The founder's third event, every header key present: its parent is another member's event, and its lamport (4) is 1 + max(parent 3, backlink 2).",
		[]*event.Event{w.g, w.a2, w.b1}, w.a3)
	ok("ok-several-parents", "An event with two parents (in ascending ID order) by other authors and a backlink; lamport 1 + the largest of the three.",
		[]*event.Event{w.g, w.a2, w.b1, w.c1, w.a3}, w.b2)
	ok("ok-pruned-body", "An event whose body has been pruned: the container holds null in place of the body; the header still carries the payload hash and size, and the ID is unchanged.",
		[]*event.Event{w.g, w.a2, w.b1}, w.a3.WithoutBody())
	ok("ok-empty-body", "An event with an empty body: payload size 0, payload hash of the empty string, and an empty byte string (0x40) in the container, which is not the same as a pruned body (null).",
		[]*event.Event{w.g, w.a2, w.b1, w.c1, w.a3, w.b2}, w.c2)
	unknownKind, err := event.Sign(w.bob, event.Draft{Pursuance: w.g.ID(), Seq: 1, Parents: []event.ID{w.a2.ID()}, Lamport: 3, Kind: 1000, Time: vectorTime + 130_000, Body: []byte("from the future")})
	if err != nil {
		tb.Fatal(err)
	}
	ok("ok-unknown-kind", "An event of a kind this version does not know (1000). The event layer carries kinds without interpreting them; the rules engine decides what an unknown kind means.",
		[]*event.Event{w.g, w.a2}, unknownKind)

	// Equivocation.
	v := vector{
		Name:        "equivocation",
		Description: "The founder signs a second, different event at seq 2 (same backlink, different body and time). Each event is valid on its own; together they are an equivocation: both are kept, and the evidence record names the pursuance, author, seq and both IDs (A < B bytewise).",
		Context:     hexs(w.g, w.a2),
		Event:       hex.EncodeToString(w.a2x.Encode()),
		Expect:      "equivocation",
		ID:          w.a2x.ID().String(),
	}
	eq, err := event.CheckEquivocation(w.a2, w.a2x)
	if err != nil {
		tb.Fatal(err)
	}
	v.Equivocation = ptr(equivocationToJSON(eq))
	vs = append(vs, v)

	g, a3 := w.g, w.a3
	alicePub := w.alice.Public()
	ctxA3 := []*event.Event{w.g, w.a2, w.b1}

	// Signature.
	sig := slices.Clone(a3.Signature())
	sig[0] ^= 0x01
	add("bad-signature", "bad-signature", "The third event's signature with its lowest bit flipped; header and body intact.",
		ctxA3, container(a3.HeaderBytes(), sig, a3.Body()))
	add("bad-signature-other-key", "bad-signature", "The third event's header, naming alice as author, signed by bob.",
		ctxA3, signed(w.bob, a3.HeaderBytes(), a3.Body()))
	add("bad-signature-no-label", "bad-signature", "The third event's header signed by its author without the domain-separation label and zero byte.",
		ctxA3, container(a3.HeaderBytes(), w.alice.Sign(a3.HeaderBytes()), a3.Body()))

	// Links.
	add("backlink-other-author", "backlink", "Bob's seq 2 whose backlink names alice's seq 1 (the genesis) instead of bob's own seq 1.",
		[]*event.Event{w.g, w.a2, w.b1, w.c1, w.a3}, editHeader(w.bob, w.b2, func(h *event.Header) { h.Backlink = g.ID() }))
	add("backlink-other-pursuance", "backlink", "Alice's seq 2 in P whose backlink names her seq 1 in another pursuance P2.",
		[]*event.Event{w.g, w.g2}, editHeader(w.alice, w.a2, func(h *event.Header) { h.Backlink = w.g2.ID() }))
	add("seq-gap", "seq-gap", "Alice's event at seq 4 whose backlink names her seq 2: seq 3 is skipped.",
		ctxA3, editHeader(w.alice, a3, func(h *event.Header) { h.Seq = 4 }))
	add("seq-1-with-backlink", "backlink", "Bob's first event (seq 1) carrying a backlink. A static rule: no other event is needed to reject it.",
		[]*event.Event{w.g, w.a2}, editHeader(w.bob, w.b1, func(h *event.Header) { h.Backlink = w.a2.ID() }))
	add("seq-2-without-backlink", "backlink", "Alice's seq 2 without a backlink. A static rule.",
		[]*event.Event{w.g}, editHeader(w.alice, w.a2, func(h *event.Header) { h.Backlink = event.ID{} }))
	add("lamport-too-high", "lamport", "Bob's first event claiming lamport 4; its only parent has lamport 2, so it must be 3.",
		[]*event.Event{w.g, w.a2}, editHeader(w.bob, w.b1, func(h *event.Header) { h.Lamport = 4 }))
	add("lamport-too-low", "lamport", "Bob's first event claiming lamport 2, equal to its parent's.",
		[]*event.Event{w.g, w.a2}, editHeader(w.bob, w.b1, func(h *event.Header) { h.Lamport = 2 }))
	add("lamport-ignores-backlink", "lamport", "Alice's seq 3 with backlink to her seq 2 (lamport 2) and only the genesis (lamport 1) as parent, claiming lamport 2: the backlink counts, so it must be 3.",
		[]*event.Event{w.g, w.a2}, editHeader(w.alice, a3, func(h *event.Header) { h.Parents = []event.ID{g.ID()}; h.Lamport = 2 }))
	add("foreign-parent", "foreign-parent", "Bob's first event in P naming as a second parent the genesis of another pursuance P2.",
		[]*event.Event{w.g, w.a2, w.g2}, editHeader(w.bob, w.b1, func(h *event.Header) {
			h.Parents = []event.ID{w.a2.ID(), w.g2.ID()}
			slices.SortFunc(h.Parents, event.ID.Compare)
		}))

	// Canonical encoding. Each header is signed as mutated, so that the
	// encoding is the only fault.
	add("duplicate-map-key", "non-canonical", "The genesis header with key 11 (time) twice, with different values; the map head counts 9 entries.",
		nil, editFields(w.alice, g, func(fs []field) []field { return append(fs, kv(11, cUint(vectorTime+1))) }))
	add("keys-out-of-order", "non-canonical", "The genesis header with the entries for key 7 (lamport) and key 8 (kind) swapped.",
		nil, editFields(w.alice, g, func(fs []field) []field {
			i, j := findField(fs, 7), findField(fs, 8)
			fs[i], fs[j] = fs[j], fs[i]
			return fs
		}))
	add("non-shortest-integer", "non-canonical", "The genesis header with seq 1 written as 0x18 0x01 (one-byte argument) instead of 0x01.",
		nil, editFields(w.alice, g, func(fs []field) []field { return replaceVal(fs, 4, []byte{0x18, 0x01}) }))
	add("non-shortest-key", "non-canonical", "The genesis header with key 11 written as 0x18 0x0b instead of 0x0b.",
		nil, editFields(w.alice, g, func(fs []field) []field {
			fs[findField(fs, 11)].key = []byte{0x18, 0x0b}
			return fs
		}))
	hdr := g.HeaderBytes()
	add("non-shortest-length", "non-canonical", "The genesis event with the container's header length written in two bytes (0x59 0x00 N) instead of one (0x58 N). The header itself is intact.",
		nil, cat([]byte{0x83, 0x59, 0x00, byte(len(hdr))}, hdr, cBytes(g.Signature()), cBytes(g.Body())))
	add("indefinite-length-map", "non-canonical", "The genesis header encoded as an indefinite-length map (0xbf ... 0xff).",
		nil, func() []byte {
			h := headerOf(g)
			m := cMap(fieldsOf(&h))
			m = append([]byte{0xbf}, m[1:]...)
			m = append(m, 0xff)
			return signed(w.alice, m, g.Body())
		}())
	add("indefinite-length-container", "non-canonical", "The genesis event's container as an indefinite-length array (0x9f ... 0xff).",
		nil, append(append([]byte{0x9f}, g.Encode()[1:]...), 0xff))
	add("empty-parents-present", "non-canonical", "The genesis header with key 6 (parents) present as an empty array; an empty list must be omitted.",
		nil, editFields(w.alice, g, func(fs []field) []field { return insertField(fs, findField(fs, 7), kv(6, []byte{0x80})) }))
	add("zero-backlink-present", "non-canonical", "The genesis header with key 5 (backlink) present as 32 zero bytes; a zero backlink must be omitted.",
		nil, editFields(w.alice, g, func(fs []field) []field {
			return insertField(fs, findField(fs, 7), kv(5, cBytes(make([]byte, 32))))
		}))
	add("zero-pursuance-present", "non-canonical", "The genesis header with key 2 (pursuance) present as 32 zero bytes; a zero pursuance must be omitted.",
		nil, editFields(w.alice, g, func(fs []field) []field {
			return insertField(fs, findField(fs, 3), kv(2, cBytes(make([]byte, 32))))
		}))

	// Shape.
	add("unknown-header-key", "malformed", "The genesis header with an extra key 12, unknown to version 1.",
		nil, editFields(w.alice, g, func(fs []field) []field { return append(fs, kv(12, cUint(0))) }))
	add("header-key-zero", "malformed", "The genesis header with an extra key 0, which is not defined.",
		nil, editFields(w.alice, g, func(fs []field) []field { return insertField(fs, 0, kv(0, cUint(0))) }))
	add("missing-required-key", "malformed", "The genesis header without key 11 (time).",
		nil, editFields(w.alice, g, func(fs []field) []field { return fs[:len(fs)-1] }))
	add("missing-author", "malformed", "The genesis header without key 3 (author).",
		nil, editFields(w.alice, g, func(fs []field) []field { return slices.Delete(fs, findField(fs, 3), findField(fs, 3)+1) }))
	add("too-many-header-entries", "malformed", "A header map of 12 entries: every key 1 to 11 plus key 12. More entries than keys are defined.",
		ctxA3, editFields(w.alice, a3, func(fs []field) []field { return append(fs, kv(12, cUint(0))) }))
	add("author-31-bytes", "malformed", "The genesis header with a 31-byte author key.",
		nil, editFields(w.alice, g, func(fs []field) []field { return replaceVal(fs, 3, cBytes(alicePub[:31])) }))
	add("payload-hash-33-bytes", "malformed", "The genesis header with a 33-byte payload hash.",
		nil, editFields(w.alice, g, func(fs []field) []field {
			ph := g.PayloadHash
			return replaceVal(fs, 9, cBytes(append(ph[:], 0)))
		}))
	add("negative-integer", "malformed", "The genesis header with seq written as the negative integer -1 (0x20).",
		nil, editFields(w.alice, g, func(fs []field) []field { return replaceVal(fs, 4, []byte{0x20}) }))
	add("text-string-value", "malformed", "The genesis header with the author key as a text string (major type 3) instead of a byte string.",
		nil, editFields(w.alice, g, func(fs []field) []field {
			v := cBytes(alicePub[:])
			v[0] = 0x78 // text(32): same length, major type 3
			return replaceVal(fs, 3, v)
		}))
	add("tagged-value", "malformed", "The genesis header with time wrapped in CBOR tag 1 (0xc1, epoch time).",
		nil, editFields(w.alice, g, func(fs []field) []field {
			return replaceVal(fs, 11, cat([]byte{0xc1}, cUint(vectorTime)))
		}))
	add("float-value", "malformed", "The genesis header with lamport written as the float 1.0 (0xf9 0x3c 0x00).",
		nil, editFields(w.alice, g, func(fs []field) []field { return replaceVal(fs, 7, []byte{0xf9, 0x3c, 0x00}) }))
	add("truncated", "malformed", "The third event's wire form without its last byte.",
		ctxA3, a3.Encode()[:len(a3.Encode())-1])
	add("empty-input", "malformed", "Zero bytes.", nil, []byte{})
	add("signature-63-bytes", "malformed", "The genesis event with its signature cut to 63 bytes.",
		nil, cat([]byte{0x83}, cBytes(hdr), cBytes(g.Signature()[:63]), cBytes(g.Body())))
	add("signature-65-bytes", "malformed", "The genesis event with a zero byte appended to its signature (65 bytes).",
		nil, cat([]byte{0x83}, cBytes(hdr), cBytes(append(slices.Clone(g.Signature()), 0)), cBytes(g.Body())))
	add("container-two-items", "malformed", "A container array of two items: header and signature, no body slot.",
		nil, cat([]byte{0x82}, cBytes(hdr), cBytes(g.Signature())))
	add("container-four-items", "malformed", "A container array of four items: a second null after the body.",
		nil, cat([]byte{0x84}, cBytes(hdr), cBytes(g.Signature()), cBytes(g.Body()), []byte{0xf6}))
	add("container-not-array", "malformed", "The three container items inside a map instead of an array.",
		nil, cat([]byte{0xa1}, cBytes(hdr), cBytes(g.Signature())))
	add("header-not-bytes", "malformed", "A container whose first item is the header map itself rather than a byte string holding it.",
		nil, cat([]byte{0x83}, hdr, cBytes(g.Signature()), cBytes(g.Body())))
	add("body-undefined", "malformed", "The genesis event with CBOR undefined (0xf7) in place of the body.",
		nil, cat([]byte{0x83}, cBytes(hdr), cBytes(g.Signature()), []byte{0xf7}))

	// Trailing bytes.
	add("trailing-bytes", "trailing-bytes", "The genesis event's wire form followed by one zero byte.",
		nil, append(g.Encode(), 0x00))
	add("header-trailing-bytes", "trailing-bytes", "The genesis event whose header byte string holds the header map followed by one zero byte (signed as such).",
		nil, signed(w.alice, append(slices.Clone(hdr), 0x00), g.Body()))

	// Limits.
	add("oversize-header", "too-large", "A container whose header byte string is 4097 bytes long, one over MaxHeaderSize; its content does not matter.",
		nil, cat([]byte{0x83}, cBytes(append(slices.Clone(hdr), make([]byte, event.MaxHeaderSize+1-len(hdr))...)), cBytes(g.Signature()), []byte{0xf6}))
	add("oversize-body-declared", "too-large", "A container whose body byte string declares 524289 bytes (one over MaxBodySize) and ends there. The declared length is rejected before the missing bytes are noticed.",
		nil, cat([]byte{0x83}, cBytes(hdr), cBytes(g.Signature()), cHead(2, event.MaxBodySize+1)))
	add("too-many-parents", "too-large", "Bob's first event naming 65 parents, one over MaxParents.",
		nil, editHeader(w.bob, w.b1, func(h *event.Header) {
			h.Parents = nil
			for i := range event.MaxParents + 1 {
				h.Parents = append(h.Parents, event.PayloadHash([]byte{byte(i)}))
			}
			slices.SortFunc(h.Parents, event.ID.Compare)
		}))
	add("payload-size-over-limit", "too-large", "The third event with its body pruned and payload size 524289, one over MaxBodySize. A static rule.",
		nil, editHeader(w.alice, a3.WithoutBody(), func(h *event.Header) { h.PayloadSize = event.MaxBodySize + 1 }))

	// Static rules.
	add("version-2", "invalid", "The genesis header with version 2.",
		nil, editHeader(w.alice, g, func(h *event.Header) { h.Version = 2 }))
	add("seq-0", "invalid", "The genesis header with seq 0.",
		nil, editHeader(w.alice, g, func(h *event.Header) { h.Seq = 0 }))
	add("kind-0", "invalid", "Bob's first event with kind 0, which is never valid.",
		nil, editHeader(w.bob, w.b1, func(h *event.Header) { h.Kind = event.KindInvalid }))
	add("zero-author", "invalid", "The genesis header with an all-zero author key, signed by alice.",
		nil, editHeader(w.alice, g, func(h *event.Header) { h.Author = identity.PublicKey{} }))
	add("genesis-with-parents", "invalid", "The genesis header with a parent.",
		nil, editHeader(w.alice, g, func(h *event.Header) { h.Parents = []event.ID{w.g2.ID()} }))
	add("genesis-with-pursuance", "invalid", "The genesis header naming a pursuance.",
		nil, editHeader(w.alice, g, func(h *event.Header) { h.Pursuance = w.g2.ID() }))
	add("genesis-lamport-2", "lamport", "The genesis header with lamport 2.",
		nil, editHeader(w.alice, g, func(h *event.Header) { h.Lamport = 2 }))
	add("genesis-seq-2", "invalid", "An event of kind genesis at seq 2, with a backlink to the founder's genesis.",
		[]*event.Event{w.g}, editHeader(w.alice, g, func(h *event.Header) { h.Seq = 2; h.Backlink = g.ID() }))
	add("no-pursuance", "invalid", "Bob's first event (not a genesis) without key 2 (pursuance).",
		nil, editHeader(w.bob, w.b1, func(h *event.Header) { h.Pursuance = event.ID{} }))
	add("no-parents", "invalid", "Bob's first event (not a genesis) without key 6 (parents).",
		nil, editHeader(w.bob, w.b1, func(h *event.Header) { h.Parents = nil }))
	add("non-genesis-lamport-1", "lamport", "Bob's first event claiming lamport 1, which only a genesis can have. A static rule.",
		nil, editHeader(w.bob, w.b1, func(h *event.Header) { h.Lamport = 1 }))
	add("parents-unsorted", "invalid", "Bob's second event with its two parents in descending order.",
		nil, editHeader(w.bob, w.b2, func(h *event.Header) { slices.Reverse(h.Parents) }))
	add("parents-repeated", "invalid", "Bob's second event naming the same parent twice.",
		nil, editHeader(w.bob, w.b2, func(h *event.Header) { h.Parents = []event.ID{h.Parents[0], h.Parents[0]} }))

	// Body.
	body := slices.Clone(a3.Body())
	body[0] ^= 0x20
	add("body-hash-mismatch", "payload-mismatch", "The third event with one bit of its body flipped; same length.",
		ctxA3, container(a3.HeaderBytes(), a3.Signature(), body))
	add("body-size-mismatch", "payload-mismatch", "The third event with one byte appended to its body.",
		ctxA3, container(a3.HeaderBytes(), a3.Signature(), append(slices.Clone(a3.Body()), '!')))
	add("empty-body-for-nonempty-payload", "payload-mismatch", "The third event with an empty body (0x40) where the header records a non-empty payload. Empty is not pruned.",
		ctxA3, container(a3.HeaderBytes(), a3.Signature(), []byte{}))

	for i := range vs {
		if !strings.HasPrefix(vs[i].Expect, "ok") && vs[i].Expect != "equivocation" {
			if _, ok := expectErrs[vs[i].Expect]; !ok {
				tb.Fatalf("vector %s: unknown expectation %q", vs[i].Name, vs[i].Expect)
			}
		}
	}
	slices.SortFunc(vs, func(a, b vector) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(vs); i++ {
		if vs[i].Name == vs[i-1].Name {
			tb.Fatalf("two vectors named %s", vs[i].Name)
		}
	}
	return vs
}

// TestDocExample checks that the annotated hex dump in docs/events.md, §12,
// is the event of the vector it claims to be, and that the ID it gives is
// that event's.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- example:"
	_, rest, ok := strings.Cut(string(doc), marker)
	if !ok {
		t.Fatalf("docs/events.md has no %q marker", marker)
	}
	name, rest, _ := strings.Cut(rest, " ")
	_, rest, _ = strings.Cut(rest, "```\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("example block not closed")
	}
	var got []byte
	for _, line := range strings.Split(block, "\n") {
		line, _, _ = strings.Cut(line, "#")
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(line), " ", ""))
		if err != nil {
			t.Fatalf("example line %q: %v", line, err)
		}
		got = append(got, b...)
	}
	var v *vector
	for _, x := range readVectors(t, vectorDir) {
		if x.Name == name {
			v = &x
		}
	}
	if v == nil {
		t.Fatalf("docs/events.md shows vector %q, which does not exist", name)
	}
	if hex.EncodeToString(got) != v.Event {
		t.Errorf("docs/events.md example differs from vector %s:\n doc %x\nwant %s", name, got, v.Event)
	}
	if !strings.Contains(string(doc), v.ID) {
		t.Errorf("docs/events.md does not give the example's ID %s", v.ID)
	}
}
