package identity

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// testRand returns a deterministic reader for tests; seed picks the stream.
func testRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func TestMemberIDRoundTrip(t *testing.T) {
	for i := range 50 {
		k, err := NewSigningKey(testRand(byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		id := k.Public().String()
		if !strings.HasPrefix(id, "pm1") || len(id) != 3+56 {
			t.Fatalf("member ID %q: want pm1 and 56 letters", id)
		}
		got, err := ParseMemberID(id)
		if err != nil {
			t.Fatalf("ParseMemberID(%q): %v", id, err)
		}
		if !got.Equal(k.Public()) {
			t.Fatalf("ParseMemberID(%q) = %x, want %x", id, got, k.Public())
		}
		// Upper case and surrounding space are accepted.
		got, err = ParseMemberID("  " + strings.ToUpper(id) + "\n")
		if err != nil || got != k.Public() {
			t.Fatalf("ParseMemberID(upper %q) = %v, %v", id, got, err)
		}
		// Text marshalling round-trips too.
		text, _ := k.Public().MarshalText()
		var back PublicKey
		if err := back.UnmarshalText(text); err != nil || back != k.Public() {
			t.Fatalf("UnmarshalText(%q) = %v, %v", text, back, err)
		}
	}
}

func TestMemberIDGolden(t *testing.T) {
	k, err := SigningKeyFromSeed(bytes.Repeat([]byte{7}, SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	const want = "pm15jfgyy7ctrjavpxvkb5rglwf7gkuo5vox27hxescd3vgsfcg2iwgvkad"
	if got := k.Public().String(); got != want {
		t.Errorf("member ID = %q, want %q", got, want)
	}
	if got := k.Public().Short(); got != want[3:13] {
		t.Errorf("Short = %q, want %q", got, want[3:13])
	}
	if !bytes.Equal(k.Seed(), bytes.Repeat([]byte{7}, SeedSize)) {
		t.Errorf("Seed does not return the seed")
	}
}

func TestMemberIDTypoDetected(t *testing.T) {
	k, err := NewSigningKey(testRand(1))
	if err != nil {
		t.Fatal(err)
	}
	id := k.Public().String()
	// Every single-letter substitution after the prefix is caught. (35 bytes
	// fill 56 letters exactly, so every letter carries key or checksum bits;
	// a typo slips through with probability 2⁻²⁴, and none of this key's
	// 56×31 typos does.)
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	for pos := 3; pos < len(id); pos++ {
		for _, c := range alphabet {
			if byte(c) == id[pos] {
				continue
			}
			typo := id[:pos] + string(c) + id[pos+1:]
			if _, err := ParseMemberID(typo); !errors.Is(err, ErrBadMemberID) {
				t.Fatalf("typo %q: err = %v, want ErrBadMemberID", typo, err)
			}
		}
	}
	// Swapping two adjacent different letters is caught.
	for pos := 3; pos+1 < len(id)-1; pos++ {
		if id[pos] == id[pos+1] {
			continue
		}
		swapped := id[:pos] + string(id[pos+1]) + string(id[pos]) + id[pos+2:]
		if _, err := ParseMemberID(swapped); !errors.Is(err, ErrBadMemberID) {
			t.Fatalf("transposition %q: err = %v, want ErrBadMemberID", swapped, err)
		}
	}
}

func TestParseMemberIDRejects(t *testing.T) {
	k, err := NewSigningKey(testRand(2))
	if err != nil {
		t.Fatal(err)
	}
	id := k.Public().String()
	cases := map[string]string{
		"empty":           "",
		"wrong prefix":    "px1" + id[3:],
		"no prefix":       id[3:],
		"other prefix":    "nodekey:" + id[3:],
		"too short":       id[:len(id)-1],
		"too long":        id + "a",
		"much too long":   id + strings.Repeat("a", 200),
		"bad letter":      id[:10] + "1" + id[11:],
		"padding":         id[:len(id)-1] + "=",
		"inner space":     id[:10] + " " + id[11:],
		"only the prefix": "pm1",
	}
	for name, in := range cases {
		if _, err := ParseMemberID(in); !errors.Is(err, ErrBadMemberID) {
			t.Errorf("%s: ParseMemberID(%q) err = %v, want ErrBadMemberID", name, in, err)
		}
		var pk PublicKey
		if err := pk.UnmarshalText([]byte(in)); !errors.Is(err, ErrBadMemberID) {
			t.Errorf("%s: UnmarshalText(%q) err = %v, want ErrBadMemberID", name, in, err)
		}
	}
}

func TestSigningKeySignVerify(t *testing.T) {
	k, err := NewSigningKey(testRand(3))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("pursuance/v1/test message")
	sig := k.Sign(msg)
	if !k.Public().Verify(msg, sig) {
		t.Fatal("valid signature rejected")
	}
	if k.Public().Verify([]byte("pursuance/v1/test messagE"), sig) {
		t.Error("signature accepted for another message")
	}
	if k.Public().Verify(msg, sig[:len(sig)-1]) {
		t.Error("truncated signature accepted")
	}
	other, _ := NewSigningKey(testRand(4))
	if other.Public().Verify(msg, sig) {
		t.Error("signature accepted under another key")
	}
	if k.Public().Equal(other.Public()) || !k.Public().Equal(k.Public()) {
		t.Error("Equal is wrong")
	}
	if k.Public().IsZero() || !(PublicKey{}).IsZero() {
		t.Error("IsZero is wrong")
	}
}

func TestSigningKeyErrors(t *testing.T) {
	if _, err := SigningKeyFromSeed(make([]byte, 31)); err == nil {
		t.Error("31-byte seed accepted")
	}
	if _, err := NewSigningKey(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Error("short randomness accepted")
	}
}
