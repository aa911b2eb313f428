package keystore

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pursuance/pursuance/identity"
)

var update = flag.Bool("update", false, "rewrite testdata/v1.json, v2.json and v3.json")

func testRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func newID(t *testing.T, name string, seed byte) *identity.Identity {
	t.Helper()
	id, err := identity.New(name, testRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var pass = []byte("correct horse battery staple")

func create(t *testing.T, home string, id *identity.Identity) {
	t.Helper()
	if err := Create(home, id, pass, InsecureTestKDF, testRand(99)); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

func TestCreateOpen(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home", "alice")
	id := newID(t, "Alice", 1)
	create(t, home, id)

	got, err := Open(home, pass)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got.Public() != id.Public() {
		t.Errorf("Open returned %+v, want %+v", got.Public(), id.Public())
	}
	if !bytes.Equal(got.SigningKey().Seed(), id.SigningKey().Seed()) || !bytes.Equal(got.KEMKey().Bytes(), id.KEMKey().Bytes()) {
		t.Error("Open returned different private keys")
	}
	pub, err := ReadPublic(home)
	if err != nil {
		t.Fatalf("ReadPublic: %v", err)
	}
	if pub != id.Public() {
		t.Errorf("ReadPublic = %+v, want %+v", pub, id.Public())
	}

	fi, err := os.Stat(Path(home))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("keystore mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(home)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("home mode %v, want 0700", di.Mode().Perm())
	}
	data, _ := os.ReadFile(Path(home))
	if bytes.Contains(data, id.SigningKey().Seed()) || bytes.Contains(data, id.KEMKey().Bytes()) {
		t.Error("a private key appears in clear in the file")
	}
	if !bytes.Contains(data, []byte(id.ID().String())) || !bytes.Contains(data, []byte(`"Alice"`)) {
		t.Error("the member ID and name are not stored in clear")
	}
	assertNoTemp(t, home)
}

func TestWrongPassphrase(t *testing.T) {
	home := t.TempDir()
	create(t, home, newID(t, "Alice", 1))
	for _, p := range []string{"correct horse battery stapl", "Correct horse battery staple", "correct horse battery staple "} {
		_, err := Open(home, []byte(p))
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("Open(%q) err = %v, want ErrWrongPassphrase", p, err)
		}
	}
	if _, err := Open(home, nil); !errors.Is(err, ErrEmptyPassphrase) {
		t.Errorf("Open(empty) err = %v, want ErrEmptyPassphrase", err)
	}
}

func TestCreateRefusesOverwrite(t *testing.T) {
	home := t.TempDir()
	alice := newID(t, "Alice", 1)
	create(t, home, alice)
	before, _ := os.ReadFile(Path(home))

	err := Create(home, newID(t, "Mallory", 2), []byte("other"), InsecureTestKDF, testRand(3))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Create err = %v, want ErrExists", err)
	}
	if !strings.Contains(err.Error(), "refusing to overwrite") || !strings.Contains(err.Error(), home) {
		t.Errorf("error %q should name the home and say it refuses to overwrite", err)
	}
	after, _ := os.ReadFile(Path(home))
	if !bytes.Equal(before, after) {
		t.Error("keystore changed")
	}
	assertNoTemp(t, home)
}

func TestConcurrentCreateOneWins(t *testing.T) {
	home := t.TempDir()
	const n = 8
	ids := make([]*identity.Identity, n)
	errs := make([]error, n)
	for i := range ids {
		ids[i] = newID(t, "Member", byte(10+i))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = Create(home, ids[i], pass, InsecureTestKDF, testRand(byte(50+i)))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("both %d and %d created the keystore", winner, i)
			}
			winner = i
		case !errors.Is(err, ErrExists):
			t.Errorf("Create %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no Create succeeded")
	}
	got, err := Open(home, pass)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != ids[winner].ID() {
		t.Error("the keystore holds another identity than the one whose Create succeeded")
	}
	assertNoTemp(t, home)
}

func TestMissing(t *testing.T) {
	home := filepath.Join(t.TempDir(), "nobody")
	_, err := Open(home, pass)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open err = %v, want fs.ErrNotExist", err)
	}
	if err == nil || !strings.Contains(err.Error(), "pursuance id new") {
		t.Errorf("error %q should tell the user to run `pursuance id new`", err)
	}
	if _, err := ReadPublic(home); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadPublic err = %v, want fs.ErrNotExist", err)
	}
}

