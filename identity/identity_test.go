package identity

import (
	"bytes"
	"crypto/hpke"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestNewIdentity(t *testing.T) {
	id, err := New("Alice", testRand(10))
	if err != nil {
		t.Fatal(err)
	}
	if id.Name() != "Alice" {
		t.Errorf("Name = %q", id.Name())
	}
	if id.ID() != id.SigningKey().Public() {
		t.Error("ID is not the signing key's public half")
	}
	pub := id.Public()
	if pub.Name != "Alice" || pub.ID != id.ID() || !pub.KEM.Equal(id.KEMKey().Public()) {
		t.Errorf("Public = %+v does not match the identity", pub)
	}
	if err := pub.Verify(); err != nil {
		t.Errorf("Verify of a fresh identity: %v", err)
	}

	// The same randomness gives the same identity.
	again, err := New("Alice", testRand(10))
	if err != nil {
		t.Fatal(err)
	}
	if again.Public() != pub {
		t.Error("New is not deterministic in its randomness")
	}
	other, _ := New("Alice", testRand(11))
	if other.ID() == id.ID() || other.Public().KEM.Equal(pub.KEM) {
		t.Error("different randomness gave the same keys")
	}
}

func TestFromKeysRestores(t *testing.T) {
	id, err := New("Bob", testRand(12))
	if err != nil {
		t.Fatal(err)
	}
	sign, err := SigningKeyFromSeed(id.SigningKey().Seed())
	if err != nil {
		t.Fatal(err)
	}
	kemKey, err := KEMPrivateKeyFromBytes(id.KEMKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromKeys("Bob", sign, kemKey)
	if err != nil {
		t.Fatal(err)
	}
	if back.Public() != id.Public() {
		t.Errorf("restored identity differs:\n got %+v\nwant %+v", back.Public(), id.Public())
	}
	if _, err := FromKeys("Bob", nil, kemKey); err == nil {
		t.Error("FromKeys accepted a nil signing key")
	}
	if _, err := FromKeys("", sign, kemKey); !errors.Is(err, ErrBadName) {
		t.Errorf("FromKeys with empty name: %v, want ErrBadName", err)
	}
}

func TestNewRejectsShortRandomness(t *testing.T) {
	if _, err := New("Carol", bytes.NewReader(make([]byte, 40))); err == nil {
		t.Error("New succeeded with 40 bytes of randomness")
	}
}

func TestKEMBindingRejectsForeignKey(t *testing.T) {
	alice, _ := New("Alice", testRand(20))
	mallory, _ := New("Mallory", testRand(21))

	// Mallory pairs Alice's member ID with Mallory's KEM key.
	forged := alice.Public()
	forged.KEM = mallory.Public().KEM
	if err := forged.Verify(); !errors.Is(err, ErrBadKEMBinding) {
		t.Errorf("foreign KEM key with Alice's binding: %v, want ErrBadKEMBinding", err)
	}
	forged.KEMBinding = mallory.Public().KEMBinding
	if err := forged.Verify(); !errors.Is(err, ErrBadKEMBinding) {
		t.Errorf("foreign KEM key with its own binding: %v, want ErrBadKEMBinding", err)
	}
	// Mallory signs Alice's KEM key: still not Alice's binding.
	forged = alice.Public()
	forged.KEMBinding = SignKEMBinding(mallory.SigningKey(), alice.Public().KEM)
	if err := forged.Verify(); !errors.Is(err, ErrBadKEMBinding) {
		t.Errorf("binding by another signer: %v, want ErrBadKEMBinding", err)
	}
	// One flipped bit in the signature.
	forged = alice.Public()
	forged.KEMBinding[5] ^= 1
	if err := forged.Verify(); !errors.Is(err, ErrBadKEMBinding) {
		t.Errorf("corrupt binding: %v, want ErrBadKEMBinding", err)
	}
	// The binding is not an ordinary signature of the raw key.
	raw := alice.SigningKey().Sign(alice.Public().KEM.Bytes())
	if err := VerifyKEMBinding(alice.ID(), alice.Public().KEM, raw); !errors.Is(err, ErrBadKEMBinding) {
		t.Errorf("signature without the label accepted: %v", err)
	}
	if err := VerifyKEMBinding(alice.ID(), alice.Public().KEM, nil); !errors.Is(err, ErrBadKEMBinding) {
		t.Errorf("nil signature: %v", err)
	}
	var zero Public
	zero.Name = "Zero"
	if err := zero.Verify(); !errors.Is(err, ErrBadKEMBinding) {
		t.Errorf("zero keys: %v, want ErrBadKEMBinding", err)
	}
}

func TestValidateName(t *testing.T) {
	good := []string{"Alice", "a", "Zoë Müller", "李小龍", "desk 🐦‍⬛", strings.Repeat("x", MaxNameLen), strings.Repeat("é", MaxNameLen/2)}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
	bad := []string{"", strings.Repeat("x", MaxNameLen+1), strings.Repeat("é", MaxNameLen/2+1), "bad\xffutf8", "tab\there", "new\nline", "nul\x00", "del\x7f", "c1\u0085", "rtl\u202Eevil", "iso\u2066late", "lrm\u200e"}
	for _, n := range bad {
		if err := ValidateName(n); !errors.Is(err, ErrBadName) {
			t.Errorf("ValidateName(%q) = %v, want ErrBadName", n, err)
		}
		if _, err := New(n, testRand(1)); !errors.Is(err, ErrBadName) {
			t.Errorf("New(%q) = %v, want ErrBadName", n, err)
		}
	}
}

func TestKEMKeys(t *testing.T) {
	k, err := NewKEMPrivateKey(testRand(30))
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public()
	if len(pub.Bytes()) != KEMPublicKeySize || len(k.Bytes()) != KEMPrivateKeySize {
		t.Fatalf("sizes %d, %d", len(pub.Bytes()), len(k.Bytes()))
	}
	parsed, err := ParseKEMPublicKey(pub.Bytes())
	if err != nil || !parsed.Equal(pub) {
		t.Fatalf("ParseKEMPublicKey round trip: %v", err)
	}
	back, err := KEMPrivateKeyFromBytes(k.Bytes())
	if err != nil || !back.Public().Equal(pub) {
		t.Fatalf("KEMPrivateKeyFromBytes round trip: %v", err)
	}
	if !strings.HasPrefix(pub.String(), "kem:") {
		t.Errorf("String = %.10q…", pub.String())
	}
	if pub.IsZero() || !(KEMPublicKey{}).IsZero() {
		t.Error("IsZero is wrong")
	}
	other, _ := NewKEMPrivateKey(testRand(31))
	if pub.Equal(other.Public()) {
		t.Error("two random KEM keys are Equal")
	}

	for _, b := range [][]byte{nil, make([]byte, KEMPublicKeySize-1), make([]byte, KEMPublicKeySize+1)} {
		if _, err := ParseKEMPublicKey(b); !errors.Is(err, ErrBadKEMKey) {
			t.Errorf("ParseKEMPublicKey(%d bytes) = %v, want ErrBadKEMKey", len(b), err)
		}
	}
	// An ML-KEM encapsulation key whose coefficients are out of range.
	bad := bytes.Repeat([]byte{0xff}, KEMPublicKeySize)
	if _, err := ParseKEMPublicKey(bad); !errors.Is(err, ErrBadKEMKey) {
		t.Errorf("ParseKEMPublicKey(0xff…) = %v, want ErrBadKEMKey", err)
	}
	if _, err := (KEMPublicKey{}).HPKE(); err == nil {
		// An all-zero ML-KEM key is well-formed, so only the X25519 half
		// could be rejected; either answer is acceptable, but it must not
		// panic.
		t.Log("zero KEM key accepted by crypto/hpke")
	}
	if _, err := KEMPrivateKeyFromBytes(make([]byte, 31)); !errors.Is(err, ErrBadKEMKey) {
		t.Errorf("31-byte private key: %v, want ErrBadKEMKey", err)
	}
	if _, err := NewKEMPrivateKey(bytes.NewReader(nil)); err == nil {
		t.Error("NewKEMPrivateKey without randomness succeeded")
	}
	if KEM().ID() != 0x647a {
		t.Errorf("KEM ID = %#x, want 0x647a (MLKEM768-X25519)", KEM().ID())
	}
}

func TestHPKESealOpenRoundTrip(t *testing.T) {
	alice, _ := New("Alice", testRand(40))
	bob, _ := New("Bob", testRand(41))
	pk, err := alice.Public().KEM.HPKE()
	if err != nil {
		t.Fatal(err)
	}
	kdf, aead := hpke.HKDFSHA256(), hpke.ChaCha20Poly1305()
	info := []byte("pursuance/v1/test-seal")
	msg := []byte("role key generation 7")
	ct, err := hpke.Seal(pk, kdf, aead, info, msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := hpke.Open(alice.KEMKey().HPKE(), kdf, aead, info, ct)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Errorf("Open = %q, want %q", got, msg)
	}
	// A restored key opens it too.
	restored, _ := KEMPrivateKeyFromBytes(alice.KEMKey().Bytes())
	if _, err := hpke.Open(restored.HPKE(), kdf, aead, info, ct); err != nil {
		t.Errorf("Open with restored key: %v", err)
	}
	if _, err := hpke.Open(bob.KEMKey().HPKE(), kdf, aead, info, ct); err == nil {
		t.Error("another member's key opened the box")
	}
	if _, err := hpke.Open(alice.KEMKey().HPKE(), kdf, aead, []byte("other info"), ct); err == nil {
		t.Error("box opened under a different info")
	}
}

func TestFingerprintGolden(t *testing.T) {
	id, err := New("Alice", testRand(50))
	if err != nil {
		t.Fatal(err)
	}
	const want = "86154 43292 19269 64008 06002 99378"
	got := id.Public().Fingerprint()
	if got != want {
		t.Errorf("Fingerprint = %q, want %q", got, want)
	}
	if Fingerprint(id.ID(), id.Public().KEM) != got {
		t.Error("Public.Fingerprint and Fingerprint disagree")
	}
}

func TestFingerprintGoldenFixedKeys(t *testing.T) {
	// Fixed key bytes, independent of key generation, so that another
	// implementation can check its fingerprint against this one. (The value
	// was checked with an independent Python computation.)
	var sign PublicKey
	var kemPub KEMPublicKey
	for i := range sign {
		sign[i] = byte(i)
	}
	for i := range kemPub {
		kemPub[i] = byte(i * 7)
	}
	const want = "19038 53918 48657 05989 17123 39214"
	if got := Fingerprint(sign, kemPub); got != want {
		t.Errorf("Fingerprint = %q, want %q", got, want)
	}
}

func TestFingerprintShape(t *testing.T) {
	seen := map[string]bool{}
	for i := range 20 {
		id, _ := New("x", testRand(byte(100+i)))
		fp := id.Public().Fingerprint()
		groups := strings.Split(fp, " ")
		if len(groups) != 6 {
			t.Fatalf("%q: %d groups, want 6", fp, len(groups))
		}
		for _, g := range groups {
			if _, err := strconv.Atoi(g); len(g) != 5 || err != nil {
				t.Fatalf("%q: group %q is not 5 digits", fp, g)
			}
		}
		if seen[fp] {
			t.Fatalf("fingerprint %q repeated", fp)
		}
		seen[fp] = true
		// Each key changes the fingerprint.
		other, _ := New("y", testRand(byte(200+i)))
		if Fingerprint(id.ID(), other.Public().KEM) == fp || Fingerprint(other.ID(), id.Public().KEM) == fp {
			t.Fatal("fingerprint ignores one of the keys")
		}
	}
}

// TestNames: names are kept in one normal form, show everything they hold,
// and do not mix scripts within a word; look-alikes are Confusable.
func TestNames(t *testing.T) {
	norm := map[string]string{
		"  Alice   Smith ":      "Alice Smith",
		"Ｄａｖｅ":                  "Dave",
		"ﬁona":                  "fiona",
		"Jose\u0301":            "José",
		"\u3000Aki\u00a0Tanaka": "Aki Tanaka",
	}
	for in, want := range norm {
		got, err := NormalizeName(in)
		if err != nil || got != want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
		if err := ValidateName(in); !errors.Is(err, ErrBadName) {
			t.Errorf("ValidateName(%q) = %v: a name not in normal form must not be valid", in, err)
		}
		if err := ValidateName(want); err != nil {
			t.Errorf("ValidateName(%q) = %v", want, err)
		}
	}
	good := []string{"desk 🐦\u200d⬛", "❤\ufe0f Ana", "👍🏽", "Zoë Müller", "李小龍", "山田 Taro", "Иван Петров", "Ἀλέξανδρος", "O'Brien-Smith", "Ali 2"}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
	bad := map[string]string{
		"Da\u200bve":    "invisible character U+200B",
		"Da\u200dve":    "invisible character U+200D",
		"A\u00adB":      "invisible character U+00AD",
		"Da\u2060ve":    "invisible character U+2060",
		"e\ufe0f":       "invisible character U+FE0F",
		"\u3164":        "invisible character U+3164",
		"D\u0430ve":     `mixes Latin and Cyrillic`,
		"Pаypal":        `mixes Latin and Cyrillic`,
		"x\ue000":       "U+E000, which is unassigned, private",
		"line\u2028":    "U+2028",
		"rtl\u202eevil": "control character U+202E",
	}
	for n, want := range bad {
		err := ValidateName(n)
		if !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateName(%q) = %v, want ErrBadName saying %q", n, err, want)
		}
		if _, err := NormalizeName(n); !errors.Is(err, ErrBadName) {
			t.Errorf("NormalizeName(%q) = %v, want ErrBadName", n, err)
		}
	}
	alike := [][2]string{{"Dave", "dave"}, {"Dave", "DAVE"}, {"Bill", "B1ll"}, {"Olga", "0lga"}, {"Zoe", "Zoë"}, {"Ana Li", "AnaLi"}, {"Paypal", "Рауpal"}}
	for _, p := range alike {
		if !Confusable(p[0], p[1]) {
			t.Errorf("Confusable(%q, %q) = false", p[0], p[1])
		}
	}
	for _, p := range [][2]string{{"Dave", "Dan"}, {"Alice", "Bob"}, {"李", "季"}} {
		if Confusable(p[0], p[1]) {
			t.Errorf("Confusable(%q, %q) = true", p[0], p[1])
		}
	}
}

func TestRotateKEM(t *testing.T) {
	id, err := New("Alice", testRand(1))
	if err != nil {
		t.Fatal(err)
	}
	next, err := id.RotateKEM(testRand(2))
	if err != nil {
		t.Fatal(err)
	}
	if next.ID() != id.ID() || next.Name() != id.Name() {
		t.Fatal("rotating the KEM key changed the member ID or name")
	}
	if next.Public().KEM.Equal(id.Public().KEM) {
		t.Fatal("the KEM key did not change")
	}
	if err := next.Public().Verify(); err != nil {
		t.Fatalf("the new binding: %v", err)
	}
	if r := next.RetiredKEMKeys(); len(r) != 1 || !r[0].Public().Equal(id.Public().KEM) {
		t.Fatalf("retired keys: %d", len(r))
	}
	if next.KEMKeyFor(id.Public().KEM) == nil || next.KEMKeyFor(next.Public().KEM) != next.KEMKey() {
		t.Fatal("KEMKeyFor does not find the current and the retired key")
	}
	third, _ := next.RotateKEM(testRand(3))
	if r := third.RetiredKEMKeys(); len(r) != 2 || !r[0].Public().Equal(id.Public().KEM) || !r[1].Public().Equal(next.Public().KEM) {
		t.Fatal("retired keys are not kept oldest first")
	}
	if id.RetiredKEMKeys() != nil {
		t.Fatal("rotating changed the original identity")
	}
}
