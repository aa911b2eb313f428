package state

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// Succession claims Role for its author: every holder of Role is
// inactive (kind 31, docs/succession.md). The author's roles must be
// granted take-over over Role, or a quorum carries the claim (the proposer
// is then the claimant). The claim completes with a Succeed after the
// charter's waiting period, unless a holder signs anything first.
type Succession struct {
	Role string `cbor:"1,keyasint"`
}

// Succeed completes the succession claim Claim (the claim's event, or the
// proposal that carried it): its author, the claimant, takes the role
// (kind 32, docs/succession.md).
type Succeed struct {
	Claim event.ID `cbor:"1,keyasint"`
}

func (Succession) Kind() event.Kind { return event.KindSuccession }
func (Succeed) Kind() event.Kind    { return event.KindSucceed }

// checkSuccessionOp checks the shape of a succession op.
func checkSuccessionOp(op Op) error {
	switch o := op.(type) {
	case *Succession:
		if o.Role == "" {
			return errors.New("a succession names the role claimed")
		}
	case *Succeed:
		if o.Claim.IsZero() {
			return errors.New("a succeed names the claim it completes")
		}
	}
	return nil
}

// takeover is an open succession claim in an authority state.
type takeover struct {
	id       event.ID // the claim: a Succession event, or the proposal that carried one
	role     string
	claimant identity.PublicKey
}

// The time rules (docs/succession.md §3). Every judgement is made at an
// event's parents from the times members claimed on the events there, by
// header alone (author, seq, links, claimed time), never from a reader's
// clock, so every replica reaches the same verdict. Two robust readings
// bound lies:
//
//   - "now" at a past is the k-th latest (k = the charter's witnesses) of
//     the latest times the view's members claimed in it: fewer than k
//     members claiming a far-future time cannot move it;
//   - "when" an event happened is its claimed time, but no later than the
//     k-th earliest time at which other members first signed something
//     that had it in its past: an author dating its own event in the far
//     future is clamped by what k others saw.

// before returns the highest seq of author index i in the past the time
// rules read at n: n's parents, not n itself (n.e zero: a past that is
// not an event's, such as the heads of the log).
func (n *node) before(i uint32) uint64 {
	if !n.e.id.IsZero() && i == n.author {
		return n.e.Seq - 1
	}
	return n.seen(i)
}

// lastIdx returns the index in byAuthor[ai] of ai's latest event in the
// past at n, below ai's fork if it forked; -1 if none.
func (b *builder) lastIdx(ai uint32, n *node) int {
	evs := b.byAuthor[ai]
	limit := len(evs)
	if fs, forked := b.forks[b.authors[ai]]; forked {
		limit, _ = slices.BinarySearchFunc(evs, fs, func(p int32, s uint64) int { return cmpU(b.nodes[p].e.Seq, s) })
	}
	end, _ := slices.BinarySearchFunc(evs[:limit], n.before(ai)+1, func(p int32, s uint64) int { return cmpU(b.nodes[p].e.Seq, s) })
	return end - 1
}

// witnesses returns the charter's witnesses, at least 1.
func witnesses(c *charter.Charter) int { return max(int(c.Continuity.Witnesses), 1) }

// nowAt returns "now" in the past at n: the k-th latest of the latest
// times the members of a (but except) claimed there; 0 if fewer than k
// members signed anything there.
func (b *builder) nowAt(a *authState, n *node, k int, except identity.PublicKey) uint64 {
	times := make([]uint64, 0, len(a.members))
	for m := range a.members {
		if m == except {
			continue
		}
		// The member's latest, over its chains (its devices', docs/devices.md).
		latest, any := uint64(0), false
		for _, ai := range b.memberChains[m] {
			if i := b.lastIdx(ai, n); i >= 0 {
				latest, any = max(latest, b.timeUpTo[ai][i]), true
			}
		}
		if any {
			times = append(times, latest)
		}
	}
	if len(times) < k {
		return 0
	}
	slices.Sort(times)
	return times[len(times)-k]
}

