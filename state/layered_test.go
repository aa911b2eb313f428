package state

import (
	"maps"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// TestPropertyLayered: a layered map behaves as a plain map under sets,
// deletes and forks, whatever the forks' order: each fork answers as a
// copy of its parent written since, and writing a fork changes nothing its
// parent or another fork of it answers. The maps are small (keys below
// 3000) and the forks many, so that forks both share a base and merge
// their changes (layeredFlatAt).
func TestPropertyLayered(t *testing.T) {
	var shared, promoted, merged int
	rapid.Check(t, func(rt *rapid.T) {
		type replica struct {
			m     layered[int, int]
			model map[int]int
		}
		all := []*replica{{m: newLayered[int, int](), model: map[int]int{}}}
		check := func(r *replica) {
			if r.m.len() != len(r.model) {
				rt.Fatalf("len %d, want %d", r.m.len(), len(r.model))
			}
			got := maps.Collect(r.m.all())
			if !maps.Equal(got, r.model) {
				rt.Fatalf("entries %v, want %v", got, r.model)
			}
			for k := range 3000 {
				v, ok := r.m.get(k)
				w, wok := r.model[k]
				if ok != wok || v != w || r.m.at(k) != w {
					rt.Fatalf("get %d: %d %v, want %d %v", k, v, ok, w, wok)
				}
			}
		}
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for range steps {
			// Only the newest replica of a line is written; any may be
			// forked (a state extended twice).
			i := rapid.IntRange(0, len(all)-1).Draw(rt, "replica")
			r := all[i]
			switch rapid.IntRange(0, 2).Draw(rt, "op") {
			case 0: // a fork, written from then on
				f := &replica{m: r.m.fork(), model: maps.Clone(r.model)}
				switch {
				case len(f.m.base) == 0:
				case sameMap(f.m.base, r.m.base):
					shared++
				case sameMap(f.m.base, r.m.top):
					promoted++
				default:
					merged++
				}
				all = append(all, f)
				n := rapid.IntRange(0, 2000).Draw(rt, "writes")
				for range n {
					k := rapid.IntRange(0, 2999).Draw(rt, "key")
					if rapid.IntRange(0, 3).Draw(rt, "delete") == 0 {
						f.m.del(k)
						delete(f.model, k)
					} else {
						v := rapid.Int().Draw(rt, "value")
						f.m.set(k, v)
						f.model[k] = v
					}
				}
				check(f)
			default:
				// Reading changes nothing.
				check(r)
			}
		}
		// Writing the forks changed nothing of the others.
		for _, r := range all {
			check(r)
		}
	})
	if shared == 0 || promoted == 0 || merged == 0 {
		t.Errorf("forks shared their parent's base %d times, took its changes as their base %d times, merged them %d times: each must happen",
			shared, promoted, merged)
	}
}

// sameMap reports whether x and y are the same map (not equal ones).
func sameMap(x, y map[int]int) bool {
	return x != nil && reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer()
}
