package profile

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics, and whatever it accepts signs again to
// the same bytes (one wire form per record). The vectors seed the corpus.
func FuzzParse(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "profile", "vectors.json"))
	if err != nil {
		f.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		f.Fatal(err)
	}
	for _, v := range vs {
		if w, err := hex.DecodeString(v.Record); err == nil && len(w) > 0 {
			f.Add(w)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatal("a parsed record does not keep its bytes")
		}
		if _, err := Parse(r.Bytes()); err != nil {
			t.Fatalf("a parsed record does not parse again: %v", err)
		}
	})
}
