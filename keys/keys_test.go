package keys

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

var update = flag.Bool("update", false, "rewrite testdata/keys vectors")

// detRand is a deterministic reader for tests and vectors.
type detRand struct{ r *rand.ChaCha8 }

func newDetRand(seed byte) *detRand {
	var s [32]byte
	s[0] = seed
	return &detRand{rand.NewChaCha8(s)}
}

func (d *detRand) Read(p []byte) (int, error) { return d.r.Read(p) }

func testKey(t testing.TB, role string, gen uint64, seed byte) *Key {
	t.Helper()
	k := &Key{Scope: Scope{Pursuance: event.ID{0xaa, 0xbb}, Role: role}, Gen: gen}
	for i := range k.Seed {
		k.Seed[i] = seed + byte(i)
	}
	return k
}

func TestEnvelopeRoundTripAndBuckets(t *testing.T) {
	k := testKey(t, "", 1, 1)
	x, err := NewEnvelopes(k)
	if err != nil {
		t.Fatal(err)
	}
	rnd := newDetRand(1)
	for _, n := range []int{0, 1, 100, 1024 - EnvelopeOverhead, 1024 - EnvelopeOverhead + 1, 5000, 200 << 10, MaxSealed} {
		pt := bytes.Repeat([]byte{0x5a}, n)
		env, err := x.Seal(pt, rnd)
		if err != nil {
			t.Fatalf("%d: %v", n, err)
		}
		want, _ := bucketFor(n)
		if len(env) != want {
			t.Fatalf("%d bytes: envelope of %d, want bucket %d", n, len(env), want)
		}
		got, err := x.Open(env)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: open: %v", n, err)
		}
	}
	if _, err := x.Seal(make([]byte, MaxSealed+1), rnd); err == nil {
		t.Fatal("an oversize plaintext sealed")
	}
}

