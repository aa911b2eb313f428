package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// HeldKey is a key generation this member can read with: sealed to it in
// a key-update, sealed to the invite it joined with, given in an invite
// code, or reached by unchaining a later generation it holds.
type HeldKey struct {
	Key    keys.Key
	Update event.ID // the key-update that published the generation
	Via    string   // "sealed", "invite", "code" or "chained"
}

// KeyRing opens every generation of s's keys that this member can: the
// seeds sealed to it, those sealed to the invites it joined with, the
// group keys its invite codes carried, and the generations chained under
// all those. It needs the unlocked identity. Keys are worked out from the
// log (and the home's kept invite secrets) each time.
func (n *Node) KeyRing(ctx context.Context, s *state.State) ([]HeldKey, error) {
	if n.id == nil {
		return nil, errLocked
	}
	me := n.id.ID()
	p := s.Pursuance()
	held := map[event.ID]HeldKey{}
	updates := map[event.ID]*state.KeyUpdate{}
	gens := map[event.ID]state.KeyGen{}
	scopes := append([]string{""}, s.Charter().RoleNames()...)
	for _, role := range scopes {
		for _, kg := range s.KeyGenerations(role) {
			ku, err := n.keyUpdate(ctx, kg.Update)
			if err != nil {
				return nil, err
			}
			updates[kg.Update], gens[kg.Update] = ku, kg
			i := slices.IndexFunc(ku.Boxes, func(b state.SealedSeed) bool { return b.Member == me })
			if i < 0 {
				continue
			}
			k, err := keys.OpenSeed(keys.Scope{Pursuance: p, Role: role}, kg.Gen, ku.Boxes[i].Box, me, n.id.KEMKey())
			if err != nil {
				// A box that does not open is the sealer's fault; the
				// generation stays unreadable to us.
				continue
			}
			held[kg.Update] = HeldKey{Key: k, Update: kg.Update, Via: "sealed"}
		}
	}
	sec, err := n.readSecrets(p)
	if err != nil {
		return nil, err
	}
	for _, inv := range sec.Invites {
		n.openInvite(ctx, p, inv, gens, held)
	}
	for _, k := range sec.Group {
		// The code names the generation, not the update: among concurrent
		// rotations to it, the one whose chain the seed opens.
		for id, kg := range gens {
			if kg.Role != "" || kg.Gen != k.Gen {
				continue
			}
			if _, ok := held[id]; ok {
				continue
			}
			if ku := updates[id]; len(ku.Chain) > 0 {
				if _, err := keys.Unchain(&k, ku.Chain); err != nil {
					continue
				}
			}
			held[id] = HeldKey{Key: k, Update: id, Via: "code"}
		}
	}
	// Walk every chain down from what is held.
	queue := make([]event.ID, 0, len(held))
	for id := range held {
		queue = append(queue, id)
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		ku := updates[id]
		if ku == nil || len(ku.Chain) == 0 {
			continue
		}
		if _, ok := held[ku.Prev]; ok {
			continue
		}
		next := held[id].Key
		prev, err := keys.Unchain(&next, ku.Chain)
		if err != nil {
			continue
		}
		held[ku.Prev] = HeldKey{Key: prev, Update: ku.Prev, Via: "chained"}
		queue = append(queue, ku.Prev)
	}
	out := make([]HeldKey, 0, len(held))
	for _, h := range held {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b HeldKey) int {
		if a.Key.Scope.Role != b.Key.Scope.Role {
			if a.Key.Scope.Role < b.Key.Scope.Role {
				return -1
			}
			return 1
		}
		if a.Key.Gen != b.Key.Gen {
			if a.Key.Gen < b.Key.Gen {
				return -1
			}
			return 1
		}
		return a.Update.Compare(b.Update)
	})
	return out, nil
}

