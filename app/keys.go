package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// HeldKey is a key generation this member can read with: sealed to it in
// a key-update, sealed to the invite it joined with, given in an invite
// code, or reached by unchaining a later generation it holds.
type HeldKey = state.HeldKey

// KeyRing returns every accepted generation of s's keys that this member
// holds, by scope and generation. s must be a state this node built while
// unlocked (Node.State): the state opens the keys, from the log and the
// invite secrets kept in the home.
func (n *Node) KeyRing(ctx context.Context, s *state.State) ([]HeldKey, error) {
	held := s.Held()
	var out []HeldKey
	for _, role := range append([]string{""}, s.Charter().RoleNames()...) {
		for _, kg := range s.KeyGenerations(role) {
			if h, ok := held[kg.Update]; ok {
				out = append(out, h)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b HeldKey) int {
		if c := strings.Compare(a.Key.Scope.Role, b.Key.Scope.Role); c != 0 {
			return c
		}
		return cmp.Compare(a.Key.Gen, b.Key.Gen)
	})
	return out, nil
}

// Rotate publishes the next generation of the group key (role "") or of a
// role's key: a fresh seed sealed to every member entitled to it now, with
// the current generation chained under it when this member holds that one
// (so the new holders read the history).
func (n *Node) Rotate(ctx context.Context, p event.ID, role string, opts DoOptions) (Result, error) {
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
	if ku.Boxes, err = sealSeeds(&k, s.Entitled(role)); err != nil {
		return Result{}, err
	}
	if len(ku.Boxes) == 0 {
		return Result{}, fmt.Errorf("nobody holds %s: no key to rotate", scopeName(role))
	}
	if cur, ok := s.CurrentKey(role); ok && (role == "" || s.Charter().Keys.History != charter.HistoryFromJoin) {
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
		// Generations the current one does not lead to (concurrent
		// rotations'), as many as this member holds: chained beside it,
		// so that whoever gets the new one reads what was sealed under
		// them.
		for _, o := range s.Orphans(role) {
			i := slices.IndexFunc(ring, func(h HeldKey) bool { return h.Update == o.Update })
			if i < 0 || o.Gen >= gen || o.Update == ku.Prev {
				continue
			}
			box, err := keys.ChainSibling(&k, &ring[i].Key, o.Update)
			if err != nil {
				return Result{}, err
			}
			ku.Siblings = append(ku.Siblings, state.ChainedSibling{Prev: o.Update, Gen: o.Gen, Chain: box})
		}
		slices.SortFunc(ku.Siblings, func(a, b state.ChainedSibling) int { return a.Prev.Compare(b.Prev) })
		if len(ku.Siblings) > state.MaxSiblings {
			ku.Siblings = ku.Siblings[:state.MaxSiblings]
		}
	}
	if len(ku.Boxes) <= state.MaxSealedSeeds {
		return n.do(ctx, s, ku, opts)
	}
	// More members than one event holds: parts, in order, each signed on
	// top of the one before.
	parts := (len(ku.Boxes) + state.MaxSealedSeeds - 1) / state.MaxSealedSeeds
	if parts > state.MaxKeyParts {
		return Result{}, fmt.Errorf("%s has %d members entitled to it, more than a key update reaches (%d)", scopeName(role), len(ku.Boxes), state.MaxKeyParts*state.MaxSealedSeeds)
	}
	all := ku.Boxes
	var first Result
	for i := range parts {
		part := &state.KeyUpdate{Role: role, Gen: gen, Part: uint64(i), Parts: uint64(parts),
			Boxes: all[i*state.MaxSealedSeeds : min(len(all), (i+1)*state.MaxSealedSeeds)]}
		if i == 0 {
			part.Chain, part.Prev = ku.Chain, ku.Prev
		} else {
			part.First = first.Event.ID()
			if s, err = n.State(ctx, s.Pursuance()); err != nil {
				return first, err
			}
		}
		res, err := n.do(ctx, s, part, opts)
		if err != nil {
			return first, fmt.Errorf("%s, part %d of %d: %w", scopeName(role), i+1, parts, err)
		}
		if i == 0 {
			first = res
		}
	}
	return first, nil
}

// sealSeeds seals k's seed to each member, on every core: a rotation of a
// large role is that many HPKE encapsulations.
func sealSeeds(k *keys.Key, to []*state.Member) ([]state.SealedSeed, error) {
	out := make([]state.SealedSeed, len(to))
	errs := make([]error, len(to))
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(to))
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(to); i += workers {
				box, err := keys.SealSeed(k, to[i].ID, to[i].KEM)
				out[i], errs[i] = state.SealedSeed{Member: to[i].ID, Box: box}, err
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// scopeName names a key's scope for people.
func scopeName(role string) string {
	if role == "" {
		return "the group key"
	}
	return fmt.Sprintf("the key of role %q", role)
}

// Remove removes a member and re-keys: it publishes a new generation of
// the group key and of every role key the member held, sealed to those
// who remain, so that the member reads nothing written afterwards. A key
// this member may not rotate is left stale for one who may (its name is
// in stale; any member holding it rotates before sealing under it again).
// Under a quorum, the removal is only proposed, and nothing is re-keyed
// yet (the approval that carries it re-keys: Approve).
func (n *Node) Remove(ctx context.Context, p event.ID, member identity.PublicKey, opts DoOptions) (res Result, stale []string, err error) {
	return n.actAndRekey(ctx, p, &state.Remove{Member: member}, opts)
}

// AssignRole gives a member a role and re-keys what it now reads, so the
// new holder gets the current generation (and, chained, the history).
func (n *Node) AssignRole(ctx context.Context, p event.ID, member identity.PublicKey, role string, opts DoOptions) (Result, []string, error) {
	return n.actAndRekey(ctx, p, &state.RoleAssign{Member: member, Role: role}, opts)
}

// RevokeRole takes a role from a member and re-keys what it no longer
// reads, so the member reads nothing new sealed under it.
func (n *Node) RevokeRole(ctx context.Context, p event.ID, member identity.PublicKey, role string, opts DoOptions) (Result, []string, error) {
	return n.actAndRekey(ctx, p, &state.RoleRevoke{Member: member, Role: role}, opts)
}

// Approve approves an open proposal; if this approval carries it, the
// keys it affects are re-keyed as Remove, AssignRole and RevokeRole do.
//
// When it carries a profile event, the profile's records go to the
// relays (ProfilePush): the proposer's publish could not send them.
func (n *Node) Approve(ctx context.Context, p, proposal event.ID, opts DoOptions) (Result, []string, error) {
	before := n.profileVersions(ctx, p)
	res, err := n.Do(ctx, p, &state.Approval{Proposal: proposal}, opts)
	if err != nil || !res.Accepted {
		return res, nil, err
	}
	if after := n.profileVersions(ctx, p); after != before {
		if err := n.ProfilePush(ctx, p); err != nil {
			res.SyncErr = errors.Join(res.SyncErr, err)
		}
	}
	stale, err := n.HealKeys(ctx, p)
	return res, stale, err
}

// actAndRekey acts, then re-keys what the act changed.
func (n *Node) actAndRekey(ctx context.Context, p event.ID, op state.Op, opts DoOptions) (Result, []string, error) {
	res, err := n.Act(ctx, p, op, opts)
	if err != nil || res.Proposed || !res.Accepted {
		return res, nil, err
	}
	stale, err := n.HealKeys(ctx, p)
	return res, stale, err
}

// HealKeys rotates every key whose current generation is stale (held by
// someone no longer entitled to it, or by the code of an invite that was
// used, revoked or has expired), owed (not sealed to someone entitled
// to it) or older than the charter's rotation period, when this member may
// rotate it: the new generation goes to exactly the entitled members, with
// the current one chained under it when this member holds that one and the
// charter keeps history (so newcomers read it). It returns, for people,
// the keys it left stale or owed because this member may not rotate them.
func (n *Node) HealKeys(ctx context.Context, p event.ID) (left []string, err error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return nil, err
	}
	_, left, err = n.heal(ctx, s)
	return left, err
}

// heal is HealKeys on a folded state; it returns the state after.
func (n *Node) heal(ctx context.Context, s *state.State) (*state.State, []string, error) {
	me := n.me()
	var left []string
	s, left, err := n.publishKEM(ctx, s)
	if err != nil {
		return nil, left, err
	}
	for _, role := range append([]string{""}, s.Charter().RoleNames()...) {
		now := n.now()
		st, ok := s.KeyStatusAt(role, now)
		if !ok {
			continue
		}
		due := s.RotationDue(role, now)
		stale := len(st.Stale)+len(st.Retired) > 0
		orphaned := n.holdsOrphan(s, role)
		if !stale && len(st.Owed) == 0 && !due && !orphaned {
			continue
		}
		if !s.MayRotate(me, role) {
			if stale || len(st.Owed) > 0 {
				left = append(left, scopeName(role)+": you may not rotate it; a member who may must")
			}
			continue
		}
		if !stale && !due && !orphaned && !n.holds(s, st.Current.Update) {
			// Only owed, and we could not chain: a rotation now would cut
			// the history off; leave it to a holder.
			left = append(left, scopeName(role)+": owed to a member; a holder must re-key")
			continue
		}
		if _, err := n.rotate(ctx, s, role, DoOptions{}); err != nil {
			left = append(left, scopeName(role)+": "+err.Error())
			continue
		}
		var err error
		if s, err = n.State(ctx, s.Pursuance()); err != nil {
			return nil, left, err
		}
	}
	return s, left, nil
}

// healForSync is heal before a sync sends: except that a newcomer, whose
// latest event is still its join, rotates nothing yet. Its join goes out
// under the generation its invite sealed, which the members read (a member
// node's embedded relay admits it there: admit.go); the generations its
// code carried are rotated by the first member who writes or syncs, or by
// the newcomer itself before its own first write (heal).
func (n *Node) healForSync(ctx context.Context, s *state.State) (*state.State, []string, error) {
	me, ok := s.Member(n.me())
	if ok {
		if en, found := s.Entry(me.Since); found && en.Kind == event.KindJoin {
			if vv, err := n.st.VersionVector(ctx, s.Pursuance()); err == nil && vv[me.ID] == en.Seq {
				return s, nil, nil
			}
		}
	}
	return n.heal(ctx, s)
}

// publishKEM makes the pursuance know this member's current KEM key: if
// the log has one of its retired keys (it rotated with `pursuance id
// rotate` since), it publishes a member-key event. A KEM key of this
// member that is neither its current nor a retired one was published by
// someone else holding its signing key: that is reported, not fought.
func (n *Node) publishKEM(ctx context.Context, s *state.State) (*state.State, []string, error) {
	m, ok := s.Member(n.me())
	cur := n.memberPublic()
	if !ok || m.KEM.Equal(cur.KEM) {
		return s, nil, nil
	}
	if learned, err := n.learnMemberKEMs(s); err != nil || learned {
		return s, nil, err // another device of the member made it
	}
	if n.memberKEMFor(m.KEM) == nil {
		return s, []string{fmt.Sprintf("your KEM key in %s is not one this home holds: an event signed with your identity elsewhere replaced it (if you did not run `pursuance id rotate` on another copy of this home, your signing key is in someone else's hands: ask to be removed, and rejoin with a new identity)", s.Name())}, nil
	}
	mk := &state.MemberKey{}
	k, _ := n.memberKEMs()
	if err := n.fillMemberKEM(s, k, nil, &mk.KEM, &mk.Binding, &mk.Boxes); err != nil {
		return nil, nil, err
	}
	if _, err := n.do(ctx, s, mk, DoOptions{}); err != nil {
		return nil, nil, fmt.Errorf("publishing your new KEM key in %s: %w", s.Name(), err)
	}
	s, err := n.State(ctx, s.Pursuance())
	return s, nil, err
}

// RotatedIdentity makes this home's pursuances follow the identity's new
// KEM key, which the keystore already holds (keystore.RotateKEM): it
// unlocks the node with id, seals the home's kept secrets again to the new
// key, and heals the keys of every pursuance where this member is one (a
// member-key event with the new key, then new generations of every key
// that was sealed to the old one). It returns, by pursuance, what it left
// for others (HealKeys). Nothing is synced: callers send it.
func (n *Node) RotatedIdentity(ctx context.Context, id *identity.Identity) (map[event.ID][]string, error) {
	if err := n.Unlock(id); err != nil {
		return nil, err
	}
	if n.dev != nil {
		// A root that linked devices keeps the member's KEM keys in
		// DeviceFile (device.go): the new one goes there too.
		if err := n.addMemberKEM(id.KEMKey()); err != nil {
			return nil, err
		}
	}
	return n.rekeyAll(ctx)
}

// RotateMemberKEM gives the member a new KEM key from a linked device
// (whose keystore's KEM key is its own device key, which stays): the new
// key is kept in DeviceFile and published, sealed to the member's other
// devices, with a member-key in every pursuance, whose keys are then
// re-keyed as RotatedIdentity does.
func (n *Node) RotateMemberKEM(ctx context.Context) (map[event.ID][]string, error) {
	k, err := identity.NewKEMPrivateKey(n.rand())
	if err != nil {
		return nil, err
	}
	if err := n.addMemberKEM(k); err != nil {
		return nil, err
	}
	return n.rekeyAll(ctx)
}

// rekeyAll seals the home's kept secrets again and heals every pursuance
// this member is in (publishing its current KEM key first).
func (n *Node) rekeyAll(ctx context.Context) (map[event.ID][]string, error) {
	if err := n.ResealSecrets(); err != nil {
		return nil, err
	}
	ps, err := n.st.Pursuances(ctx)
	if err != nil {
		return nil, err
	}
	out := map[event.ID][]string{}
	for _, p := range ps {
		s, err := n.State(ctx, p)
		if err != nil {
			return out, err
		}
		if _, member := s.Member(n.me()); !member {
			continue
		}
		left, err := n.HealKeys(ctx, p)
		if err != nil {
			return out, fmt.Errorf("%s: %w", s.Name(), err)
		}
		out[p] = left
	}
	return out, nil
}

// envelopeGen says which of this member's group generations an event of
// kind k is pushed under (docs/sync.md): a group key update under the generation
// current before it in log order (cur), so that those who held that one
// learn the next, and a removal or an approval (which may carry one) there
// too, so that the member removed learns of it; every other event under
// this member's current generation (gens.last), the newest at publish
// time. So an event written before a removal but published after the
// member learned of it (sync pulls, and heals, before it pushes) is not on
// a topic the removed member reads, nor is one that sorts after a
// generation made concurrently by someone who had not seen the removal
// (still sealed to the removed member: stale, and rotated by heal before
// the push). Readers learn a new generation from its key update before
// they can ingest it (noteGroupUpdate), so events placed under it are
// read in the same sync. body returns the event's body, read only for a
// key update (the push walks the state's log, not the stored events).
func envelopeGen(k event.Kind, body func() ([]byte, error), cur *genEnv, gens groupGens) (*genEnv, error) {
	switch k {
	case event.KindRemove, event.KindApproval, event.KindDevice, event.KindMemberKey:
		// A device revocation or a member key carries the member's new
		// KEM key to its other devices, which can read only the
		// generations before it (docs/devices.md §5).
		return cur, nil
	case event.KindKeyUpdate:
		b, err := body()
		if err != nil {
			return nil, err
		}
		if op, err := state.DecodeOp(k, b); err == nil {
			if ku, ok := op.(*state.KeyUpdate); ok && ku.Role == "" {
				return cur, nil
			}
		}
	}
	return gens.last, nil
}

// behindFor returns the older generations the group key update id is to
// be sent under too, to relay u (groupGens.behind): those its recipients
// may be stuck on, under which the relay does not hold it yet.
func (n *Node) behindFor(ctx context.Context, sdb *syncDB, u string, gens groupGens, id event.ID) ([]*genEnv, error) {
	var out []*genEnv
	for _, env := range gens.behind[id] {
		_, onTopic, err := sdb.heldBy(ctx, u, env.Topic())
		if err != nil {
			return nil, err
		}
		if !onTopic.has(id) {
			out = append(out, env)
		}
	}
	return out, nil
}

// notePushRefused takes out of sent the envelopes a relay did not admit
// (refused: their cursor is 0; relay.Config.Admit) and records their
// events as held there, so that they are neither looked for nor sent
// again.
func (n *Node) notePushRefused(ctx context.Context, sdb *syncDB, u string, topic keys.Topic, sent []pushedEnv, refused int) ([]pushedEnv, error) {
	if refused == 0 {
		return sent, nil
	}
	var ids []event.ID
	kept := sent[:0]
	for _, p := range sent {
		if p.cursor == 0 {
			ids = append(ids, p.id)
		} else {
			kept = append(kept, p)
		}
	}
	return kept, sdb.markHeld(ctx, u, topic, ids)
}

// RetiredTopics returns the topics of the group generations of s that this
// member holds and that nobody it expects to hear from writes to any more
// (state.State.Retired at now, Unix milliseconds): its sync stops reading
// them, and with them what a removed member or the holder of an old
// invite code appends there. s must be a state built by this node while
// unlocked (it holds the keys).
func RetiredTopics(s *state.State, now uint64) map[keys.Topic]bool {
	out := map[keys.Topic]bool{}
	held := s.Held()
	for _, id := range s.Retired(now) {
		h, ok := held[id]
		if !ok {
			continue
		}
		if t, _, err := h.Key.Topic(); err == nil {
			out[t] = true
		}
	}
	return out
}

// JoinTopics returns the topics of the group generations of s that this
// member holds and that an invite a newcomer may still join with sealed
// (state.State.JoinGens at now, Unix milliseconds): the newcomer's join
// arrives there, whatever the newest generation is (a rotation since the
// invite — a revocation of another invite, a removal — is not sealed to
// it). s must be a state built by this node while unlocked.
func JoinTopics(s *state.State, now uint64) map[keys.Topic]bool {
	out := map[keys.Topic]bool{}
	held := s.Held()
	for _, id := range s.JoinGens(now) {
		if h, ok := held[id]; ok {
			if t, _, err := h.Key.Topic(); err == nil {
				out[t] = true
			}
		}
	}
	return out
}

// dropRetired takes out of ks, the topics a sync of p is about to read,
// those of retired generations (RetiredTopics), unless events are missing:
// then everything is read, in case one is found under a retired topic.
func (n *Node) dropRetired(ctx context.Context, p event.ID, ks map[keys.Topic]keys.Key) {
	n.resetAdmission(p) // what comes now is judged by the state as it is now
	if n.in.PendingCount() > 0 || len(n.in.Missing()) > 0 {
		return
	}
	if _, err := n.st.Get(ctx, p); err != nil {
		return // no log yet: a newcomer reads everything it can
	}
	s, err := n.syncState(ctx, p) // retired generations: no task event changes them
	if err != nil {
		return
	}
	for t := range RetiredTopics(s, n.now()) {
		delete(ks, t)
	}
}

// holdsOrphan reports whether this member holds a generation of the scope
// that the current one does not lead to (state.State.Orphans), and may
// chain it: a rotation then chains it beside the current, so that what
// was sealed under it reaches everyone who gets the new one.
func (n *Node) holdsOrphan(s *state.State, role string) bool {
	if role != "" && s.Charter().Keys.History == charter.HistoryFromJoin {
		return false
	}
	held := s.Held()
	for _, o := range s.Orphans(role) {
		if _, ok := held[o.Update]; ok {
			return true
		}
	}
	return false
}

// holds reports whether this member holds the generation update published.
func (n *Node) holds(s *state.State, update event.ID) bool {
	_, ok := s.Held()[update]
	return ok
}
