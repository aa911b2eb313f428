package keystore

import (
	"bytes"
	"os"
	"testing"
)

// TestRotateSigningFromV2 migrates the version-2 golden file: the
// rotated keystore is version 3, keeps the member ID and the home seed
// (the first signing seed), holds the previous signing key pending until
// Settle, and opens with the same passphrase.
func TestRotateSigningFromV2(t *testing.T) {
	data, err := os.ReadFile("testdata/v2.json")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.WriteFile(Path(home), data, 0o600); err != nil {
		t.Fatal(err)
	}
	gp := []byte("golden passphrase")
	old, err := Open(home, gp)
	if err != nil {
		t.Fatal(err)
	}
	next, err := RotateSigning(home, gp, testRand(7))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(home, gp)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case got.ID() == old.ID():
		t.Fatal("the signing key did not change")
	case got.Member() != old.ID():
		t.Fatalf("member %s, want the first key %s", got.Member().Short(), old.ID().Short())
	case !bytes.Equal(got.HomeSeed(), old.SigningKey().Seed()):
		t.Fatal("the home seed is not the first signing seed")
	case got.PendingReplace() == nil || got.PendingReplace().Public() != old.ID():
		t.Fatal("the previous signing key is not pending")
	case got.KEMKey().Public().Equal(old.KEMKey().Public()) || got.KEMKeyFor(old.KEMKey().Public()) == nil:
		t.Fatal("the KEM key did not rotate, or the old one is not retired")
	case len(got.RetiredKEMKeys()) != len(old.RetiredKEMKeys())+1:
		t.Fatalf("%d retired KEM keys, want %d", len(got.RetiredKEMKeys()), len(old.RetiredKEMKeys())+1)
	case got.ID() != next.ID():
		t.Fatal("Open and RotateSigning disagree")
	}
	f, err := read(home)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != formatVersionRotated {
		t.Fatalf("version %d, want %d", f.Version, formatVersionRotated)
	}
	pub, err := ReadPublic(home)
	if err != nil || pub.ID != got.ID() {
		t.Fatalf("ReadPublic: %v, %v", pub.ID, err)
	}
	if _, err := RotateSigning(home, gp, testRand(8)); err == nil {
		t.Fatal("a second rotation while one is pending was allowed")
	}
	settled, err := Settle(home, gp, testRand(9))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Open(home, gp)
	if err != nil {
		t.Fatal(err)
	}
	if settled.PendingReplace() != nil || again.PendingReplace() != nil || again.Member() != old.ID() || !bytes.Equal(again.HomeSeed(), old.SigningKey().Seed()) {
		t.Fatal("Settle lost the member or home seed, or kept the pending key")
	}
	// A second rotation keeps the first member ID and home seed.
	third, err := RotateSigning(home, gp, testRand(10))
	if err != nil {
		t.Fatal(err)
	}
	if third.Member() != old.ID() || !bytes.Equal(third.HomeSeed(), old.SigningKey().Seed()) || third.PendingReplace().Public() != again.ID() {
		t.Fatal("a second rotation lost the member, the home seed, or does not pend the second key")
	}
}

// TestGoldenV3 checks that a version-3 keystore (a rotated signing key,
// its replacement pending) written by this code stays readable.
func TestGoldenV3(t *testing.T) {
	const golden = "testdata/v3.json"
	gp := []byte("golden passphrase")
	id := newID(t, "Golden Alice", 42)
	next, err := id.RotateSigning(testRand(45))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		home := t.TempDir()
		if err := Create(home, next, gp, InsecureTestKDF, testRand(43)); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(Path(home))
		if err := os.WriteFile(golden, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.WriteFile(Path(home), data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Open(home, gp)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != next.ID() || got.Member() != id.ID() || got.PendingReplace().Public() != id.ID() || !bytes.Equal(got.HomeSeed(), id.SigningKey().Seed()) {
		t.Fatal("the golden v3 keystore opened as another identity")
	}
	again := t.TempDir()
	if err := Create(again, next, gp, InsecureTestKDF, testRand(43)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(Path(again)); !bytes.Equal(b, data) {
		t.Fatal("this code no longer writes the golden v3 file byte for byte")
	}
}
