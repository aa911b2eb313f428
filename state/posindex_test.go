package state

import (
	"testing"

	"github.com/pursuance/pursuance/event"
)

// TestPosIndexCollisions checks the position index with IDs that share
// their first 8 bytes (its key): each is found at its own position, an ID
// not in the log but sharing them is not found, and a clone added to
// leaves the original as it was.
func TestPosIndexCollisions(t *testing.T) {
	b := newBuilder(event.ID{}, nil)
	ids := make([]event.ID, 4)
	for i := range ids {
		ids[i][0], ids[i][31] = 7, byte(i+1) // same first 8 bytes
	}
	ids[3][0] = 8 // another key
	for i, id := range ids[:3] {
		b.nodes = append(b.nodes, &node{e: head{id: id}, nodeRare: noRare})
		b.setPos(id, int32(i))
	}
	for i, id := range ids[:3] {
		if p, ok := b.posOf(id); !ok || p != int32(i) {
			t.Errorf("ID %d: at %d, %v; want %d", i, p, ok, i)
		}
	}
	absent := ids[0]
	absent[31] = 99
	if p, ok := b.posOf(absent); ok {
		t.Errorf("an ID not in the log found at %d", p)
	}
	if _, ok := b.posOf(ids[3]); ok {
		t.Error("an ID not in the log found")
	}
	nb := *b
	nb.pos = b.pos.clone()
	nb.nodes = append(nb.nodes[:len(nb.nodes):len(nb.nodes)], &node{e: head{id: ids[3]}, nodeRare: noRare})
	extra := ids[0]
	extra[31] = 50
	nb.nodes = append(nb.nodes, &node{e: head{id: extra}, nodeRare: noRare})
	nb.setPos(ids[3], 3)
	nb.setPos(extra, 4)
	if p, ok := nb.posOf(extra); !ok || p != 4 {
		t.Errorf("the clone: at %d, %v; want 4", p, ok)
	}
	if _, ok := b.posOf(extra); ok {
		t.Error("adding to the clone changed the original")
	}
	if len(b.pos.over) != 2 || len(nb.pos.over) != 3 {
		t.Errorf("%d and %d IDs kept whole; want 2 and 3", len(b.pos.over), len(nb.pos.over))
	}
}
