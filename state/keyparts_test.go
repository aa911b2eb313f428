package state

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// TestKeyUpdateParts: a generation for more members than one event holds
// comes in parts; it exists once the last part is accepted; the parts
// must come from one author, in order, without repeating a member, and
// together reach exactly the entitled members.
func TestKeyUpdateParts(t *testing.T) {
	w := newWorld(t, 9)
	w.do("", "alice", false, []string{"found", "desk"})
	w.do("i", "alice", false, []string{"invite", "researcher", "uses=0"})
	n := MaxSealedSeeds + 44 // two parts of researchers (alice is entitled too)
	for i := range n {
		name := fmt.Sprintf("m%03d", i)
		w.do("", name, true, []string{"join", "i"}) // unchecked: quicker, and valid anyway
		w.sync([]string{"alice", name})             // alice's heads stay few
	}
	w.sync(nil)
	alice := w.actor("alice")
	s := w.buildFor(alice)
	k := &keys.Key{Scope: keys.Scope{Pursuance: w.pursue, Role: "researcher"}, Gen: 1}
	io.ReadFull(seededReader{w.rng}, k.Seed[:])
	var boxes []SealedSeed
	for _, m := range s.Entitled("researcher") {
		box, err := keys.SealSeed(k, m.ID, m.KEM)
		if err != nil {
			t.Fatal(err)
		}
		boxes = append(boxes, SealedSeed{Member: m.ID, Box: box})
	}
	if len(boxes) != n+1 {
		t.Fatalf("%d entitled, want %d", len(boxes), n+1)
	}
	part := func(i int, from, to int) *KeyUpdate {
		ku := &KeyUpdate{Role: "researcher", Gen: 1, Part: uint64(i), Parts: 2, Boxes: boxes[from:to]}
		if i > 0 {
			ku.First = w.id("p0")
		}
		return ku
	}
	mustPublish := func(label string, a *actor, op Op) {
		t.Helper()
		if err := w.publish(label, a, op, false); err != nil {
			t.Fatalf("%s: %v", label, err)
		}
	}
	refused := func(a *actor, op Op, want string) {
		t.Helper()
		err := w.publish("", a, op, false)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	mustPublish("p0", alice, part(0, 0, MaxSealedSeeds))
	if _, ok := w.buildFor(alice).CurrentKey("researcher"); ok {
		t.Fatal("the generation exists before its last part")
	}
	// Another author may not add a part; a part may not repeat members or
	// leave one out.
	w.sync(nil)
	refused(w.actor("m000"), part(1, MaxSealedSeeds, n+1), "another member's key update")
	refused(alice, part(1, MaxSealedSeeds-1, n+1), "repeats or precedes")
	refused(alice, part(1, MaxSealedSeeds, n), "leaves out")
	mustPublish("p1", alice, part(1, MaxSealedSeeds, n+1))
	s = w.buildFor(alice)
	cur, ok := s.CurrentKey("researcher")
	if !ok || cur.Update != w.id("p0") || len(cur.Members) != n+1 {
		t.Fatalf("current researcher key: %+v %v", cur.Update.Short(), ok)
	}
	// A member sealed to in the second part holds the generation, named by
	// the first part.
	w.sync(nil)
	last := w.actor(fmt.Sprintf("m%03d", n-1))
	held := w.buildFor(last).Held()
	if h, ok := held[w.id("p0")]; !ok || !h.Key.Seed.Equal(k.Seed) {
		t.Fatalf("the last member does not hold the generation: %v", ok)
	}
	if st, _ := s.KeyStatus("researcher"); len(st.Stale)+len(st.Owed) != 0 {
		t.Errorf("status: %d stale, %d owed", len(st.Stale), len(st.Owed))
	}
}

// BenchmarkRotationEvents publishes a new generation of a role's key for
// 10, 100 and 1,000 members as its author does: every seed sealed (on
// every core), the key-update encoded, in parts beyond MaxSealedSeeds,
// and signed. Beside it, in the same run, the same events with the seeds
// left unsealed (zero boxes of the same size): the cost that is sealing.
// It reports the events per rotation and the bytes of the largest.
func BenchmarkRotationEvents(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		ms := make([]*Member, n)
		rnd := seededReader{newWorld(b, uint64(n)).rng}
		for i := range ms {
			id, err := identity.New(fmt.Sprintf("m%d", i), rnd)
			if err != nil {
				b.Fatal(err)
			}
			ms[i] = &Member{ID: id.ID(), KEM: id.KEMKey().Public()}
		}
		slices.SortFunc(ms, func(x, y *Member) int { return x.ID.Compare(y.ID) })
		author, _ := identity.New("author", rnd)
		for _, sealed := range []bool{true, false} {
			name := fmt.Sprintf("members=%d/sealed", n)
			if !sealed {
				name = fmt.Sprintf("members=%d/baseline-unsealed", n)
			}
			b.Run(name, func(b *testing.B) {
				k := &keys.Key{Scope: keys.Scope{Pursuance: event.ID{1}, Role: "editor"}, Gen: 2}
				events, largest := 0, 0
				for b.Loop() {
					boxes := make([]SealedSeed, n)
					var wg sync.WaitGroup
					workers := runtime.GOMAXPROCS(0)
					for w := range workers {
						wg.Go(func() {
							for i := w; i < n; i += workers {
								box := make([]byte, SealedSeedSize)
								if sealed {
									var err error
									if box, err = keys.SealSeed(k, ms[i].ID, ms[i].KEM); err != nil {
										panic(err)
									}
								}
								boxes[i] = SealedSeed{Member: ms[i].ID, Box: box}
							}
						})
					}
					wg.Wait()
					parts := (n + MaxSealedSeeds - 1) / MaxSealedSeeds
					ch := event.Chain{Key: author.SigningKey(), Pursuance: event.ID{1}}
					parent := []event.Ref{{ID: event.ID{1}, Pursuance: event.ID{1}, Author: author.ID(), Seq: 1, Lamport: 1}}
					events, largest = 0, 0
					for p := range parts {
						ku := &KeyUpdate{Role: "editor", Gen: 2, Boxes: boxes[p*MaxSealedSeeds : min(n, (p+1)*MaxSealedSeeds)]}
						if parts > 1 {
							ku.Part, ku.Parts = uint64(p), uint64(parts)
							if p > 0 {
								ku.First = event.ID{2}
							}
						}
						body, err := EncodeOp(ku)
						if err != nil {
							b.Fatal(err)
						}
						e, err := ch.Next(event.KindKeyUpdate, parent, 1, body)
						if err != nil {
							b.Fatal(err)
						}
						r := e.Ref()
						ch.Last = &r
						events++
						largest = max(largest, e.EncodedSize())
					}
				}
				b.ReportMetric(float64(events), "events/rotation")
				b.ReportMetric(float64(largest), "B/largest-event")
			})
		}
	}
}