func TestCreateRejects(t *testing.T) {
	home := t.TempDir()
	id := newID(t, "Alice", 1)
	if err := Create(home, id, nil, InsecureTestKDF, testRand(1)); !errors.Is(err, ErrEmptyPassphrase) {
		t.Errorf("empty passphrase: %v", err)
	}
	if err := Create(home, id, pass, KDFParams{}, testRand(1)); err == nil {
		t.Error("zero KDF parameters accepted")
	}
	if err := Create(home, id, pass, InsecureTestKDF, bytes.NewReader(nil)); err == nil {
		t.Error("Create without randomness succeeded")
	}
	if _, err := os.Stat(Path(home)); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a failed Create left a keystore behind")
	}
	assertNoTemp(t, home)
}

// TestTampering edits a valid keystore file and checks each edit is caught.
func TestTampering(t *testing.T) {
	src := t.TempDir()
	create(t, src, newID(t, "Alice", 1))
	orig, err := os.ReadFile(Path(src))
	if err != nil {
		t.Fatal(err)
	}
	other := newID(t, "Mallory", 2).Public()

	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(orig, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sub := func(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }

	cases := []struct {
		name       string
		data       []byte
		openErr    error
		publicFine bool // ReadPublic still succeeds (the field is not covered without the passphrase)
	}{
		{"name changed", edit(func(m map[string]any) { sub(m, "public")["name"] = "Mallory" }), ErrWrongPassphrase, true},
		{"kdf time changed", edit(func(m map[string]any) { sub(m, "kdf")["time"] = 2 }), ErrWrongPassphrase, true},
		{"nonce changed", edit(func(m map[string]any) { sub(m, "cipher")["nonce"] = strings.Repeat("A", 32) }), ErrWrongPassphrase, true},
		{"member ID swapped", edit(func(m map[string]any) { sub(m, "public")["id"] = other.ID.String() }), ErrCorrupt, false},
		{"KEM key swapped", edit(func(m map[string]any) { sub(m, "public")["kem"] = other.KEM.Bytes() }), ErrCorrupt, false},
		{"whole public part swapped", edit(func(m map[string]any) {
			p := sub(m, "public")
			p["id"], p["kem"], p["kem_binding"], p["name"] = other.ID.String(), other.KEM.Bytes(), other.KEMBinding[:], other.Name
		}), ErrWrongPassphrase, true},
		{"bad member ID", edit(func(m map[string]any) { sub(m, "public")["id"] = "pm1nope" }), ErrCorrupt, false},
		{"unknown field", edit(func(m map[string]any) { m["extra"] = 1 }), ErrCorrupt, false},
		{"future version", edit(func(m map[string]any) { m["version"] = 2 }), ErrCorrupt, false},
		{"other format", edit(func(m map[string]any) { m["format"] = "age" }), ErrCorrupt, false},
		{"other kdf", edit(func(m map[string]any) { sub(m, "kdf")["alg"] = "scrypt" }), ErrCorrupt, false},
		{"absurd memory", edit(func(m map[string]any) { sub(m, "kdf")["memory_kib"] = 1 << 31 }), ErrCorrupt, false},
		{"zero threads", edit(func(m map[string]any) { sub(m, "kdf")["threads"] = 0 }), ErrCorrupt, false},
		{"short salt", edit(func(m map[string]any) { sub(m, "kdf")["salt"] = "AAAA" }), ErrCorrupt, false},
		{"sealed truncated", edit(func(m map[string]any) { m["sealed"] = "AAAA" }), ErrCorrupt, false},
		{"truncated file", orig[:len(orig)/2], ErrCorrupt, false},
		{"empty file", nil, ErrCorrupt, false},
		{"two objects", append(append([]byte{}, orig...), orig...), ErrCorrupt, false},
		{"not JSON", []byte("hello"), ErrCorrupt, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home := t.TempDir()
			if err := os.WriteFile(Path(home), c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(home, pass); !errors.Is(err, c.openErr) {
				t.Errorf("Open err = %v, want %v", err, c.openErr)
			}
			_, err := ReadPublic(home)
			if c.publicFine && err != nil {
				t.Errorf("ReadPublic err = %v, want nil", err)
			}
			if !c.publicFine && !errors.Is(err, ErrCorrupt) {
				t.Errorf("ReadPublic err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestChangePassphrase(t *testing.T) {
	home := t.TempDir()
	id := newID(t, "Alice", 1)
	create(t, home, id)
	newPass := []byte("a new passphrase")
	if err := ChangePassphrase(home, []byte("wrong"), newPass, InsecureTestKDF, testRand(5)); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("ChangePassphrase with wrong old passphrase: %v", err)
	}
	if err := ChangePassphrase(home, pass, nil, InsecureTestKDF, testRand(5)); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("ChangePassphrase to empty: %v", err)
	}
	if err := ChangePassphrase(home, pass, newPass, InsecureTestKDF, testRand(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(home, pass); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("old passphrase after change: %v", err)
	}
	got, err := Open(home, newPass)
	if err != nil {
		t.Fatal(err)
	}
	if got.Public() != id.Public() {
		t.Error("identity changed with the passphrase")
	}
	fi, _ := os.Stat(Path(home))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after rewrite %v", fi.Mode().Perm())
	}
	assertNoTemp(t, home)
}

// TestCrashLeavesOldKeystore simulates a crash partway through writing the
// replacement file: the old keystore must stay in place and usable, and
// leftover temporary files must be ignored by every later operation.
func TestCrashLeavesOldKeystore(t *testing.T) {
	home := t.TempDir()
	id := newID(t, "Alice", 1)
	create(t, home, id)
	before, _ := os.ReadFile(Path(home))

	// A crash after half the file is written: the hook truncates the
	// temporary file and fails, as a dying process would stop.
	crash := errors.New("simulated crash")
	testHookAfterWrite = func(tmp *os.File) error {
		fi, err := tmp.Stat()
		if err != nil {
			return err
		}
		if err := tmp.Truncate(fi.Size() / 2); err != nil {
			return err
		}
		return crash
	}
	err := ChangePassphrase(home, pass, []byte("new"), InsecureTestKDF, testRand(6))
	testHookAfterWrite = nil
	if !errors.Is(err, crash) {
		t.Fatalf("ChangePassphrase err = %v, want the simulated crash", err)
	}
	after, _ := os.ReadFile(Path(home))
	if !bytes.Equal(before, after) {
		t.Fatal("a failed write changed the keystore")
	}

	// A real crash leaves its temporary file behind; plant some, including
	// a truncated copy of a valid keystore and a complete one under a
	// temporary name.
	for i, data := range [][]byte{before[:len(before)/3], nil, []byte("{"), before} {
		name := filepath.Join(home, "."+FileName+".tmp-"+string(rune('a'+i)))
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := Open(home, pass); err != nil || got.Public() != id.Public() {
		t.Fatalf("Open with leftovers: %v", err)
	}
	if pub, err := ReadPublic(home); err != nil || pub != id.Public() {
		t.Fatalf("ReadPublic with leftovers: %v", err)
	}
	if err := Create(home, newID(t, "Bob", 2), pass, InsecureTestKDF, testRand(7)); !errors.Is(err, ErrExists) {
		t.Fatalf("Create with leftovers: %v, want ErrExists", err)
	}
	if err := ChangePassphrase(home, pass, []byte("new"), InsecureTestKDF, testRand(8)); err != nil {
		t.Fatalf("ChangePassphrase with leftovers: %v", err)
	}
	if got, err := Open(home, []byte("new")); err != nil || got.Public() != id.Public() {
		t.Fatalf("Open after change: %v", err)
	}

	// With no keystore at all, leftovers do not count as one.
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "."+FileName+".tmp-x"), before, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPublic(empty); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadPublic of a home with only a temporary file: %v, want fs.ErrNotExist", err)
	}
	create(t, empty, id)
}

// TestGoldenV1 checks that a version-1 keystore written by this code stays
// readable by every later version.
func TestGoldenV1(t *testing.T) {
	const golden = "testdata/v1.json"
	id := newID(t, "Golden Alice", 42)
	if *update {
		home := t.TempDir()
		if err := Create(home, id, []byte("golden passphrase"), InsecureTestKDF, testRand(43)); err != nil {
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
	got, err := Open(home, []byte("golden passphrase"))
	if err != nil {
		t.Fatalf("Open golden keystore: %v", err)
	}
	if got.Public() != id.Public() {
		t.Errorf("golden keystore holds %v, want %v", got.ID(), id.ID())
	}
	// Sealing is deterministic given the randomness, so the bytes are stable.
	again := t.TempDir()
	if err := Create(again, id, []byte("golden passphrase"), InsecureTestKDF, testRand(43)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(Path(again)); !bytes.Equal(b, data) {
		t.Errorf("the encoding changed; if intended, bump the version or run go test -update")
	}
}

func TestDefaultKDF(t *testing.T) {
	if err := DefaultKDF.validate(); err != nil {
		t.Fatal(err)
	}
	if testing.Short() {
		t.Skip("the real KDF cost is slow")
	}
	home := t.TempDir()
	id := newID(t, "Alice", 1)
	if err := Create(home, id, pass, DefaultKDF, testRand(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(home, pass); err != nil {
		t.Fatal(err)
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestRotateKEM: the keystore gets a new KEM key and keeps the old one, in
// a version-2 file; the member ID, passphrase and cost stay.
func TestRotateKEM(t *testing.T) {
	home := t.TempDir()
	id := newID(t, "Alice", 1)
	create(t, home, id)
	if _, err := RotateKEM(home, []byte("wrong"), testRand(9)); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("RotateKEM with a wrong passphrase: %v", err)
	}
	next, err := RotateKEM(home, pass, testRand(9))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(home, pass)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != id.ID() || got.Public() != next.Public() || got.Public().KEM.Equal(id.Public().KEM) {
		t.Fatalf("after rotation the keystore holds %+v", got.Public())
	}
	r := got.RetiredKEMKeys()
	if len(r) != 1 || !bytes.Equal(r[0].Bytes(), id.KEMKey().Bytes()) {
		t.Fatalf("retired keys: %d", len(r))
	}
	if pub, _ := ReadPublic(home); pub != next.Public() {
		t.Error("the clear public part is not the new key's")
	}
	var f struct {
		Version int `json:"version"`
		KDF     struct {
			MemoryKiB uint32 `json:"memory_kib"`
		} `json:"kdf"`
	}
	data, _ := os.ReadFile(Path(home))
	if err := json.Unmarshal(data, &f); err != nil || f.Version != 2 || f.KDF.MemoryKiB != InsecureTestKDF.MemoryKiB {
		t.Fatalf("rotated file: version %d, memory %d KiB (%v)", f.Version, f.KDF.MemoryKiB, err)
	}
	// A second rotation keeps both, oldest first; a passphrase change
	// keeps them too.
	if _, err := RotateKEM(home, pass, testRand(10)); err != nil {
		t.Fatal(err)
	}
	if err := ChangePassphrase(home, pass, []byte("other"), InsecureTestKDF, testRand(11)); err != nil {
		t.Fatal(err)
	}
	got, err = Open(home, []byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	if r := got.RetiredKEMKeys(); len(r) != 2 || !bytes.Equal(r[0].Bytes(), id.KEMKey().Bytes()) || !bytes.Equal(r[1].Bytes(), next.KEMKey().Bytes()) {
		t.Fatalf("after a second rotation and a passphrase change: %d retired keys", len(r))
	}
	assertNoTemp(t, home)
}

// TestGoldenV2 checks that a version-2 keystore (one retired KEM key)
// written by this code stays readable by every later version.
func TestGoldenV2(t *testing.T) {
	const golden = "testdata/v2.json"
	id := newID(t, "Golden Alice", 42)
	next, err := id.RotateKEM(testRand(44))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		home := t.TempDir()
		if err := Create(home, next, []byte("golden passphrase"), InsecureTestKDF, testRand(43)); err != nil {
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
	got, err := Open(home, []byte("golden passphrase"))
	if err != nil {
		t.Fatalf("Open golden keystore: %v", err)
	}
	if got.Public() != next.Public() || len(got.RetiredKEMKeys()) != 1 || !bytes.Equal(got.RetiredKEMKeys()[0].Bytes(), id.KEMKey().Bytes()) {
		t.Errorf("golden keystore holds %v with %d retired keys", got.ID(), len(got.RetiredKEMKeys()))
	}
	again := t.TempDir()
	if err := Create(again, next, []byte("golden passphrase"), InsecureTestKDF, testRand(43)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(Path(again)); !bytes.Equal(b, data) {
		t.Errorf("the encoding changed; if intended, bump the version or run go test -update")
	}
}