// openInvite opens the seeds an invite this member joined with was sealed,
// adding them to held. An invite under a quorum is the op its proposal
// carries. What does not open is skipped: the inviter's fault.
func (n *Node) openInvite(ctx context.Context, p event.ID, inv inviteSecret, gens map[event.ID]state.KeyGen, held map[event.ID]HeldKey) {
	e, err := n.st.Get(ctx, inv.Invite)
	if err != nil {
		return
	}
	op, err := state.DecodeOp(e.Kind, e.Body())
	if err != nil {
		return
	}
	if pr, ok := op.(*state.Proposal); ok {
		if op, err = state.DecodeOp(pr.Action, pr.Body); err != nil {
			return
		}
	}
	in, ok := op.(*state.Invite)
	if !ok {
		return
	}
	sign, err := identity.SigningKeyFromSeed(inv.Seed[:])
	if err != nil || sign.Public() != in.Key {
		return
	}
	kem, err := keys.InviteKEMKey(inv.Seed[:])
	if err != nil {
		return
	}
	for _, box := range in.Boxes {
		kg, ok := gens[box.Update]
		if !ok || kg.Role != box.Role {
			continue
		}
		if _, ok := held[box.Update]; ok {
			continue
		}
		k, err := keys.OpenSeed(keys.Scope{Pursuance: p, Role: box.Role}, kg.Gen, box.Box, in.Key, kem)
		if err != nil {
			continue
		}
		held[box.Update] = HeldKey{Key: k, Update: box.Update, Via: "invite"}
	}
}

// keyUpdate reads a key-update event's body from the store.
func (n *Node) keyUpdate(ctx context.Context, id event.ID) (*state.KeyUpdate, error) {
	e, err := n.st.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	op, err := state.DecodeOp(e.Kind, e.Body())
	if err != nil {
		return nil, err
	}
	ku, ok := op.(*state.KeyUpdate)
	if !ok {
		return nil, fmt.Errorf("app: %s is not a key update", id.Short())
	}
	return ku, nil
}

// Rotate publishes the next generation of the group key (role "") or of a
// role's key: a fresh seed sealed to every member entitled to it now, with
// the current generation chained under it when this member holds that one
// (so the new holders read the history).
func (n *Node) Rotate(ctx context.Context, p event.ID, role string, opts DoOptions) (Result, error) {
	if n.id == nil {
		return Result{}, errLocked
	}
	s, err := n.State(ctx, p)
	if err != nil {
		return Result{}, err
	}
	return n.rotate(ctx, s, role, opts)
}

func (n *Node) rotate(ctx context.Context, s *state.State, role string, opts DoOptions) (Result, error) {
	if role != "" && s.Charter().Rank(role) < 0 {
		return Result{}, fmt.Errorf("no role %q in the charter of %s", role, s.Name())
	}
	gen := uint64(1)
	for _, kg := range s.KeyGenerations(role) {
		gen = max(gen, kg.Gen+1)
	}
	seed, err := keys.NewSeed(n.rand())
	if err != nil {
		return Result{}, err
	}
	k := keys.Key{Scope: keys.Scope{Pursuance: s.Pursuance(), Role: role}, Gen: gen, Seed: seed}
	ku := &state.KeyUpdate{Role: role, Gen: gen}
	for _, m := range s.Entitled(role) {
		box, err := keys.SealSeed(&k, m.ID, m.KEM)
		if err != nil {
			return Result{}, err
		}
		ku.Boxes = append(ku.Boxes, state.SealedSeed{Member: m.ID, Box: box})
	}
	if len(ku.Boxes) == 0 {
		return Result{}, fmt.Errorf("nobody holds %s: no key to rotate", scopeName(role))
	}
	if cur, ok := s.CurrentKey(role); ok {
		ring, err := n.KeyRing(ctx, s)
		if err != nil {
			return Result{}, err
		}
		if i := slices.IndexFunc(ring, func(h HeldKey) bool { return h.Update == cur.Update }); i >= 0 {
			if ku.Chain, err = keys.Chain(&k, &ring[i].Key); err != nil {
				return Result{}, err
			}
			ku.Prev = cur.Update
		}
	}
	return n.do(ctx, s, ku, opts)
}

// scopeName names a key's scope for people.
func scopeName(role string) string {
	if role == "" {
		return "the group key"
	}
	return fmt.Sprintf("the key of role %q", role)
}

