package state

import (
	"fmt"
	"slices"

	"github.com/pursuance/pursuance/event"
)

// An invite's expiry is compared with the join's claimed time, which the
// joiner chooses. What bounds it is what the members observed: their own
// events' claimed times. A join is too late when a member (in the join's
// view) signed an event dated after the expiry that
//
//   - the join saw (it is in the join's causal past): the join is rejected
//     at its parents, "had expired"; or
//   - did not see the join although it saw everything the join was signed
//     on (the join's parents are in its causal past): the join had not
//     reached that member by the expiry, and it is invalidated, as a join
//     concurrent with a revocation is (docs/rules.md §5.4).
//
// So a holder of the code who signs a join on old parents with an old
// time, after the expiry, is invalidated as soon as any member has written
// after the expiry; a join delivered late (the joiner offline at the last
// moment) is invalidated the same way. Witnesses are judged by header
// alone (author, seq, links, claimed time: not the witness's own verdict,
// nor its body), and their authors' membership in the join's view, so no
// pass has to know later events' verdicts.

// expiryWitness returns a member's event showing that the invite the join
// n uses, with expiry expires, had expired before n reached that member:
// one n saw (saw true), else one that saw all of n's links but not n. It
// returns nil if there is none. Among several, the earliest in log order.
func (b *builder) expiryWitness(a *authState, n *node, expires uint64) (w *node, saw bool) {
	if expires == 0 {
		return nil, false
	}
	links := n.links
	var best, bestSaw int32 = -1, -1
	for m := range a.members {
		if m == *n.member {
			continue
		}
		// Each of the member's chains: its own and its devices'.
		for _, ai := range b.memberChains[m] {
			evs, times := b.byAuthor[ai], b.timeUpTo[ai]
			// Events at or past the author's fork are void: not witnesses. Below
			// it, an author's events are in seq order.
			limit := len(evs)
			if fs, forked := b.forks[b.authors[ai]]; forked {
				limit, _ = slices.BinarySearchFunc(evs, fs, func(p int32, s uint64) int { return cmpU(b.nodes[p].e.Seq, s) })
			}
			// Seen by n: the author's events up to n.seen(ai). The first one
			// dated after the expiry, if among those.
			seenEnd, _ := slices.BinarySearchFunc(evs[:limit], n.seen(ai)+1, func(p int32, s uint64) int { return cmpU(b.nodes[p].e.Seq, s) })
			if i, _ := slices.BinarySearchFunc(times[:seenEnd], expires+1, cmpU); i < seenEnd {
				if p := evs[i]; bestSaw < 0 || p < bestSaw {
					bestSaw = p
				}
				continue
			}
			if bestSaw >= 0 {
				continue
			}
			// Not seen by n, not seeing n, seeing n's links: [lo, hi).
			lo := seenEnd + firstTrue(limit-seenEnd, func(i int) bool {
				w := b.nodes[evs[seenEnd+i]]
				for _, l := range links {
					x := b.nodes[b.at(l)]
					if x.e.Seq > w.seen(x.author) {
						return false
					}
				}
				return true
			})
			hi := seenEnd + firstTrue(limit-seenEnd, func(i int) bool { return n.e.Seq <= b.nodes[evs[seenEnd+i]].seen(n.author) })
			for i := hi - 1; i >= lo; i-- {
				if p := evs[i]; b.nodes[p].e.Time > expires {
					if best < 0 || p < best {
						best = p
					}
					break
				}
			}
		}
	}
	if bestSaw >= 0 {
		return b.nodes[bestSaw], true
	}
	if best >= 0 {
		return b.nodes[best], false
	}
	return nil, false
}

// firstTrue returns the smallest i in [0, n) for which f is true, n if none;
// f must be false then true.
func firstTrue(n int, f func(int) bool) int {
	lo, hi := 0, n
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if !f(h) {
			lo = h + 1
		} else {
			hi = h
		}
	}
	return lo
}

func cmpU(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// expiredReason words an expiry witness for a join's verdict.
func (b *builder) expiredReason(a *authState, invite event.ID, w *node, saw bool) error {
	if saw {
		return fmt.Errorf("invite %s had expired: %s's event %s, which the join saw, is dated after it", invite.Short(), b.name(a, *w.e.Author), w.e.ID().Short())
	}
	return fmt.Errorf("invalidated: invite %s had expired when %s signed %s, which saw what the join was signed on but not the join", invite.Short(), b.name(a, *w.e.Author), w.e.ID().Short())
}
