package app

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"
)

// TestWithoutEnvsLinear: settling what a read showed of a large push
// drops the envelopes shown, keeps the rest in order, and takes time
// linear in the envelopes: 200k pushed, 200k shown. Searching the shown
// ones for each pushed one (before; and a read settles page after page)
// took ~30 s here for one settle, a set ~0.1 s; the bound (4 s) leaves a
// loaded machine under -race a wide margin over the set.
func TestWithoutEnvsLinear(t *testing.T) {
	env := func(i int) pushedEnv {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		return pushedEnv{hash: sha256.Sum256(b[:]), cursor: uint64(i + 1)}
	}
	small := withoutEnvs([]pushedEnv{env(1), env(2), env(3), env(4)}, []pushedEnv{env(3), env(1), env(9)})
	if len(small) != 2 || small[0] != env(2) || small[1] != env(4) {
		t.Fatalf("without 1 and 3: %v", small)
	}
	const n = 200_000
	pushed := make([]pushedEnv, 0, n+1)
	shown := make([]pushedEnv, 0, n)
	for i := range n {
		pushed = append(pushed, env(i))
		shown = append(shown, env(n-1-i))
	}
	pushed = append(pushed, env(n))
	start := time.Now()
	left := withoutEnvs(pushed, shown)
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("settling %d envelopes took %v", n, took)
	}
	if len(left) != 1 || left[0] != env(n) {
		t.Fatalf("left %d envelopes, want the one not shown", len(left))
	}
}
