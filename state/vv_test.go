package state

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPackedVersionVectors checks that a node's version vector, packed two
// seqs a word, answers seen as the full vector does, for every author
// index and past its end, and that a seq past 32 bits keeps the vector
// wide.
func TestPackedVersionVectors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for k := range 500 {
		full := make([]uint64, r.IntN(40))
		for i := range full {
			switch r.IntN(4) {
			case 0:
			case 1:
				full[i] = uint64(r.Uint32())
			default:
				full[i] = uint64(r.IntN(1000))
			}
		}
		big := k%5 == 0 && len(full) > 0
		if big {
			full[r.IntN(len(full))] = math.MaxUint32 + 1 + uint64(r.IntN(1000))
		}
		n := &node{nodeRare: noRare}
		n.vv, n.vvWide = packVV(full)
		if n.vvWide != big {
			t.Fatalf("vector %v: wide %v", full, n.vvWide)
		}
		if !big && len(n.vv) != (len(full)+1)/2 {
			t.Fatalf("%d seqs packed into %d words", len(full), len(n.vv))
		}
		for i := range len(full) + 3 {
			want := uint64(0)
			if i < len(full) {
				want = full[i]
			}
			if got := n.seen(uint32(i)); got != want {
				t.Fatalf("vector %v: seen(%d) = %d, want %d", full, i, got, want)
			}
		}
	}
}
