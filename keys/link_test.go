package keys

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// linkVector is the link derivations' entry in testdata/keys/vectors.json:
// the secret 32 bytes of 0x61, its ID, the channel's seed and topic, a
// sealed plaintext and the secret wrapped under group generation g.
func linkVector(t *testing.T, g *Key, nonce fixedRand) vector {
	t.Helper()
	var s LinkSecret
	copy(s[:], bytes.Repeat([]byte{0x61}, LinkSecretSize))
	ch := s.Channel()
	x, err := NewEnvelopes(&ch)
	if err != nil {
		t.Fatal(err)
	}
	_, sk, _ := ch.Topic()
	ad := []byte("an event's place")
	sealed, err := s.SealLink(ad, []byte("hand-off content"), nonce)
	if err != nil {
		t.Fatal(err)
	}
	wadd := []byte("a link's wrap")
	wrapped, err := WrapLinkSecret(g, s, wadd, nonce)
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	return vector{Name: "link: ID, channel, content and the secret wrapped under the group key of seed 0x10 (with ad \"a link's wrap\")",
		Pursuance: id.String(), Gen: 1, Seed: hex.EncodeToString(g.Seed[:]),
		LinkSecret: hex.EncodeToString(s[:]), LinkID: id.String(), ChannelSeed: hex.EncodeToString(ch.Seed[:]),
		Topic: hex.EncodeToString(func() []byte { t := x.Topic(); return t[:] }()), TopicKey: hexKey(sk.Public()),
		Plaintext: hex.EncodeToString([]byte("hand-off content")), Nonce: hex.EncodeToString(bytes.Repeat([]byte{0x24}, nonceSize)),
		AD: hex.EncodeToString(ad), Sealed: hex.EncodeToString(sealed), Wrapped: hex.EncodeToString(wrapped)}
}

// TestLinkSecret checks what a link's secret derives: distinct secrets
// give distinct IDs and channels; content opens only with the secret and
// the AD it was sealed with; a wrap opens only under the generation and
// AD it was made with.
func TestLinkSecret(t *testing.T) {
	a, err := NewLinkSecret(newDetRand(1))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewLinkSecret(newDetRand(2))
	if a.Equal(b) || a.ID() == b.ID() {
		t.Fatal("two secrets, one ID")
	}
	ca, cb := a.Channel(), b.Channel()
	ta, _, err := ca.Topic()
	if err != nil {
		t.Fatal(err)
	}
	tb, _, _ := cb.Topic()
	if ta == tb || ca.Scope.Pursuance != a.ID() {
		t.Fatal("channels of two links share a topic, or a channel is not its link's")
	}
	box, err := a.SealLink([]byte("ad"), []byte("secret text"), newDetRand(3))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := a.OpenLink([]byte("ad"), box); err != nil || string(pt) != "secret text" {
		t.Fatalf("open: %q, %v", pt, err)
	}
	if _, err := b.OpenLink([]byte("ad"), box); err == nil {
		t.Fatal("opened with another link's secret")
	}
	if _, err := a.OpenLink([]byte("other ad"), box); err == nil {
		t.Fatal("opened with another AD")
	}
	g1, g2 := testKey(t, "", 1, 0x10), testKey(t, "", 2, 0x11)
	w, err := WrapLinkSecret(g1, a, []byte("w"), newDetRand(4))
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != LinkWrapSize {
		t.Fatalf("wrap of %d bytes, want %d", len(w), LinkWrapSize)
	}
	if got, err := UnwrapLinkSecret(g1, []byte("w"), w); err != nil || !got.Equal(a) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := UnwrapLinkSecret(g2, []byte("w"), w); err == nil {
		t.Fatal("unwrapped under another generation")
	}
	role := testKey(t, "editor", 1, 0x12)
	if _, err := WrapLinkSecret(role, a, nil, newDetRand(5)); err == nil {
		t.Fatal("wrapped under a role key")
	}
	if a.String() != "keys.LinkSecret(…)" {
		t.Fatal("String shows the secret")
	}
}
