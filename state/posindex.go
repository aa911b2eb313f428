package state

import (
	"encoding/binary"
	"maps"

	"github.com/pursuance/pursuance/event"
)

// posIndex maps the IDs of a builder's events to their positions in its
// node list. It is keyed by the first 8 bytes of an ID (a map of 12-byte
// entries instead of 36-byte ones: about half the memory at a million
// events), and checks the node found holds the whole ID. An ID whose
// first 8 bytes another event's has already (a collision, which anyone
// can make by signing events until one happens) is kept, whole, in over.
// short is layered: an extension copies what changed, not the index.
type posIndex struct {
	short layered[uint64, int32]
	over  map[event.ID]int32
}

func newPosIndex() posIndex { return posIndex{short: newLayered[uint64, int32]()} }

func shortID(id event.ID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// clone returns a copy of x that can be added to without changing x.
func (x posIndex) clone() posIndex {
	return posIndex{short: x.short.fork(), over: maps.Clone(x.over)}
}

// posOf returns the position of event id, ok false if it is not in the log.
func (b *builder) posOf(id event.ID) (p int32, ok bool) {
	if p, ok := b.pos.short.get(shortID(id)); ok && b.nodes[p].e.id == id {
		return p, true
	}
	p, ok = b.pos.over[id]
	return p, ok
}

// at returns the position of event id, which must be in the log (0 if it
// is not, as a map gives).
func (b *builder) at(id event.ID) int32 {
	p, _ := b.posOf(id)
	return p
}

// setPos records that event id, not in the log yet, is at position p:
// b.nodes[p] must hold it.
func (b *builder) setPos(id event.ID, p int32) {
	k := shortID(id)
	if _, taken := b.pos.short.get(k); !taken {
		b.pos.short.set(k, p)
		return
	}
	if b.pos.over == nil {
		b.pos.over = make(map[event.ID]int32)
	}
	b.pos.over[id] = p
}

// unsetPos forgets event id's position, which old (whose nodes b's
// positions were taken from, b.pos a clone of old's) gives.
func (b *builder) unsetPos(id event.ID, old *builder) {
	if p, ok := old.pos.short.get(shortID(id)); ok && old.nodes[p].e.id == id {
		b.pos.short.del(shortID(id))
		return
	}
	delete(b.pos.over, id)
}