// whenOf returns when x happened, as the past at n tells: t (x's claimed
// time), but no later than the k-th earliest time at which other members
// of a first signed, in that past, an event that had x in its past.
func (b *builder) whenOf(a *authState, x, n *node, k int, t uint64) uint64 {
	var seen []uint64
	for m := range a.members {
		if m == *x.member {
			continue
		}
		// The member's first sighting, over its chains.
		first, any := uint64(0), false
		for _, ai := range b.memberChains[m] {
			end := b.lastIdx(ai, n) + 1
			evs := b.byAuthor[ai]
			if i := firstTrue(end, func(i int) bool { return b.nodes[evs[i]].seen(x.author) >= x.e.Seq }); i < end {
				if t := b.timeUpTo[ai][i]; !any || t < first {
					first, any = t, true
				}
			}
		}
		if any {
			seen = append(seen, first)
		}
	}
	if len(seen) < k {
		return t
	}
	slices.Sort(seen)
	return min(t, seen[k-1])
}

// inactiveAt reports whether member m is inactive in the past at n, and
// since when it has signed nothing: when its latest event there happened
// (whenOf). It is inactive once "now" without m is the charter's
// inactive-after past that. Without continuity rules nobody is.
func (b *builder) inactiveAt(a *authState, m identity.PublicKey, n *node) (since uint64, inactive bool) {
	c := a.charter
	k := witnesses(c)
	any := false
	// The latest over the member's chains (its devices', docs/devices.md).
	for _, ai := range b.memberChains[m] {
		if i := b.lastIdx(ai, n); i >= 0 {
			since, any = max(since, b.whenOf(a, b.nodes[b.byAuthor[ai][i]], n, k, b.timeUpTo[ai][i])), true
		}
	}
	if !any {
		return 0, false
	}
	if !c.Continuity.Enabled() {
		return since, false
	}
	now := b.nowAt(a, n, k, m)
	return since, now != 0 && now >= addSat(since, msOf(c.Continuity.InactiveAfter))
}

// msOf converts a charter period (seconds) to event time (milliseconds),
// saturating.
func msOf(secs uint64) uint64 {
	if secs > math.MaxUint64/1000 {
		return math.MaxUint64
	}
	return secs * 1000
}

func addSat(x, y uint64) uint64 {
	if x > math.MaxUint64-y {
		return math.MaxUint64
	}
	return x + y
}

// holdersOf returns the members of a holding role, sorted by ID so that
// reasons naming one are the same on every replica.
func holdersOf(a *authState, role string) []*Member {
	var out []*Member
	for _, m := range a.members {
		if m.HasRole(role) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(x, y *Member) int { return x.ID.Compare(y.ID) })
	return out
}

// neededAt returns the approvals quorum q needs in the past at n: over
// every holder of q.Of, or with continuity rules over the active ones
// (charter.Quorum.NeededActive).
func (b *builder) neededAt(a *authState, q charter.Quorum, n *node) int {
	if !a.charter.Continuity.Enabled() {
		return q.Needed(a.holders(q.Of))
	}
	active := 0
	for _, m := range holdersOf(a, q.Of) {
		if _, in := b.inactiveAt(a, m.ID, n); !in {
			active++
		}
	}
	return q.NeededActive(active)
}

// proposalExpiry returns when proposal pr expires as the past at n tells
// (0: never), and whether it has: "now" there is the charter's
// proposals-expire past when the proposal was made.
func (b *builder) proposalExpiry(a *authState, pr *proposal, n *node) (at uint64, expired bool) {
	c := a.charter
	if c.Continuity.ProposalsExpire == 0 {
		return 0, false
	}
	p, ok := b.posOf(pr.id)
	if !ok {
		return 0, false
	}
	x := b.nodes[p]
	k := witnesses(c)
	at = addSat(b.whenOf(a, x, n, k, x.e.Time), msOf(c.Continuity.ProposalsExpire))
	now := b.nowAt(a, n, k, identity.PublicKey{})
	return at, now != 0 && now >= at
}

// permittedSuccession checks a claim: the charter has continuity rules,
// the role exists, the author does not hold it and may take it over (the
// caller's quorum gate aside), and every holder is inactive at n's
// parents.
func (b *builder) permittedSuccession(a *authState, n *node, op *Succession, roles []string) error {
	c := a.charter
	switch {
	case !c.Continuity.Enabled():
		return errors.New("the charter has no continuity rules: nobody is ever inactive, so no role is taken over")
	case c.Rank(op.Role) < 0:
		return fmt.Errorf("no role %q in the charter", op.Role)
	case slices.Contains(roles, op.Role):
		return fmt.Errorf("the claimant already holds %q", op.Role)
	}
	if err := c.Allows(roles, charter.TakeOver, []string{op.Role}, nil); err != nil {
		return err
	}
	holders := holdersOf(a, op.Role)
	if len(holders) == 0 {
		return fmt.Errorf("nobody holds %q: a role nobody holds is given, not taken over", op.Role)
	}
	for _, m := range holders {
		if since, in := b.inactiveAt(a, m.ID, n); !in {
			return fmt.Errorf("%s, who holds %q, is active: last signed %s, inactive only %s later", m.Name, op.Role, stamp(since), charter.FormatPeriod(c.Continuity.InactiveAfter))
		}
	}
	return nil
}

