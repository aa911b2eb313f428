package state

import (
	"iter"
	"maps"
)

// layered is a map that an extension of a state copies in time and memory
// of what changed since it was last flattened, not of its size: a base
// shared by the states it was copied from and never written, under the
// entries set and the keys deleted since. The position index and the task
// tables of a million-event state are maps of a million and a quarter of a
// million entries: cloning them made every Extend allocate ~90 MB and
// spend most of its time copying (docs/fold.md, "Extending without
// copying the tables").
//
// A layered is written only by the builder that made it (fork gives an
// extension its own); readers of a finished state only read it.
type layered[K comparable, V any] struct {
	base map[K]V        // shared, never written
	top  map[K]V        // set since base
	gone map[K]struct{} // deleted since base: keys of base only
	n    int            // entries
}

// layeredFlatAt is how large a layered's changes above its base may grow
// before fork merges them into a new base: a fork copies them, so they
// stay small; a merge copies everything, so it is rare (every ~sqrt(n)
// changes, at least layeredFlatMin).
func layeredFlatAt(n int) int {
	at := layeredFlatMin
	for at*at < n*4 {
		at *= 2
	}
	return at
}

// layeredFlatMin is the least layeredFlatAt gives.
const layeredFlatMin = 256

func newLayered[K comparable, V any]() layered[K, V] {
	return layered[K, V]{top: map[K]V{}}
}

// get returns the value for k.
func (m *layered[K, V]) get(k K) (V, bool) {
	if v, ok := m.top[k]; ok {
		return v, true
	}
	if _, deleted := m.gone[k]; deleted {
		var zero V
		return zero, false
	}
	v, ok := m.base[k]
	return v, ok
}

// at returns the value for k, the zero value if there is none.
func (m *layered[K, V]) at(k K) V {
	v, _ := m.get(k)
	return v
}

// set sets k's value.
func (m *layered[K, V]) set(k K, v V) {
	if _, ok := m.get(k); !ok {
		m.n++
	}
	m.top[k] = v
	delete(m.gone, k)
}

// del deletes k.
func (m *layered[K, V]) del(k K) {
	if _, ok := m.get(k); !ok {
		return
	}
	m.n--
	delete(m.top, k)
	if _, inBase := m.base[k]; inBase {
		if m.gone == nil {
			m.gone = map[K]struct{}{}
		}
		m.gone[k] = struct{}{}
	}
}

// len returns the number of entries.
func (m *layered[K, V]) len() int { return m.n }

// all yields every entry, in no order.
func (m *layered[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for k, v := range m.top {
			if !yield(k, v) {
				return
			}
		}
		for k, v := range m.base {
			if _, over := m.top[k]; over {
				continue
			}
			if _, deleted := m.gone[k]; deleted {
				continue
			}
			if !yield(k, v) {
				return
			}
		}
	}
}

// fork returns a copy of m that can be written without changing m: its
// base shared, its changes copied, or, once those have grown past
// layeredFlatAt, merged into a base of its own. m must not be written
// after (a finished state's tables are not).
func (m *layered[K, V]) fork() layered[K, V] {
	changes := len(m.top) + len(m.gone)
	switch {
	case changes <= layeredFlatAt(m.n):
		return layered[K, V]{base: m.base, top: maps.Clone(m.top), gone: maps.Clone(m.gone), n: m.n}
	case len(m.base) == 0:
		// All of it is in top, which m no longer writes: the fork's base.
		return layered[K, V]{base: m.top, top: map[K]V{}, n: m.n}
	}
	base := make(map[K]V, m.n)
	for k, v := range m.all() {
		base[k] = v
	}
	return layered[K, V]{base: base, top: map[K]V{}, n: m.n}
}

// values yields every value, in no order.
func (m *layered[K, V]) values() iter.Seq[V] {
	return func(yield func(V) bool) {
		for _, v := range m.all() {
			if !yield(v) {
				return
			}
		}
	}
}
