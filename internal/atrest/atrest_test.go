package atrest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// TestDerivation pins the key tree: a home's files are encrypted under
// these keys, so a change to a label or to the derivation would leave
// every home unreadable. The expected values were computed apart from this
// code (Python's hmac and hashlib, HKDF written out from RFC 5869).
func TestDerivation(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	root := Root(seed)
	events := root.Derive("events.db")
	b := NewCipher(events).Blind("id", []byte("an event ID"))
	for _, v := range []struct {
		what string
		got  []byte
		want string
	}{
		{"root", root[:], "1d37ec5e01f9cacecdd46856c4600b8699fb442dd2607052438d7bd912c12dad"},
		{"events.db key", events[:], "77e21f25cdf414e1568ff80f8db06c58f8c23fe26a892392a4b3543fc65a7100"},
		{"blinded", b[:], "e1581cf76ff50bd42ada31067e04ff1703ebbcbd60992e8d5937d39ffecb07be"},
	} {
		if hex.EncodeToString(v.got) != v.want {
			t.Errorf("%s = %x, want %s", v.what, v.got, v.want)
		}
	}
}

// TestSealOpen: a sealed value opens with its key and associated data
// only, and any altered byte makes it fail.
func TestSealOpen(t *testing.T) {
	c := NewCipher(Key{1})
	box := c.Seal(nil, nil, []byte("Obsidianharbor"), []byte("row 1"))
	if len(box) != len("Obsidianharbor")+Overhead {
		t.Fatalf("sealed %d bytes, want %d", len(box), len("Obsidianharbor")+Overhead)
	}
	if bytes.Contains(box, []byte("Obsidian")) {
		t.Fatal("the sealed value shows the plaintext")
	}
	if pt, err := c.Open(nil, box, []byte("row 1")); err != nil || string(pt) != "Obsidianharbor" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := c.Open(nil, box, []byte("row 2")); !errors.Is(err, ErrOpen) {
		t.Errorf("opened with other associated data: %v", err)
	}
	if _, err := NewCipher(Key{2}).Open(nil, box, []byte("row 1")); !errors.Is(err, ErrOpen) {
		t.Errorf("opened under another key: %v", err)
	}
	for i := range box {
		bad := bytes.Clone(box)
		bad[i] ^= 1
		if _, err := c.Open(nil, bad, []byte("row 1")); !errors.Is(err, ErrOpen) {
			t.Fatalf("opened with byte %d altered: %v", i, err)
		}
	}
	if _, err := c.Open(nil, box[:Overhead-1], nil); !errors.Is(err, ErrOpen) {
		t.Errorf("a short value: %v", err)
	}
	// Two seals of one value differ (random nonces).
	if bytes.Equal(box, c.Seal(nil, nil, []byte("Obsidianharbor"), []byte("row 1"))) {
		t.Error("two seals of one value are equal")
	}
}

// TestBlind: blinding is deterministic per key and domain, and domains
// and keys separate.
func TestBlind(t *testing.T) {
	c := NewCipher(Key{1})
	v := []byte("http://127.0.0.1:8765")
	if a, b := c.Blind("relay", v), NewCipher(Key{1}).Blind("relay", v); a != b {
		t.Fatal("blinding is not deterministic")
	}
	if c.Blind("relay", v) == c.Blind("topic", v) {
		t.Error("two domains blind alike")
	}
	// The domain's length is part of the hash: "ab"+"c" is not "a"+"bc".
	if c.Blind("ab", []byte("c")) == c.Blind("a", []byte("bc")) {
		t.Error("domain and value run together")
	}
	if c.Blind("relay", v) == NewCipher(Key{2}).Blind("relay", v) {
		t.Error("two keys blind alike")
	}
}

// TestSealFixed: equal values seal alike and open back; the name cannot
// be forged by re-using its ciphertext with another nonce.
func TestSealFixed(t *testing.T) {
	c := NewCipher(Key{3})
	id := bytes.Repeat([]byte{0xab}, 32)
	a, b := c.SealFixed("file", id), c.SealFixed("file", id)
	if !bytes.Equal(a, b) {
		t.Fatal("SealFixed is not deterministic")
	}
	if bytes.Equal(a, c.SealFixed("other", id)) {
		t.Error("two domains seal alike")
	}
	if got, err := c.OpenFixed("file", a); err != nil || !bytes.Equal(got, id) {
		t.Fatalf("OpenFixed = %x, %v", got, err)
	}
	if _, err := c.OpenFixed("other", a); !errors.Is(err, ErrOpen) {
		t.Errorf("opened in another domain: %v", err)
	}
	// A value sealed with a nonce of the caller's choosing, under the
	// same key and domain, is not a name SealFixed made.
	forged := c.Seal(nil, bytes.Repeat([]byte{1}, NonceSize), id, []byte("file"))
	if _, err := c.OpenFixed("file", forged); !errors.Is(err, ErrOpen) {
		t.Errorf("opened a value SealFixed did not make: %v", err)
	}
}
