package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands for attachments (testdata/script/attach.txtar).

// randFile NAME SIZE SEED writes SIZE pseudo-random bytes (ChaCha8 from
// SEED) to NAME: a file no compressor or chunker can make small.
func randFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: randfile NAME SIZE SEED")
	}
	size, err1 := strconv.Atoi(args[1])
	seed, err2 := strconv.ParseUint(args[2], 10, 64)
	if err1 != nil || err2 != nil {
		ts.Fatalf("randfile: bad size or seed")
	}
	var s [32]byte
	s[0] = byte(seed)
	b := make([]byte, size)
	rand.NewChaCha8(s).Read(b)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o600))
}

// editFile IN OUT OFFSET TEXT writes IN with TEXT inserted at OFFSET to
// OUT: an edit in the middle of a file.
func editFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: editfile IN OUT OFFSET TEXT")
	}
	in, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	off, err := strconv.Atoi(args[2])
	ts.Check(err)
	out := append(bytes.Clone(in[:off]), args[3]...)
	out = append(out, in[off:]...)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), out, 0o600))
}

// noPlain DIR FILE fails if any file under DIR holds FILE's base name, or
// any of 16-byte samples of FILE's content taken every 1 KiB (20,480
// samples for 20 MiB: a chunk of FILE stored in the clear, however a
// database splits it in pages, contains hundreds of them). Negated, it
// fails unless it finds one (the script shows the scan can fail).
func noPlain(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: noplain DIR FILE")
	}
	content, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	const sample, every = 16, 1024
	samples := map[string]int{}
	// A bitset of the samples' first three bytes: most positions are
	// passed over without a map lookup (a 0.1 % false-positive rate),
	// which keeps the scan of a relay's 20-odd MiB to a second under -race.
	first := make([]uint64, 1<<24/64)
	for off := 0; off+sample <= len(content); off += every {
		samples[string(content[off:off+sample])] = off
		k := int(content[off])<<16 | int(content[off+1])<<8 | int(content[off+2])
		first[k/64] |= 1 << (k % 64)
	}
	name := []byte(filepath.Base(args[1]))
	scanned := 0
	var found []string
	err = filepath.WalkDir(ts.MkAbs(args[0]), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned += len(b)
		if bytes.Contains(b, name) {
			found = append(found, fmt.Sprintf("%s holds the file name %q", path, name))
		}
		for i := 0; i+sample <= len(b); i++ {
			k := int(b[i])<<16 | int(b[i+1])<<8 | int(b[i+2])
			if first[k/64]&(1<<(k%64)) == 0 {
				continue
			}
			if off, ok := samples[string(b[i:i+sample])]; ok {
				found = append(found, fmt.Sprintf("%s holds the file's plaintext (its bytes at offset %d, at %d)", path, off, i))
				break
			}
		}
		return nil
	})
	ts.Check(err)
	switch {
	case neg && len(found) == 0:
		ts.Fatalf("no name and no plaintext found under %s, where the script put them", args[0])
	case neg:
		ts.Logf("found, as expected: %s", found[0])
		return
	case len(found) > 0:
		ts.Fatalf("%s", found[0])
	}
	ts.Logf("scanned %d bytes under %s: no name, none of %d plaintext samples", scanned, args[0], len(samples))
}
