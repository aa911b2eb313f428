package state

import (
	"slices"
	"testing"

	"github.com/pursuance/pursuance/event"
)

// TestVisibilityRareShared: nodes whose nodeRare holds a visibility alone
// share the builder's one for it (settleRare), a node written to gets its
// own copy first (w), and other nodeRares are not shared.
func TestVisibilityRareShared(t *testing.T) {
	b := newBuilder(event.ID{1}, nil)
	mk := func(vis ...string) *node {
		n := &node{nodeRare: noRare}
		n.w().vis = vis
		b.settleRare(n)
		return n
	}
	x, y, z := mk("editor"), mk("editor"), mk("editor", "lead")
	if x.nodeRare != y.nodeRare || !x.shared || x.nodeRare == z.nodeRare {
		t.Fatalf("visibilities not shared as they should be: %p %p %p", x.nodeRare, y.nodeRare, z.nodeRare)
	}
	x.w().inert = "written"
	if y.inert != "" || x.inert != "written" || x.nodeRare == y.nodeRare || x.shared || !slices.Equal(x.vis, []string{"editor"}) {
		t.Fatalf("a write to a shared nodeRare: %+v, the other node's %+v", *x.nodeRare, *y.nodeRare)
	}
	b.settleRare(x) // holds more than a visibility: its own
	if x.nodeRare == y.nodeRare {
		t.Fatal("a nodeRare with more than a visibility was shared")
	}
	w := &node{nodeRare: noRare}
	w.copyRare(y)
	if w.nodeRare != y.nodeRare {
		t.Fatal("copyRare copied a shared nodeRare")
	}
}