// Remove removes a member and re-keys: it publishes a new generation of
// the group key and of every role the member held, sealed to those who
// remain, so that the member reads nothing written afterwards. A key this
// member may not rotate is left for a holder to rotate (its name is in
// stale). Under a quorum, the removal is only proposed, and nothing is
// re-keyed yet (the approval that carries it re-keys: Approve).
func (n *Node) Remove(ctx context.Context, p event.ID, member identity.PublicKey, opts DoOptions) (res Result, stale []string, err error) {
	return n.actAndRekey(ctx, p, &state.Remove{Member: member}, opts)
}

// AssignRole gives a member a role and re-keys the role, so the new holder
// gets its current generation (and, chained, its history).
func (n *Node) AssignRole(ctx context.Context, p event.ID, member identity.PublicKey, role string, opts DoOptions) (Result, []string, error) {
	return n.actAndRekey(ctx, p, &state.RoleAssign{Member: member, Role: role}, opts)
}

// RevokeRole takes a role from a member and re-keys the role, so the
// member reads nothing new sealed to it.
func (n *Node) RevokeRole(ctx context.Context, p event.ID, member identity.PublicKey, role string, opts DoOptions) (Result, []string, error) {
	return n.actAndRekey(ctx, p, &state.RoleRevoke{Member: member, Role: role}, opts)
}

// Approve approves an open proposal; if this approval carries it, the
// keys it affects are re-keyed as Remove, AssignRole and RevokeRole do.
func (n *Node) Approve(ctx context.Context, p, proposal event.ID, opts DoOptions) (Result, []string, error) {
	if n.id == nil {
		return Result{}, nil, errLocked
	}
	s, err := n.State(ctx, p)
	if err != nil {
		return Result{}, nil, err
	}
	var op state.Op
	for _, pr := range s.Proposals() {
		if pr.ID == proposal {
			op = pr.Op
		}
	}
	scopes := rekeyScopes(s, op)
	res, err := n.do(ctx, s, &state.Approval{Proposal: proposal}, opts)
	if err != nil || !res.Accepted {
		return res, nil, err
	}
	after, err := n.State(ctx, p)
	if err != nil {
		return res, nil, err
	}
	if en, ok := after.Entry(res.Event.ID()); !ok || !strings.HasPrefix(en.Note, "carried") {
		return res, nil, nil
	}
	return res, n.rekey(ctx, p, scopes), nil
}

// actAndRekey acts, then re-keys what the act changed.
func (n *Node) actAndRekey(ctx context.Context, p event.ID, op state.Op, opts DoOptions) (Result, []string, error) {
	if n.id == nil {
		return Result{}, nil, errLocked
	}
	s, err := n.State(ctx, p)
	if err != nil {
		return Result{}, nil, err
	}
	scopes := rekeyScopes(s, op)
	res, err := n.Act(ctx, p, op, opts)
	if err != nil || res.Proposed || !res.Accepted {
		return res, nil, err
	}
	return res, n.rekey(ctx, p, scopes), nil
}

// rekeyScopes names the keys an op makes stale: for a removal, the group
// key and every role the member holds; for a role given or taken, that
// role's key.
func rekeyScopes(s *state.State, op state.Op) []string {
	switch op := op.(type) {
	case *state.Remove:
		scopes := []string{""}
		if m, ok := s.Member(op.Member); ok {
			scopes = append(scopes, m.Roles...)
		}
		return scopes
	case *state.RoleAssign:
		return []string{op.Role}
	case *state.RoleRevoke:
		return []string{op.Role}
	}
	return nil
}

// rekey rotates each scope that has keys, reporting those it could not.
func (n *Node) rekey(ctx context.Context, p event.ID, scopes []string) (stale []string) {
	for _, role := range scopes {
		s, err := n.State(ctx, p)
		if err != nil {
			return append(stale, err.Error())
		}
		if len(s.KeyGenerations(role)) == 0 && role != "" {
			continue // never keyed: nothing to protect yet
		}
		if _, err := n.rotate(ctx, s, role, DoOptions{}); err != nil {
			stale = append(stale, scopeName(role)+": "+err.Error())
		}
	}
	return stale
}