func TestEnvelopeRejects(t *testing.T) {
	k := testKey(t, "", 1, 1)
	x, _ := NewEnvelopes(k)
	env, err := x.Seal([]byte("a signed event"), newDetRand(2))
	if err != nil {
		t.Fatal(err)
	}
	// Every bit flip is caught.
	for i := range len(env) * 8 {
		bad := bytes.Clone(env)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := x.Open(bad); !errors.Is(err, ErrEnvelope) {
			t.Fatalf("flip of bit %d: %v", i, err)
		}
	}
	// Another generation, another pursuance, a role key: none opens it.
	for name, other := range map[string]*Key{
		"next generation": testKey(t, "", 2, 1),
		"other seed":      testKey(t, "", 1, 2),
	} {
		y, err := NewEnvelopes(other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := y.Open(env); !errors.Is(err, ErrEnvelope) {
			t.Errorf("%s opened it: %v", name, err)
		}
		if y.Topic() == x.Topic() {
			t.Errorf("%s has the same topic", name)
		}
	}
	if _, err := NewEnvelopes(testKey(t, "editor", 1, 1)); !errors.Is(err, ErrBadKey) {
		t.Errorf("a role key made envelopes: %v", err)
	}
	if _, err := x.Open(env[:len(env)-1]); !errors.Is(err, ErrEnvelope) {
		t.Errorf("truncated: %v", err)
	}
}

func TestTopicIsHashOfSigningKey(t *testing.T) {
	k := testKey(t, "", 3, 9)
	topic, sk, err := k.Topic()
	if err != nil {
		t.Fatal(err)
	}
	if TopicOf(sk.Public()) != topic {
		t.Fatal("topic is not the hash of its signing key")
	}
}

func TestSealSeed(t *testing.T) {
	rnd := newDetRand(3)
	alice, err := identity.New("Alice", rnd)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := identity.New("Bob", rnd)
	if err != nil {
		t.Fatal(err)
	}
	k := testKey(t, "editor", 4, 7)
	box, err := SealSeed(k, alice.ID(), alice.KEMKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenSeed(k.Scope, k.Gen, box, alice.ID(), alice.KEMKey())
	if err != nil || !got.Seed.Equal(k.Seed) || got.Gen != k.Gen || got.Scope != k.Scope {
		t.Fatalf("open: %v", err)
	}
	// Bob cannot open Alice's box; nor can Alice open it as another
	// generation, role or member.
	cases := map[string]func() error{
		"other member's key": func() error { _, err := OpenSeed(k.Scope, k.Gen, box, bob.ID(), bob.KEMKey()); return err },
		"claimed as bob's":   func() error { _, err := OpenSeed(k.Scope, k.Gen, box, bob.ID(), alice.KEMKey()); return err },
		"other generation":   func() error { _, err := OpenSeed(k.Scope, k.Gen+1, box, alice.ID(), alice.KEMKey()); return err },
		"other role": func() error {
			_, err := OpenSeed(Scope{Pursuance: k.Scope.Pursuance, Role: "researcher"}, k.Gen, box, alice.ID(), alice.KEMKey())
			return err
		},
		"altered": func() error {
			bad := bytes.Clone(box)
			bad[len(bad)-1] ^= 1
			_, err := OpenSeed(k.Scope, k.Gen, bad, alice.ID(), alice.KEMKey())
			return err
		},
	}
	for name, f := range cases {
		if err := f(); !errors.Is(err, ErrSeal) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestChain(t *testing.T) {
	prev, next := testKey(t, "editor", 1, 1), testKey(t, "editor", 2, 50)
	box, err := Chain(next, prev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unchain(next, box)
	if err != nil || !got.Seed.Equal(prev.Seed) || got.Gen != 1 {
		t.Fatalf("unchain: %v", err)
	}
	if _, err := Chain(testKey(t, "editor", 3, 1), prev); !errors.Is(err, ErrBadKey) {
		t.Errorf("chained across a gap: %v", err)
	}
	if _, err := Chain(testKey(t, "admin", 2, 1), prev); !errors.Is(err, ErrBadKey) {
		t.Errorf("chained across roles: %v", err)
	}
	if _, err := Unchain(testKey(t, "editor", 2, 51), box); !errors.Is(err, ErrSeal) {
		t.Errorf("unchained with the wrong key: %v", err)
	}
}

// TestChainSibling: several earlier generations chained under one next,
// each opening only with its own update's ID, none with Unchain's key.
func TestChainSibling(t *testing.T) {
	next := testKey(t, "editor", 3, 0x30)
	a, b := testKey(t, "editor", 2, 0x41), testKey(t, "editor", 2, 0x42)
	ua, ub := event.ID{1}, event.ID{2}
	boxA, err := ChainSibling(next, a, ua)
	if err != nil {
		t.Fatal(err)
	}
	boxB, err := ChainSibling(next, b, ub)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := UnchainSibling(next, 2, ua, boxA); err != nil || got != *a {
		t.Fatalf("unchain a: %v", err)
	}
	if got, err := UnchainSibling(next, 2, ub, boxB); err != nil || got != *b {
		t.Fatalf("unchain b: %v", err)
	}
	if _, err := UnchainSibling(next, 2, ub, boxA); !errors.Is(err, ErrSeal) {
		t.Errorf("a's box opened under b's update: %v", err)
	}
	if _, err := UnchainSibling(next, 1, ua, boxA); !errors.Is(err, ErrSeal) {
		t.Errorf("a's box opened as generation 1: %v", err)
	}
	if _, err := Unchain(next, boxA); !errors.Is(err, ErrSeal) {
		t.Errorf("a sibling box opened as the plain chain: %v", err)
	}
	if _, err := ChainSibling(next, testKey(t, "editor", 3, 0x43), ua); !errors.Is(err, ErrBadKey) {
		t.Errorf("chained a generation not before next: %v", err)
	}
	if _, err := ChainSibling(next, testKey(t, "admin", 2, 0x43), ua); !errors.Is(err, ErrBadKey) {
		t.Errorf("chained another scope: %v", err)
	}
}

func TestContent(t *testing.T) {
	rnd := newDetRand(4)
	ck, _ := NewContentKey(rnd)
	ad := []byte("task id")
	box, err := SealContent(ck, ad, []byte("Find the leak"), rnd)
	if err != nil {
		t.Fatal(err)
	}
	role := testKey(t, "researcher", 1, 3)
	wrap, err := WrapContentKey(role, ck, ad, rnd)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnwrapContentKey(role, ad, wrap)
	if err != nil || got != ck {
		t.Fatalf("unwrap: %v", err)
	}
	pt, err := OpenContent(got, ad, box)
	if err != nil || string(pt) != "Find the leak" {
		t.Fatalf("open: %v", err)
	}
	if _, err := UnwrapContentKey(testKey(t, "editor", 1, 3), ad, wrap); !errors.Is(err, ErrSeal) {
		t.Errorf("another role unwrapped it: %v", err)
	}
	if _, err := UnwrapContentKey(testKey(t, "researcher", 2, 3), ad, wrap); !errors.Is(err, ErrSeal) {
		t.Errorf("another generation unwrapped it: %v", err)
	}
	if _, err := OpenContent(ck, []byte("other task"), box); !errors.Is(err, ErrSeal) {
		t.Errorf("opened for another task: %v", err)
	}
	// The group key wraps content every member reads; a group wrap opens
	// only with the group key.
	gwrap, err := WrapContentKey(testKey(t, "", 1, 3), ck, ad, rnd)
	if err != nil {
		t.Fatalf("wrap under the group key: %v", err)
	}
	if _, err := UnwrapContentKey(testKey(t, "researcher", 1, 3), ad, gwrap); !errors.Is(err, ErrSeal) {
		t.Errorf("a role key with the group's seed unwrapped a group wrap: %v", err)
	}
	if _, err := WrapContentKey(&Key{Scope: testKey(t, "", 1, 3).Scope}, ck, ad, rnd); !errors.Is(err, ErrBadKey) {
		t.Errorf("wrapped under generation 0: %v", err)
	}
}

func TestBox(t *testing.T) {
	inv, err := InviteKEMKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := InviteKEMKey(bytes.Repeat([]byte{7}, 32))
	if !inv.Public().Equal(again.Public()) {
		t.Fatal("the invite KEM key is not a function of the invite secret")
	}
	other, _ := InviteKEMKey(bytes.Repeat([]byte{8}, 32))
	box, err := SealBox(inv.Public(), "test", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := OpenBox(inv, "test", box); err != nil || string(pt) != "secret" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := OpenBox(inv, "other purpose", box); !errors.Is(err, ErrSeal) {
		t.Errorf("opened for another purpose: %v", err)
	}
	if _, err := OpenBox(other, "test", box); !errors.Is(err, ErrSeal) {
		t.Errorf("opened with another key: %v", err)
	}
}

func TestSeedNeverPrinted(t *testing.T) {
	k := testKey(t, "", 1, 0x41)
	for _, s := range []string{k.Seed.String(), k.Seed.GoString()} {
		if bytes.Contains([]byte(s), []byte{0x41}) || bytes.Contains([]byte(s), []byte("41")) {
			t.Fatalf("seed printed: %q", s)
		}
	}
}

// vector is one golden derivation: the bytes a key produces with a
// deterministic nonce source, so another implementation can check itself.
type vector struct {
	Name      string `json:"name"`
	Pursuance string `json:"pursuance"`
	Role      string `json:"role"`
	Gen       uint64 `json:"gen"`
	Seed      string `json:"seed"`
	Topic     string `json:"topic,omitempty"`
	TopicKey  string `json:"topic_public_key,omitempty"`
	Plaintext string `json:"plaintext,omitempty"`
	Nonce     string `json:"nonce,omitempty"`
	Envelope  string `json:"envelope,omitempty"`
	Prev      string `json:"prev_seed,omitempty"`
	Chain     string `json:"chain,omitempty"`
	// PrevUpdate names the chained sibling generation (ChainSibling).
	PrevUpdate string `json:"prev_update,omitempty"`
	// A link's secret and what it derives (LinkSecret): its ID, the
	// channel's seed and topic, content sealed with AD, and the secret
	// wrapped under the group key generation of the vector's seed.
	LinkSecret  string `json:"link_secret,omitempty"`
	LinkID      string `json:"link_id,omitempty"`
	ChannelSeed string `json:"channel_seed,omitempty"`
	AD          string `json:"ad,omitempty"`
	Sealed      string `json:"sealed,omitempty"`
	Wrapped     string `json:"wrapped,omitempty"`
	// A public profile's keys (Key.Intake), its knock topic, and the
	// reply topic of a join request's reply seed.
	Epoch      uint64 `json:"epoch,omitempty"`
	ProfileKey string `json:"profile_key,omitempty"`
	IntakeKEM  string `json:"intake_kem_key,omitempty"`
	KnockTopic string `json:"knock_topic,omitempty"`
	ReplySeed  string `json:"reply_seed,omitempty"`
	ReplyTopic string `json:"reply_topic,omitempty"`
}

// fixedRand returns the same bytes every time, for vectors.
type fixedRand []byte

func (f fixedRand) Read(p []byte) (int, error) { return copy(p, bytes.Repeat(f, len(p)/len(f)+1)), nil }

func TestVectors(t *testing.T) {
	var vs []vector
	g := testKey(t, "", 1, 0x10)
	x, _ := NewEnvelopes(g)
	_, sk, _ := g.Topic()
	nonce := fixedRand{0x24}
	env, err := x.Seal([]byte("an encoded event"), nonce)
	if err != nil {
		t.Fatal(err)
	}
	vs = append(vs, vector{Name: "group key: topic and envelope", Pursuance: g.Scope.Pursuance.String(), Gen: 1,
		Seed: hex.EncodeToString(g.Seed[:]), Topic: hex.EncodeToString(x.topic[:]), TopicKey: hexKey(sk.Public()),
		Plaintext: hex.EncodeToString([]byte("an encoded event")), Nonce: hex.EncodeToString(bytes.Repeat([]byte{0x24}, nonceSize)),
		Envelope: hex.EncodeToString(env)})
	prev, next := testKey(t, "editor", 1, 0x20), testKey(t, "editor", 2, 0x30)
	chain, err := Chain(next, prev)
	if err != nil {
		t.Fatal(err)
	}
	vs = append(vs, vector{Name: "role key: seed chaining", Pursuance: next.Scope.Pursuance.String(), Role: "editor", Gen: 2,
		Seed: hex.EncodeToString(next.Seed[:]), Prev: hex.EncodeToString(prev.Seed[:]), Chain: hex.EncodeToString(chain)})
	sib := testKey(t, "editor", 1, 0x40)
	sibUpdate := event.ID{0x51, 0x52}
	sibChain, err := ChainSibling(next, sib, sibUpdate)
	if err != nil {
		t.Fatal(err)
	}
	vs = append(vs, vector{Name: "role key: a sibling generation chained (its key update's ID in prev_update)", Pursuance: next.Scope.Pursuance.String(), Role: "editor", Gen: 2,
		Seed: hex.EncodeToString(next.Seed[:]), Prev: hex.EncodeToString(sib.Seed[:]), PrevUpdate: sibUpdate.String(), Chain: hex.EncodeToString(sibChain)})
	vs = append(vs, linkVector(t, g, nonce))
	vs = append(vs, intakeVector(t))
	got, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("..", "testdata", "keys", "vectors.json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("derivations differ from %s: the key schedule changed; if on purpose, run -update and say so in docs/keys.md", path)
	}
}

func hexKey(k identity.PublicKey) string { return hex.EncodeToString(k[:]) }
