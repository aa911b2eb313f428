package state

import (
	"maps"
	"slices"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// Member is a member of a pursuance as the log has settled it.
type Member struct {
	ID        identity.PublicKey
	Name      string
	Roles     []string // ranked as the charter ranks them, highest first
	KEM       identity.KEMPublicKey
	Binding   [identity.SignatureSize]byte
	KEMSince  event.ID           // the event that published KEM: the admitting one, or the member's latest accepted member-key
	Since     event.ID           // the genesis or join event that admitted it
	InvitedBy identity.PublicKey // zero for the founder
	// Root is the member's root device when it is no longer the member
	// ID (a replace, docs/devices.md §6); zero while it is.
	Root identity.PublicKey
	// BindingBy is the device that signed Binding; zero for the member ID.
	BindingBy identity.PublicKey
}

// Public returns the member's published identity.
func (m *Member) Public() identity.Public {
	return identity.Public{Name: m.Name, ID: m.ID, KEM: m.KEM, KEMBinding: m.Binding}
}

// HasRole reports whether the member holds role.
func (m *Member) HasRole(role string) bool { return slices.Contains(m.Roles, role) }

// inviteState is an accepted invite.
type inviteState struct {
	id      event.ID
	author  identity.PublicKey
	op      Invite
	used    uint64
	revoked bool
}

// proposal is an accepted proposal.
type proposal struct {
	id        event.ID
	author    identity.PublicKey
	op        Op
	action    charter.Action
	approvals map[identity.PublicKey]bool
}

// authState is the authority part of a pursuance's state: charter,
// members and their roles, invites and open proposals. Tasks are apart,
// because they are many and authority is small: rebuilding authState at an
// event's parents is cheap.
type authState struct {
	charter     *charter.Charter
	charterWire []byte
	members     map[identity.PublicKey]*Member
	former      map[identity.PublicKey]*Member // removed or left, for names
	invites     map[event.ID]*inviteState
	proposals   map[event.ID]*proposal
	keys        map[string][]KeyGen      // by role ("" the group key): accepted generations in log order
	partial     map[event.ID]*partialGen // generations published in parts, not yet complete, by first part
	relays      map[string]bool          // the relay list
	links       map[event.ID]*linkState  // links offered and accepted, by link ID
	// profiles are the public profile keys the log certified (profile.go);
	// profile is the key of the last profile event, the one in force
	// unless withdrawn.
	profiles map[identity.PublicKey]*profileState
	profile  identity.PublicKey
	// takeovers are the open succession claims, by claim (succession.go).
	takeovers map[event.ID]takeover
	// devices are the devices certified in the log (docs/devices.md), by
	// key; a member's root is one only once replaced or revoked.
	devices map[identity.PublicKey]*deviceState
}

// partialGen is a generation whose parts are still arriving.
type partialGen struct {
	kg     KeyGen // Members so far, sorted
	author identity.PublicKey
	parts  uint64
	next   uint64 // the part expected next
}

// KeyGen is one accepted generation of the group key or a role key: the
// key-update event that published it. Concurrent rotations can publish
// two generations with one number; both stay readable.
type KeyGen struct {
	Role    string
	Gen     uint64
	Update  event.ID             // the key-update event
	Members []identity.PublicKey // whom the seed was sealed to
	// KEMs names, for each of Members, the event that published the KEM
	// key the seed was sealed to: the member's KEMSince at the key
	// update's parents.
	KEMs []event.ID
	// Chained names the generations this one chains: its Prev and its
	// Siblings (whoever holds this one holds those).
	Chained []event.ID
}

// currentGen returns the highest generation number of a scope, 0 if none.
func (a *authState) currentGen(role string) uint64 {
	g := uint64(0)
	for _, k := range a.keys[role] {
		g = max(g, k.Gen)
	}
	return g
}

// generation returns the accepted generation a key-update published.
func (a *authState) generation(update event.ID) (KeyGen, bool) {
	for _, gens := range a.keys {
		for _, k := range gens {
			if k.Update == update {
				return k, true
			}
		}
	}
	return KeyGen{}, false
}

// current returns the generation new content is sealed under: the
// highest, and among concurrent rotations to it the last in log order.
func (a *authState) current(role string) (KeyGen, bool) {
	gens := a.keys[role]
	best := -1
	for i, k := range gens {
		if best < 0 || k.Gen >= gens[best].Gen {
			best = i
		}
	}
	if best < 0 {
		return KeyGen{}, false
	}
	return gens[best], true
}

// entitled returns the members entitled to a scope's key, sorted: every
// member for the group key; for a role's key, every member who sees the
// tasks visible to the role: its holders, and the holders of roles whose
// see-tasks grant covers it (an editor who sees "below" holds the
// researchers' key, to read and write what they read).
func (a *authState) entitled(role string) []identity.PublicKey {
	var out []identity.PublicKey
	vis := []string{role}
	for id, m := range a.members {
		if role == "" || m.HasRole(role) || a.charter.CanSee(m.Roles, charter.TaskFacts{VisibleTo: vis}) {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, identity.PublicKey.Compare)
	return out
}

func newAuthState() *authState {
	return &authState{
		members:   make(map[identity.PublicKey]*Member),
		former:    make(map[identity.PublicKey]*Member),
		invites:   make(map[event.ID]*inviteState),
		proposals: make(map[event.ID]*proposal),
		keys:      make(map[string][]KeyGen),
		partial:   make(map[event.ID]*partialGen),
		relays:    make(map[string]bool),
		links:     make(map[event.ID]*linkState),
		devices:   make(map[identity.PublicKey]*deviceState),
	}
}

// roles returns the roles m holds, or nil if m is not a member.
func (a *authState) roles(m identity.PublicKey) []string {
	if mem, ok := a.members[m]; ok {
		return mem.Roles
	}
	return nil
}

// holders counts the members holding role.
func (a *authState) holders(role string) int {
	n := 0
	for _, m := range a.members {
		if m.HasRole(role) {
			n++
		}
	}
	return n
}

// rankRoles sorts roles by the charter's rank and drops unknown ones.
func (a *authState) rankRoles(roles []string) []string {
	out := roles[:0]
	for _, r := range roles {
		if a.charter.Rank(r) >= 0 && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(x, y string) int { return a.charter.Rank(x) - a.charter.Rank(y) })
	return out
}

// addMember admits a member with one role.
func (a *authState) addMember(m *Member) {
	delete(a.former, m.ID)
	a.members[m.ID] = m
}

// dropMember removes a member, keeping its name for display.
func (a *authState) dropMember(id identity.PublicKey) {
	if m, ok := a.members[id]; ok {
		m.Roles = nil
		a.former[id] = m
		delete(a.members, id)
	}
}

// setCharter installs a new charter and drops roles it no longer has.
func (a *authState) setCharter(c *charter.Charter, wire []byte) {
	a.charter, a.charterWire = c, wire
	for _, m := range a.members {
		m.Roles = a.rankRoles(m.Roles)
	}
}

// clone returns a deep copy of a, sharing only immutable parts (the
// charter, invite ops, proposal ops).
func (a *authState) clone() *authState {
	c := &authState{
		charter:     a.charter,
		charterWire: a.charterWire,
		members:     make(map[identity.PublicKey]*Member, len(a.members)),
		former:      make(map[identity.PublicKey]*Member, len(a.former)),
		invites:     make(map[event.ID]*inviteState, len(a.invites)),
		proposals:   make(map[event.ID]*proposal, len(a.proposals)),
		keys:        make(map[string][]KeyGen, len(a.keys)),
		partial:     make(map[event.ID]*partialGen, len(a.partial)),
		relays:      maps.Clone(a.relays),
		links:       make(map[event.ID]*linkState, len(a.links)),
		devices:     make(map[identity.PublicKey]*deviceState, len(a.devices)),
	}
	for k, d := range a.devices {
		dd := *d
		c.devices[k] = &dd
	}
	for k, l := range a.links {
		ll := *l
		c.links[k] = &ll
	}
	if a.takeovers != nil {
		c.takeovers = maps.Clone(a.takeovers)
	}
	if a.profiles != nil {
		c.profiles, c.profile = make(map[identity.PublicKey]*profileState, len(a.profiles)), a.profile
		for k, p := range a.profiles {
			pp := *p
			c.profiles[k] = &pp
		}
	}
	for k, v := range a.keys {
		c.keys[k] = slices.Clone(v)
	}
	for k, v := range a.partial {
		vv := *v
		vv.kg.Members = slices.Clone(v.kg.Members)
		vv.kg.KEMs = slices.Clone(v.kg.KEMs)
		c.partial[k] = &vv
	}
	for k, m := range a.members {
		mm := *m
		mm.Roles = slices.Clone(m.Roles)
		c.members[k] = &mm
	}
	for k, m := range a.former {
		mm := *m
		mm.Roles = slices.Clone(m.Roles)
		c.former[k] = &mm
	}
	for k, v := range a.invites {
		vv := *v
		c.invites[k] = &vv
	}
	for k, p := range a.proposals {
		pp := *p
		pp.approvals = maps.Clone(p.approvals)
		c.proposals[k] = &pp
	}
	return c
}
