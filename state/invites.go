package state

import (
	"cmp"
	"slices"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// InviteInfo is an accepted invite, as the log says it stands.
type InviteInfo struct {
	ID      event.ID
	Author  identity.PublicKey
	Role    string
	Uses    uint64 // how many may join with it; 0: no limit
	Used    uint64 // how many joined with it
	Expires uint64 // Unix milliseconds, by the members' clocks; 0: never
	Revoked bool
}

// Open reports whether the invite may still admit someone at now (Unix
// milliseconds): not revoked, not expired, uses left. Its code still
// reads what it sealed while it is open (docs/invites.md).
func (i InviteInfo) Open(now uint64) bool {
	return !i.Revoked && (i.Expires == 0 || now <= i.Expires) && (i.Uses == 0 || i.Used < i.Uses)
}

// Invites returns every accepted invite, in log order.
func (s *State) Invites() []InviteInfo {
	out := make([]InviteInfo, 0, len(s.b().auth.invites))
	for _, inv := range s.b().auth.invites {
		out = append(out, InviteInfo{ID: inv.id, Author: inv.author, Role: inv.op.Role, Uses: inv.op.Uses,
			Used: inv.used, Expires: inv.op.Expires, Revoked: inv.revoked})
	}
	slices.SortFunc(out, func(x, y InviteInfo) int { return cmp.Compare(s.b().at(x.ID), s.b().at(y.ID)) })
	return out
}
