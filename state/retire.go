package state

import (
	"slices"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// What a member's sync needs to know about the group key's generations
// beyond the rules: where key updates must also go (Behind), and which
// generations' topics nobody is expected to write to any more (Retired).

// Behind returns, for each generation of the group key (role "") or a
// role's key, the newest earlier generations of the scope that its
// recipients hold (sealed to them, or to the invite they joined with),
// one per distinct generation, when that is not the generation just
// before it. A member who held only an older generation — a newcomer
// whose invite sealed the generation current when it was made — cannot
// read a key update placed under the one before it: the update is also
// placed under these (app's push and export), so that it reaches them.
func (s *State) Behind(role string) map[event.ID][]event.ID {
	a := s.b().auth
	gens := a.keys[role]
	viaInvite := map[event.ID][]identity.PublicKey{} // generation -> members who joined with an invite that sealed it
	for _, ms := range []map[identity.PublicKey]*Member{a.members, a.former} {
		for id, m := range ms {
			j, ok := s.b().nodes[s.b().at(m.Since)].op.(*Join)
			if !ok {
				continue
			}
			if inv, ok := s.b().inviteOp(j.Invite); ok {
				for _, box := range inv.Boxes {
					viaInvite[box.Update] = append(viaInvite[box.Update], id)
				}
			}
		}
	}
	last := map[identity.PublicKey]int{} // member -> index of the newest generation it holds so far
	out := map[event.ID][]event.ID{}
	for i, kg := range gens {
		var behind []event.ID
		for _, m := range kg.Members {
			if j, ok := last[m]; ok && j != i-1 && !slices.Contains(behind, gens[j].Update) {
				behind = append(behind, gens[j].Update)
			}
		}
		if len(behind) > 0 {
			slices.SortFunc(behind, event.ID.Compare)
			out[kg.Update] = behind
		}
		for _, m := range kg.Members {
			last[m] = i
		}
		for _, m := range viaInvite[kg.Update] {
			last[m] = i
		}
	}
	return out
}

// Orphans returns the accepted generations of the group key (role "") or
// of a role's key that the current one does not lead to through chains
// (KeyGen.Chained, followed transitively): made concurrently with the one
// a later rotation chained, they are read only by those they were sealed
// to. A member holding one chains it beside the current at its next
// rotation (KeyUpdate.Siblings); app's heal rotates for that.
func (s *State) Orphans(role string) []KeyGen {
	a := s.b().auth
	cur, ok := a.current(role)
	if !ok {
		return nil
	}
	byID := map[event.ID]KeyGen{}
	for _, kg := range a.keys[role] {
		byID[kg.Update] = kg
	}
	reached := map[event.ID]bool{cur.Update: true}
	queue := []event.ID{cur.Update}
	for len(queue) > 0 {
		kg := byID[queue[0]]
		queue = queue[1:]
		for _, c := range kg.Chained {
			if !reached[c] {
				reached[c] = true
				queue = append(queue, c)
			}
		}
	}
	var out []KeyGen
	for _, kg := range a.keys[role] {
		if !reached[kg.Update] {
			out = append(out, kg)
		}
	}
	return out
}

// Retired returns the generations of the group key whose topics nobody
// this member expects to hear from writes to any more, so that its sync
// stops reading them (and what a removed member or the holder of an old
// code appends there): every generation that
//
//   - is not the current one;
//   - no joinable invite sealed (JoinGens: a newcomer will publish its
//     join under it, and everything it writes until it is re-keyed); and
//   - every current member has moved past: the member's latest event
//     has in its causal past a later generation (in log order) that was
//     sealed to the member (or to the invite it joined with). A member
//     publishes under the newest generation it knows (docs/sync.md), and
//     everything it wrote before that event is already in this log (its
//     chain), so it writes nothing more under this one.
//
// A member who has not written since a rotation keeps the generations
// before it read. Callers read every topic while events are missing
// (something may still be found under a retired one).
func (s *State) Retired(now uint64) []event.ID {
	b := s.b()
	a := b.auth
	gens := a.keys[""]
	if len(gens) < 2 {
		return nil
	}
	cur, _ := a.current("")
	pos := func(kg KeyGen) int32 { return b.at(kg.Update) }
	// The earliest generation (by log position) some member has not moved
	// past: everything before it that no live invite sealed is retired.
	limit := int32(len(b.nodes))
	for id, m := range a.members {
		ai, ok := b.authorIdx[id]
		if !ok || len(b.byAuthor[ai]) == 0 {
			// Its member ID signed nothing here (a root line's member,
			// docs/devices.md §6.1): keep every topic read.
			return nil
		}
		evs := b.byAuthor[ai]
		last := b.nodes[evs[len(evs)-1]]
		past := int32(-1)
		for i := len(gens) - 1; i >= 0; i-- {
			kg := gens[i]
			if !b.inPast(b.nodes[pos(kg)], last) {
				continue
			}
			if slices.Contains(kg.Members, id) || s.joinedWith(m, kg.Update) {
				past = pos(kg)
				break
			}
		}
		limit = min(limit, past)
	}
	joins := s.JoinGens(now)
	var out []event.ID
	for _, kg := range gens {
		if pos(kg) >= limit || kg.Update == cur.Update || slices.Contains(joins, kg.Update) {
			continue
		}
		out = append(out, kg.Update)
	}
	return out
}

// JoinGens returns the generations of the group key (the IDs of the
// updates that published them, in log order) sealed by an invite a
// newcomer may still join with at now: accepted, not revoked, with uses
// left and not expired. Such a newcomer holds only what its invite
// sealed, so its join — and all it writes until a member re-keys to it —
// is published under that generation: its topic is read (not Retired),
// and a node follows it live beside the newest (app.Node.WatchTargets).
//
// This is not the invite's key staleness (rules.md §10.6): a used invite
// with uses left has made its generations stale (a copy of the code must
// open nothing new), and yet its next newcomer still writes there.
func (s *State) JoinGens(now uint64) []event.ID {
	a := s.b().auth
	var out []event.ID
	for _, kg := range a.keys[""] {
		for _, inv := range a.invites {
			if inviteJoinable(inv, now) && slices.ContainsFunc(inv.op.Boxes, func(x InviteSeal) bool { return x.Update == kg.Update }) {
				out = append(out, kg.Update)
				break
			}
		}
	}
	return out
}

// inviteJoinable reports whether a newcomer may still join with inv at
// now: not revoked, with uses left (Uses 0: no limit), not expired.
func inviteJoinable(inv *inviteState, now uint64) bool {
	return !inv.revoked && (inv.op.Uses == 0 || inv.used < inv.op.Uses) && (inv.op.Expires == 0 || now <= inv.op.Expires)
}

// LiveInviteKeys returns the invites a newcomer may still join with, by
// invite ID, with their keys (to check a join's proof): accepted, not
// revoked, with uses left. Expiry is the rules' to judge.
func (s *State) LiveInviteKeys() map[event.ID]identity.PublicKey {
	out := map[event.ID]identity.PublicKey{}
	for id, inv := range s.b().auth.invites {
		if !inv.revoked && (inv.op.Uses == 0 || inv.used < inv.op.Uses) {
			out[id] = inv.op.Key
		}
	}
	return out
}

// Garbage returns the events, with their bodies, that the rules can never
// accept whatever else arrives: of an author that had signed no genesis or
// join up to them (an outsider, or a holder of an invite code that never
// joined, signing with a key of its own). Their verdict does not depend on
// their bodies, so a member drops the bodies and keeps the events (their
// IDs, links and signatures: the audit log, and any evidence of a fork,
// stay): app.Node.CollectGarbage.
func (s *State) Garbage() []event.ID {
	var out []event.ID
	for _, n := range s.b().nodes {
		if n.outsider && n.body {
			out = append(out, n.e.ID())
		}
	}
	return out
}

// Former returns the members who were removed or left and are not members
// again, sorted.
func (s *State) Former() []identity.PublicKey {
	var out []identity.PublicKey
	for id := range s.b().auth.former {
		if _, back := s.b().auth.members[id]; !back {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, identity.PublicKey.Compare)
	return out
}

// joinedWith reports whether member m joined with an invite that sealed
// the generation update published.
func (s *State) joinedWith(m *Member, update event.ID) bool {
	j, ok := s.b().nodes[s.b().at(m.Since)].op.(*Join)
	if !ok {
		return false
	}
	inv, ok := s.b().inviteOp(j.Invite)
	return ok && slices.ContainsFunc(inv.Boxes, func(x InviteSeal) bool { return x.Update == update })
}