// permittedSucceed checks a completion at n's parents: its claim is open
// there and the author's, the waiting period has passed (by "now" there,
// and by the completion's own date), no holder of the role signed
// anything the claim had not seen, every holder is still inactive, and
// no holder signed, concurrently with the completion, an event dated
// before it (docs/succession.md §4).
func (b *builder) permittedSucceed(a *authState, n *node, op *Succeed, author identity.PublicKey, roles []string) error {
	c := a.charter
	t, ok := a.takeovers[op.Claim]
	switch {
	case !ok:
		return fmt.Errorf("no open succession claim %s", op.Claim.Short())
	case t.claimant != author:
		return fmt.Errorf("only %s, who made claim %s, completes it", b.name(a, t.claimant), op.Claim.Short())
	case !c.Continuity.Enabled():
		return errors.New("the charter no longer has continuity rules")
	case c.Rank(t.role) < 0:
		return fmt.Errorf("no role %q in the charter", t.role)
	case slices.Contains(roles, t.role):
		return fmt.Errorf("the claimant already holds %q", t.role)
	}
	cl := b.nodes[b.at(t.id)]
	k := witnesses(c)
	due := b.claimDue(a, cl, n)
	if now := b.nowAt(a, n, k, identity.PublicKey{}); now < due {
		return fmt.Errorf("claim %s waits until %s; the members' clocks say %s", op.Claim.Short(), stamp(due), stamp(now))
	}
	if n.e.Time < due {
		return fmt.Errorf("claim %s waits until %s; the completion is dated %s", op.Claim.Short(), stamp(due), stamp(n.e.Time))
	}
	for _, m := range holdersOf(a, t.role) {
		for _, ai := range b.memberChains[m.ID] {
			if i := b.lastIdx(ai, n); i >= 0 {
				if x := b.nodes[b.byAuthor[ai][i]]; x.e.Seq > cl.seen(ai) {
					return fmt.Errorf("claim %s is cancelled: %s, who holds %q, signed %s after it", op.Claim.Short(), m.Name, t.role, x.e.ID().Short())
				}
			}
		}
		if since, in := b.inactiveAt(a, m.ID, n); !in {
			return fmt.Errorf("%s, who holds %q, is active: last signed %s", m.Name, t.role, stamp(since))
		}
	}
	if w, m := b.reappearance(a, n, t.role); w != nil {
		return fmt.Errorf("invalidated: %s, who holds %q, signed %s concurrently with the completion and dated before it: the claim is cancelled", m.Name, t.role, w.e.ID().Short())
	}
	return nil
}

// claimDue returns when the claim cl may complete, as the past at n
// tells: the waiting period after the claim was made. "Made" is the later
// of when it happened (whenOf: a future date is clamped by what others
// saw) and "now" at its parents (a backdated claim waits from there).
func (b *builder) claimDue(a *authState, cl, n *node) uint64 {
	c := a.charter
	k := witnesses(c)
	start := max(b.whenOf(a, cl, n, k, cl.e.Time), b.nowAt(a, cl, k, identity.PublicKey{}))
	return addSat(start, msOf(c.Continuity.Waiting))
}

// reappearance returns an event of a holder of role (in a) that is not in
// n's past, does not have n in its past, and is dated before n: a holder
// who came back while the claim waited, whom the completion did not see.
// It is judged by header alone (below the holder's fork), as expiry
// witnesses are (expiry.go), so no pass needs later verdicts; the
// earliest such event in the holders' order, nil if none.
func (b *builder) reappearance(a *authState, n *node, role string) (*node, *Member) {
	if n.e.id.IsZero() {
		return nil, nil
	}
	for _, m := range holdersOf(a, role) {
		for _, ai := range b.memberChains[m.ID] {
			evs := b.byAuthor[ai]
			limit := len(evs)
			if fs, forked := b.forks[b.authors[ai]]; forked {
				limit, _ = slices.BinarySearchFunc(evs, fs, func(p int32, s uint64) int { return cmpU(b.nodes[p].e.Seq, s) })
			}
			for j := b.lastIdx(ai, n) + 1; j < limit; j++ {
				w := b.nodes[evs[j]]
				if w.seen(n.author) >= n.e.Seq {
					break // it saw the completion: the holder came back after it
				}
				if w.e.Time < n.e.Time {
					return w, m
				}
			}
		}
	}
	return nil, nil
}

