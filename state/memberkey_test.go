package state

import (
	"strings"
	"testing"
)

// TestMemberKeyOpens: after bob publishes a new KEM key, the seeds sealed
// to him before open with his retired key and the later ones with the new
// key; a reader holding only his old key (a thief of an old keystore)
// opens the old generations and none of the new.
func TestMemberKeyOpens(t *testing.T) {
	w := newWorld(t, 7)
	for _, line := range []string{
		"alice: found desk",
		"i = alice: invite researcher",
		"bob: join i",
		"sync",
		"g1 = alice: rotate group",
		"r1 = alice: rotate researcher",
		"sync",
	} {
		runLine(w, line)
	}
	old := w.actor("bob").id
	for _, line := range []string{
		"k = bob: rekem",
		"sync",
		"r2 = alice: rotate researcher",
		"g2 = alice: rotate group",
		"sync",
	} {
		runLine(w, line)
	}
	bob := w.actor("bob")
	s := buildFrom(t, w.pursue, w.all)
	if m, _ := s.Member(bob.id.ID()); m == nil || !m.KEM.Equal(bob.id.KEMKey().Public()) || m.KEMSince != w.id("k") {
		t.Fatalf("bob's KEM key in the state is not his new one: %+v", m)
	}
	held := func(sec *Secrets) map[string]bool {
		x := NewBuilder(w.pursue, nil)
		for _, e := range logOrder(mapValues(w.all)) {
			if err := x.Add(e); err != nil {
				t.Fatal(err)
			}
		}
		x.SetSecrets(sec)
		st, err := x.Finish()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, l := range []string{"g1", "r1", "r2", "g2"} {
			h, ok := st.Held()[w.id(l)]
			out[l] = ok && h.Via == "sealed"
		}
		return out
	}
	got := held(&Secrets{Member: bob.id.ID(), KEM: bob.id.KEMKey(), Retired: bob.id.RetiredKEMKeys()})
	for _, l := range []string{"g1", "r1", "r2", "g2"} {
		if !got[l] {
			t.Errorf("bob, with his new key and his retired one, does not open %s", l)
		}
	}
	thief := held(&Secrets{Member: bob.id.ID(), KEM: old.KEMKey()})
	if !thief["g1"] || !thief["r1"] || thief["r2"] || thief["g2"] {
		t.Errorf("a thief of bob's old key opens %v; want g1 and r1 only", thief)
	}
	if retired := bob.id.RetiredKEMKeys(); len(retired) != 1 || !retired[0].Public().Equal(old.KEMKey().Public()) {
		t.Fatal("the rotated identity does not keep the old key")
	}
}

// runLine runs one scenario line in w.
func runLine(w *world, line string) {
	w.t.Helper()
	f := tokens(line)
	if f[0] == "sync" {
		w.sync(f[1:])
		return
	}
	label := ""
	if len(f) > 2 && f[1] == "=" {
		label, f = f[0], f[2:]
	}
	name, _ := strings.CutSuffix(f[0], ":")
	name, unchecked := strings.CutSuffix(name, "!")
	w.do(label, name, unchecked, f[1:])
}

// TestOrphansChained: of two concurrent generation 2s, the one the
// current does not lead to is an orphan; a rotation that chains it beside
// the current (really, with keys.ChainSibling) makes it reachable, and a
// member given only the new generation opens both.
func TestOrphansChained(t *testing.T) {
	w := newWorld(t, 11)
	for _, line := range []string{
		"alice: found desk",
		"i = alice: invite editor",
		"bob: join i",
		"j = alice: invite researcher",
		"sync",
		"g1 = alice: rotate group",
		"sync",
		"bob: invite researcher",
		"ga = alice: rotate group chain",
		"gb = bob: rotate group chain",
		"sync",
	} {
		runLine(w, line)
	}
	s := buildFrom(t, w.pursue, w.all)
	cur, _ := s.CurrentKey("")
	orphan := w.id("ga")
	if cur.Update == orphan {
		orphan = w.id("gb")
	}
	if o := s.Orphans(""); len(o) != 1 || o[0].Update != orphan {
		t.Fatalf("orphans %v, want the other generation 2", o)
	}
	runLine(w, "g3 = alice: rotate group chain sibling="+map[bool]string{true: "ga", false: "gb"}[orphan == w.id("ga")])
	// carol joins with an invite sealing nothing: she is given generation 3
	// alone, sealed to her by a rotation after her join.
	for _, line := range []string{"sync", "carol: join j", "sync", "g4 = alice: rotate group chain", "sync"} {
		runLine(w, line)
	}
	s = buildFrom(t, w.pursue, w.all)
	if o := s.Orphans(""); len(o) != 0 {
		t.Fatalf("orphans after the sibling chain: %v", o)
	}
	carol := w.actor("carol")
	held := w.buildFor(carol).Held()
	for _, l := range []string{"g4", "g3", "ga", "gb", "g1"} {
		if _, ok := held[w.id(l)]; !ok {
			t.Errorf("carol, given generation 4, does not reach %s", l)
		}
	}
}
