package storetest

import (
	"bytes"
	"fmt"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// tb is the part of testing.TB and rapid.TB the helpers use.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// world builds the signed events of one pursuance for a test: a founder
// (author 0) and other authors, each with its own chain.
type world struct {
	t      tb
	pid    event.ID
	chains []*event.Chain
	byID   map[event.ID]*event.Event
	clock  uint64
}

// key returns the deterministic signing key number i of a test.
func key(t tb, i int) *identity.SigningKey {
	t.Helper()
	seed := bytes.Repeat([]byte{0x5e, byte(i)}, identity.SeedSize/2)
	k, err := identity.SigningKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newWorld founds a pursuance with the given number of authors (at least
// one) and returns it with its genesis event. Worlds with different names
// are different pursuances, even with the same authors.
func newWorld(t tb, name string, authors int) (*world, *event.Event) {
	t.Helper()
	w := &world{t: t, byID: make(map[event.ID]*event.Event), clock: 1_790_000_000_000}
	for i := range authors {
		w.chains = append(w.chains, &event.Chain{Key: key(t, i)})
	}
	g, err := w.chains[0].Genesis(w.clock, []byte("genesis of "+name))
	if err != nil {
		t.Fatal(err)
	}
	w.pid = g.ID()
	for _, c := range w.chains[1:] {
		c.Pursuance = w.pid
	}
	w.byID[g.ID()] = g
	return w, g
}

// author returns author a's public key.
func (w *world) author(a int) identity.PublicKey { return w.chains[a].Key.Public() }

// next signs author a's next event with the given parents (at least one).
func (w *world) next(a int, parents ...*event.Event) *event.Event {
	w.t.Helper()
	return w.sign(w.chains[a], parents, fmt.Appendf(nil, "event %d by %d", w.clock, a))
}

// nextBody is next with a chosen body (nil signs an empty one).
func (w *world) nextBody(a int, body []byte, parents ...*event.Event) *event.Event {
	w.t.Helper()
	return w.sign(w.chains[a], parents, body)
}

// fork signs a second event at author a's latest seq, an equivocation,
// without moving the author's chain on.
func (w *world) fork(a int, parents ...*event.Event) *event.Event {
	w.t.Helper()
	c := *w.chains[a]
	if c.Last == nil {
		w.t.Fatalf("author %d has no event to fork", a)
	}
	c.Last = w.prev(c.Last.ID)
	return w.sign(&c, parents, fmt.Appendf(nil, "fork %d by %d", w.clock, a))
}

// prev returns the ref of the event before id in its author's chain, or
// nil if id is the first.
func (w *world) prev(id event.ID) *event.Ref {
	e := w.byID[id]
	if e.Seq == 1 {
		return nil
	}
	r := w.byID[e.Backlink].Ref()
	return &r
}

func (w *world) sign(c *event.Chain, parents []*event.Event, body []byte) *event.Event {
	w.t.Helper()
	refs := make([]event.Ref, len(parents))
	for i, p := range parents {
		refs[i] = p.Ref()
	}
	w.clock++
	e, err := c.Next(event.KindTaskComment, refs, w.clock, body)
	if err != nil {
		w.t.Fatal(err)
	}
	w.byID[e.ID()] = e
	return e
}

// equivocation returns the record of a and b's equivocation.
func equivocation(t tb, a, b *event.Event) event.Equivocation {
	t.Helper()
	q, err := event.CheckEquivocation(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