// stamp formats an event time (Unix milliseconds) for a reason; the same
// on every replica.
func stamp(ms uint64) string {
	if ms > math.MaxInt64/2 {
		return fmt.Sprintf("at %d ms", ms)
	}
	return time.UnixMilli(int64(ms)).UTC().Format("2006-01-02 15:04:05 UTC")
}

// applySuccession applies an accepted claim (id: the claim, or the
// proposal that carried it) or completion.
func applySuccession(a *authState, id event.ID, author identity.PublicKey, op Op) {
	switch op := op.(type) {
	case *Succession:
		if a.takeovers == nil {
			a.takeovers = make(map[event.ID]takeover)
		}
		a.takeovers[id] = takeover{id: id, role: op.Role, claimant: author}
	case *Succeed:
		t, ok := a.takeovers[op.Claim]
		if !ok {
			return
		}
		delete(a.takeovers, op.Claim)
		if m := a.members[t.claimant]; m != nil && !m.HasRole(t.role) {
			m.Roles = a.rankRoles(append(m.Roles, t.role))
		}
	}
}

// Activity is what the log says of a member's activity, read at the
// heads of the log by the charter's continuity rules.
type Activity struct {
	// Since is when the member last signed anything, as the members'
	// clocks tell (Unix milliseconds).
	Since uint64
	// Inactive is whether it counts as inactive: the charter's
	// inactive-after has passed since Since, by the members' clocks.
	Inactive bool
}

// heads returns a past holding every event of the log (below forks).
func (b *builder) heads() *node {
	return &node{vv: slices.Clone(b.maxSeq), vvWide: true, nodeRare: noRare}
}

// Activity returns member m's activity, at the heads of the log, and
// whether m is a member.
func (s *State) Activity(m identity.PublicKey) (Activity, bool) {
	b := s.b()
	if _, ok := b.auth.members[m]; !ok {
		return Activity{}, false
	}
	since, in := b.inactiveAt(b.auth, m, b.heads())
	return Activity{Since: since, Inactive: in}, true
}

// Claim is an open succession claim.
type Claim struct {
	ID       event.ID // the claim, or the proposal that carried it: what a Succeed names
	Role     string
	Claimant identity.PublicKey
	// Due is when the claim may complete (Unix milliseconds), at the
	// heads of the log.
	Due uint64
	// Cancelled, if not empty, says why it can no longer complete as
	// things stand: a holder signed something after it, or is active.
	Cancelled string
}

// Claims returns the open succession claims, oldest first.
func (s *State) Claims() []Claim {
	b := s.b()
	a := b.auth
	h := b.heads()
	var out []Claim
	for _, t := range a.takeovers {
		cl := b.nodes[b.at(t.id)]
		c := Claim{ID: t.id, Role: t.role, Claimant: t.claimant, Due: b.claimDue(a, cl, h)}
		for _, m := range holdersOf(a, t.role) {
			ai, ok := b.authorIdx[m.ID]
			if !ok {
				continue
			}
			if i := b.lastIdx(ai, h); i >= 0 && b.nodes[b.byAuthor[ai][i]].e.Seq > cl.seen(ai) {
				c.Cancelled = fmt.Sprintf("%s, who holds %q, signed %s after it", m.Name, t.role, b.nodes[b.byAuthor[ai][i]].e.ID().Short())
				break
			}
			if _, in := b.inactiveAt(a, m.ID, h); !in {
				c.Cancelled = fmt.Sprintf("%s, who holds %q, is active", m.Name, t.role)
				break
			}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y Claim) int { return cmpU(uint64(b.at(x.ID)), uint64(b.at(y.ID))) })
	return out
}

// claims returns the open claims sorted by ID, for the state hash.
func (s *State) claims() []takeover {
	out := slices.Collect(maps.Values(s.b().auth.takeovers))
	slices.SortFunc(out, func(x, y takeover) int { return x.id.Compare(y.id) })
	return out
}
