package attach

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"testing"

	"golang.org/x/crypto/chacha20"
)

var update = flag.Bool("update", false, "rewrite testdata/attach/vectors.json")

// stream returns n deterministic pseudo-random bytes from seed.
func stream(seed byte, n int) []byte {
	key := bytes.Repeat([]byte{seed}, chacha20.KeySize)
	c, _ := chacha20.NewUnauthenticatedCipher(key, make([]byte, chacha20.NonceSize))
	b := make([]byte, n)
	c.XORKeyStream(b, b)
	return b
}

func secret(b byte) [32]byte {
	var s [32]byte
	for i := range s {
		s[i] = b + byte(i)
	}
	return s
}

type cut struct {
	refs  []ChunkRef
	blobs [][]byte
}

func cutAll(t testing.TB, c *Cutter, data []byte) cut {
	t.Helper()
	var out cut
	err := c.Split(bytes.NewReader(data), func(p []byte) error {
		ref, blob := c.Seal(p)
		out.refs = append(out.refs, ref)
		out.blobs = append(out.blobs, blob)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRoundTripAndBounds cuts a file, checks every chunk is within the
// bounds and every blob in a bucket, and that opening them gives the file.
func TestRoundTripAndBounds(t *testing.T) {
	c, err := NewCutter(secret(1))
	if err != nil {
		t.Fatal(err)
	}
	data := stream(7, 12<<20+12345)
	got := cutAll(t, c, data)
	if len(got.refs) < 4 {
		t.Fatalf("%d chunks for 12 MiB: not content-defined at ~1 MiB", len(got.refs))
	}
	var back []byte
	for i, ref := range got.refs {
		if i < len(got.refs)-1 && (ref.Size < MinChunk || ref.Size > MaxChunk) {
			t.Errorf("chunk %d of %d bytes", i, ref.Size)
		}
		if !IsBlobSize(len(got.blobs[i])) {
			t.Errorf("blob %d of %d bytes is not a bucket", i, len(got.blobs[i]))
		}
		if bytes.Contains(got.blobs[i], data[len(back):len(back)+64]) {
			t.Errorf("blob %d holds its plaintext", i)
		}
		pt, err := Open(ref, got.blobs[i])
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, pt...)
	}
	if !bytes.Equal(back, data) {
		t.Fatal("the chunks do not give the file back")
	}
}

// TestEditSharesChunks: an edit in the middle of a file changes only the
// chunks around it; another secret shares nothing.
func TestEditSharesChunks(t *testing.T) {
	c, _ := NewCutter(secret(1))
	data := stream(9, 20<<20)
	a := cutAll(t, c, data)
	edited := bytes.Clone(data[:10<<20])
	edited = append(edited, []byte("an inserted paragraph")...)
	edited = append(edited, data[10<<20:]...)
	b := cutAll(t, c, edited)
	have := map[BlobID]bool{}
	for _, r := range a.refs {
		have[r.Blob] = true
	}
	changed := 0
	for _, r := range b.refs {
		if !have[r.Blob] {
			changed++
		}
	}
	if changed == 0 || changed > 3 {
		t.Errorf("%d of %d chunks changed after one insertion; want 1 to 3", changed, len(b.refs))
	}
	o, _ := NewCutter(secret(2))
	for _, r := range cutAll(t, o, data).refs {
		if have[r.Blob] {
			t.Error("another secret gives a blob of the first")
		}
	}
}

// TestTamperedBlob: a flipped bit, another blob, a truncated blob are
// refused with ErrTampered.
func TestTamperedBlob(t *testing.T) {
	c, _ := NewCutter(secret(1))
	ref, blob := c.Seal([]byte("a short chunk"))
	bad := bytes.Clone(blob)
	bad[10] ^= 1
	_, other := c.Seal([]byte("another chunk"))
	for name, b := range map[string][]byte{"flipped": bad, "other": other, "short": blob[:len(blob)-1]} {
		if _, err := Open(ref, b); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: %v, want ErrTampered", name, err)
		}
	}
	// A relay that recomputes the hash of a tampered blob still fails the
	// AEAD: the key is in the sealed manifest.
	r2 := ref
	r2.Blob = IDOf(bad)
	if _, err := Open(r2, bad); !errors.Is(err, ErrTampered) {
		t.Errorf("re-hashed tampered blob: %v", err)
	}
}

func TestBuckets(t *testing.T) {
	if BlobSize(0) != MinBlob || BlobSize(MaxChunk) != MaxBlob {
		t.Fatalf("BlobSize(0) %d, BlobSize(MaxChunk) %d (MaxBlob %d)", BlobSize(0), BlobSize(MaxChunk), MaxBlob)
	}
	prev := 0
	for n := 0; n <= MaxChunk; n += 997 {
		s := BlobSize(n)
		if !IsBlobSize(s) || s < n+1+TagSize || s < prev || float64(s) > float64(max(n+1+TagSize, MinBlob))*1.125 {
			t.Fatalf("BlobSize(%d) = %d", n, s)
		}
		prev = s
	}
	for _, n := range []int{MinBlob - 1, MinBlob + 1, MaxBlob + 1, 1<<20 + 1} {
		if IsBlobSize(n) {
			t.Errorf("IsBlobSize(%d)", n)
		}
	}
}

type vectorChunk struct {
	Size uint32 `json:"size"`
	Key  string `json:"key"`
	Blob string `json:"blob"`
}

type vectors struct {
	Comment     string        `json:"comment"`
	Secret      string        `json:"secret"`
	InputSeed   byte          `json:"input_seed"`
	InputSize   int           `json:"input_size"`
	InputSHA256 string        `json:"input_sha256"`
	Chunks      []vectorChunk `json:"chunks"`
	SmallChunk  string        `json:"small_chunk"`
	SmallBlob   string        `json:"small_blob"`
}

// TestVectors checks the chunk boundaries, chunk keys and blob IDs of a
// fixed input against testdata/attach/vectors.json (-update rewrites it).
func TestVectors(t *testing.T) {
	const path = "../testdata/attach/vectors.json"
	s := secret(0x40)
	c, _ := NewCutter(s)
	in := stream(3, 5<<20+777)
	got := cutAll(t, c, in)
	sum := sha256.Sum256(in)
	v := vectors{
		Comment:     "input: ChaCha20 keystream under the key of 32 bytes input_seed, nonce zero; see docs/attachments.md",
		Secret:      hex.EncodeToString(s[:]),
		InputSeed:   3,
		InputSize:   len(in),
		InputSHA256: hex.EncodeToString(sum[:]),
		SmallChunk:  hex.EncodeToString([]byte("hello, attachments")),
	}
	for _, r := range got.refs {
		v.Chunks = append(v.Chunks, vectorChunk{r.Size, hex.EncodeToString(r.Key[:]), r.Blob.String()})
	}
	_, small := c.Seal([]byte("hello, attachments"))
	v.SmallBlob = hex.EncodeToString(small)
	js, _ := json.MarshalIndent(v, "", "  ")
	js = append(js, '\n')
	if *update {
		if err := os.MkdirAll("../testdata/attach", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, js, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, js) {
		t.Fatalf("vectors differ from %s (run with -update only for an intended format change)", path)
	}
}
