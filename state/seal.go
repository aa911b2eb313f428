package state

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// IsTaskOp reports whether op acts on tasks: the ops a TaskSealed carries
// (the kind table).
func IsTaskOp(op Op) bool { return kindOf(op.Kind()).task }

// SealedAD is what a sealed task event's content and wraps are bound to:
// the pursuance, the author and the event's seq. Sealed content moved into
// another event, by another author or at another place in a chain, does
// not open.
func SealedAD(pursuance event.ID, author identity.PublicKey, seq uint64) []byte {
	ad := make([]byte, 0, event.IDSize+len(author)+8)
	ad = append(ad, pursuance[:]...)
	ad = append(ad, author[:]...)
	return binary.BigEndian.AppendUint64(ad, seq)
}

// contentBoxPurpose binds a content key sealed to one reader to its event.
func contentBoxPurpose(ad []byte) string { return "content-key/v1/" + hex.EncodeToString(ad) }

// SealTask seals a task op for its readers: a fresh content key, wrapped
// under each generation in wraps (by the key-update that published it)
// and sealed to each KEM key in boxes. ad is SealedAD of the event the
// result will be the body of.
func SealTask(op Op, ad []byte, wraps map[event.ID]keys.Key, boxes []identity.KEMPublicKey, rand io.Reader) (*TaskSealed, error) {
	if !IsTaskOp(op) {
		return nil, fmt.Errorf("state: %s is not a task op", op.Kind())
	}
	body, err := EncodeOp(op)
	if err != nil {
		return nil, err
	}
	ck, err := keys.NewContentKey(rand)
	if err != nil {
		return nil, err
	}
	pt := binary.AppendUvarint(nil, uint64(op.Kind()))
	sealed := &TaskSealed{}
	if sealed.Content, err = keys.SealContent(ck, ad, append(pt, body...), rand); err != nil {
		return nil, err
	}
	if _, ok := op.(*TaskCreate); !ok {
		sealed.Task = taskOf(op)
	}
	for id, k := range wraps {
		w, err := keys.WrapContentKey(&k, ck, ad, rand)
		if err != nil {
			return nil, err
		}
		sealed.Wraps = append(sealed.Wraps, ContentWrap{Update: id, Key: w})
	}
	slices.SortFunc(sealed.Wraps, func(a, b ContentWrap) int { return a.Update.Compare(b.Update) })
	for _, kem := range boxes {
		b, err := keys.SealBox(kem, contentBoxPurpose(ad), ck[:])
		if err != nil {
			return nil, err
		}
		sealed.Boxes = append(sealed.Boxes, b)
	}
	if len(sealed.Wraps) == 0 && len(sealed.Boxes) == 0 {
		return nil, errors.New("state: a task op sealed for nobody")
	}
	return sealed, nil
}

// ErrSealedContent is wrapped when a task-sealed event opens but what it
// seals is not a valid task op for it: the author's fault.
var ErrSealedContent = errors.New("sealed content")

// openTask opens a sealed task op with the content key ck.
func openTask(s *TaskSealed, ck keys.ContentKey, ad []byte, scratch *bytes.Buffer) (Op, error) {
	pt, err := keys.OpenContent(ck, ad, s.Content)
	if err != nil {
		return nil, err
	}
	kind, n := binary.Uvarint(pt)
	if n <= 0 {
		return nil, fmt.Errorf("%w: %w: no kind", ErrBadOp, ErrSealedContent)
	}
	op, err := decodeOp(event.Kind(kind), pt[n:], scratch)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSealedContent, err)
	}
	if !IsTaskOp(op) {
		return nil, fmt.Errorf("%w: %w: a %s", ErrBadOp, ErrSealedContent, op.Kind())
	}
	_, create := op.(*TaskCreate)
	if create != s.Task.IsZero() || !create && taskOf(op) != s.Task {
		return nil, fmt.Errorf("%w: %w: the task in clear is not the sealed op's", ErrBadOp, ErrSealedContent)
	}
	return op, nil
}

// Secrets are what one member opens sealed keys and content with: its
// member ID and KEM private key, the invites it joined with and the group
// key generations it was handed outside the log (in invite codes).
type Secrets struct {
	Member  identity.PublicKey
	KEM     *identity.KEMPrivateKey
	Retired []*identity.KEMPrivateKey // earlier KEM keys (identity.Identity.RetiredKEMKeys): they open what was sealed to them
	Invites []InviteSecret
	Group   []keys.Key
	// Links are link secrets held outside the log (a link code, before or
	// without a group key to keep it under); the secrets wrapped in the
	// log under group keys this member holds are found by the fold.
	Links []keys.LinkSecret
}

// InviteSecret is an invite one joined with: its ID and its secret (the
// seed of its signing key, from which its KEM key is derived).
type InviteSecret struct {
	Invite event.ID
	Seed   [32]byte
}

// HeldKey is a key generation a member can read with.
type HeldKey struct {
	Key    keys.Key
	Update event.ID // the key-update that published it
	Via    string   // "sealed", "invite", "code" or "chained"
}

// openKeys works out every key generation sec opens in the log: the seeds
// sealed to the member in key-updates (whatever their verdict: a seed is
// only ever used to read, and what the rules reject is never written
// under), those sealed to its invites, the group keys it was handed, and
// everything chained under those.
func (b *builder) openKeys(sec *Secrets) map[event.ID]HeldKey {
	b.myKEMs = b.kemHistory(sec)
	held := map[event.ID]HeldKey{}
	updates := map[event.ID]*KeyUpdate{}
	for _, n := range b.nodes {
		ku, ok := n.op.(*KeyUpdate)
		if !ok {
			continue
		}
		id := n.e.ID() // the generation's name: its first part's ID
		if ku.Part > 0 {
			id = ku.First
		} else {
			updates[id] = ku
		}
		i := slices.IndexFunc(ku.Boxes, func(s SealedSeed) bool { return s.Member == sec.Member })
		if i < 0 || sec.KEM == nil {
			continue
		}
		// The seed was sealed to the KEM key this member had in the key
		// update's causal past; any other of its keys is tried after.
		for _, kem := range b.kemsFor(n, true) {
			k, err := keys.OpenSeed(keys.Scope{Pursuance: b.pursuance, Role: ku.Role}, ku.Gen, ku.Boxes[i].Box, sec.Member, kem)
			if err == nil {
				held[id] = HeldKey{Key: k, Update: id, Via: "sealed"}
				break
			}
		}
	}
	for _, inv := range sec.Invites {
		b.openInvite(inv, updates, held)
	}
	for _, k := range sec.Group {
		// A code names the generation, not the update: among concurrent
		// rotations to it, the one whose chain the seed opens.
		for id, ku := range updates {
			if _, ok := held[id]; ok || ku.Role != "" || ku.Gen != k.Gen {
				continue
			}
			if len(ku.Chain) > 0 {
				if _, err := keys.Unchain(&k, ku.Chain); err != nil {
					continue
				}
			}
			held[id] = HeldKey{Key: k, Update: id, Via: "code"}
		}
	}
	queue := make([]event.ID, 0, len(held))
	for id := range held {
		queue = append(queue, id)
	}
	slices.SortFunc(queue, event.ID.Compare)
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		ku := updates[id]
		if ku == nil || len(ku.Chain)+len(ku.Siblings) == 0 {
			continue
		}
		next := held[id].Key
		for _, sib := range ku.Siblings {
			if _, ok := held[sib.Prev]; ok {
				continue
			}
			if prev := updates[sib.Prev]; prev == nil || prev.Role != ku.Role || prev.Gen != sib.Gen {
				continue
			}
			if k, err := keys.UnchainSibling(&next, sib.Gen, sib.Prev, sib.Chain); err == nil {
				held[sib.Prev] = HeldKey{Key: k, Update: sib.Prev, Via: "chained"}
				queue = append(queue, sib.Prev)
			}
		}
		if _, ok := held[ku.Prev]; ok {
			continue
		}
		if prev := updates[ku.Prev]; prev == nil || prev.Role != ku.Role || prev.Gen+1 != ku.Gen {
			continue
		}
		prev, err := keys.Unchain(&next, ku.Chain)
		if err != nil {
			continue
		}
		held[ku.Prev] = HeldKey{Key: prev, Update: ku.Prev, Via: "chained"}
		queue = append(queue, ku.Prev)
	}
	return held
}

// inviteOp returns the invite an invite ID names: an invite event's op, or
// the one a proposal carries.
func (b *builder) inviteOp(id event.ID) (*Invite, bool) {
	p, ok := b.posOf(id)
	if !ok {
		return nil, false
	}
	n := b.nodes[p]
	op := n.op
	if pr, ok := op.(*Proposal); ok {
		inner, err := b.innerOf(n.e.ID(), pr)
		if err != nil {
			return nil, false
		}
		op = inner
	}
	in, ok := op.(*Invite)
	return in, ok
}

// openInvite opens the seeds sealed to an invite the member joined with.
func (b *builder) openInvite(inv InviteSecret, updates map[event.ID]*KeyUpdate, held map[event.ID]HeldKey) {
	in, ok := b.inviteOp(inv.Invite)
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
		ku := updates[box.Update]
		if _, ok := held[box.Update]; ok || ku == nil || ku.Role != box.Role {
			continue
		}
		k, err := keys.OpenSeed(keys.Scope{Pursuance: b.pursuance, Role: box.Role}, ku.Gen, box.Box, in.Key, kem)
		if err == nil {
			held[box.Update] = HeldKey{Key: k, Update: box.Update, Via: "invite"}
		}
	}
}

// openSealed replaces each sealed task op the held keys or sec's KEM key
// open with the op inside; what opens but holds no valid task op makes
// the event malformed. What does not open stays a *TaskSealed.
func (b *builder) openSealed() {
	scratch := new(bytes.Buffer)
	for _, n := range b.nodes {
		b.openNodeWith(n, scratch)
	}
}

// openNode opens n's op if it is sealed and this member's keys open it.
func (b *builder) openNode(n *node) { b.openNodeWith(n, nil) }

// openNodeWith is openNode, checking the canonical form of what it opens
// in scratch (decodeOp), which must be the caller's alone.
func (b *builder) openNodeWith(n *node, scratch *bytes.Buffer) {
	b.openBy(n, scratch, func(s *TaskSealed, ad []byte) (keys.ContentKey, bool) { return b.contentKey(n, s, ad) })
}

// openEarly opens n's sealed op as a Builder adds it, with the held keys
// hinted (Builder.HintHeld), through the wraps of the generations hinted
// only, in order, as contentKey tries them first: the op opened is the
// one openSealed would open with the held keys worked out from the log,
// which FinishFrom checks are the hinted ones. An event none of them
// opens waits for openSealed.
func (b *builder) openEarly(n *node) {
	if b.hint == nil {
		return
	}
	if b.canon == nil {
		b.canon = new(bytes.Buffer)
	}
	b.openBy(n, b.canon, func(s *TaskSealed, ad []byte) (keys.ContentKey, bool) { return b.wrappedKey(s, ad, b.hint) })
}

// openBy opens n's op if it is sealed and key finds its content key.
func (b *builder) openBy(n *node, scratch *bytes.Buffer, key func(s *TaskSealed, ad []byte) (keys.ContentKey, bool)) {
	s, ok := n.op.(*TaskSealed)
	if !ok || b.secrets == nil {
		return
	}
	ad := SealedAD(b.pursuance, *n.e.Author, n.e.Seq)
	ck, ok := key(s, ad)
	if !ok {
		return
	}
	op, err := openTask(s, ck, ad, scratch)
	if err != nil {
		// The content key opened (it is authenticated), so what it
		// seals is the author's: garbage is the author's fault.
		n.op, n.w().opErr = nil, fmt.Errorf("%w: %v", ErrBadOp, err)
		return
	}
	n.op, n.sealed = op, b.wrapsOf(s)
	b.reuseStrings(n)
}

// wrapsOf returns what the rules read, once it is opened, of a sealed
// task op: the generations its content key was wrapped under
// (checkSealing), without the keys, boxes and content, which nothing
// reads again (the op opened is kept). Events sealed under the same
// generations share one value (docs/fold.md, "What a state keeps").
func (b *builder) wrapsOf(s *TaskSealed) *TaskSealed {
	key := make([]byte, 0, len(s.Wraps)*len(event.ID{}))
	for _, w := range s.Wraps {
		key = append(key, w.Update[:]...)
	}
	b.cmu.Lock()
	defer b.cmu.Unlock()
	if w, ok := b.wraps[string(key)]; ok {
		return w
	}
	w := &TaskSealed{Wraps: make([]ContentWrap, len(s.Wraps))}
	for i, x := range s.Wraps {
		w.Wraps[i].Update = x.Update
	}
	if b.wraps == nil {
		b.wraps = make(map[string]*TaskSealed)
	}
	b.wraps[string(key)] = w
	return w
}

// wrappedKey unwraps the content key of s with the first of its wraps
// whose generation held gives (or this builder has an unwrapper of) that
// opens it.
func (b *builder) wrappedKey(s *TaskSealed, ad []byte, held map[event.ID]HeldKey) (keys.ContentKey, bool) {
	for _, w := range s.Wraps {
		b.cmu.Lock()
		u := b.unwrappers[w.Update]
		b.cmu.Unlock()
		if u == nil {
			h, ok := held[w.Update]
			if !ok {
				continue
			}
			var err error
			if u, err = keys.NewUnwrapper(&h.Key); err != nil {
				continue
			}
			b.cmu.Lock()
			if b.unwrappers == nil {
				b.unwrappers = make(map[event.ID]*keys.Unwrapper)
			}
			b.unwrappers[w.Update] = u
			b.cmu.Unlock()
		}
		if ck, err := u.Unwrap(ad, w.Key); err == nil {
			return ck, true
		}
	}
	return keys.ContentKey{}, false
}

// contentKey finds the content key of s, the body of n: unwrapped with a
// held generation, or opened from a box sealed to this member's KEM key
// (the one it had in n's causal past; boxes name nobody, so trying every
// retired key on every box would cost too much).
func (b *builder) contentKey(n *node, s *TaskSealed, ad []byte) (keys.ContentKey, bool) {
	sec := b.secrets
	if ck, ok := b.wrappedKey(s, ad, b.held); ok {
		return ck, true
	}
	if sec.KEM == nil {
		return keys.ContentKey{}, false
	}
	for _, kem := range b.kemsFor(n, false) {
		for _, box := range s.Boxes {
			pt, err := keys.OpenBox(kem, contentBoxPurpose(ad), box)
			if err == nil && len(pt) == len(keys.ContentKey{}) {
				return keys.ContentKey(pt), true
			}
		}
	}
	return keys.ContentKey{}, false
}

// kemStep is one KEM key this member published: from the event at seq on
// (its genesis, join or a member-key), its KEM key was pub.
type kemStep struct {
	seq uint64
	pub identity.KEMPublicKey
}

// kemHistory lists, in seq order, the KEM keys the member whose secrets
// sec are published in its own chain (whatever their verdicts: the
// question is which key others sealed to).
func (b *builder) kemHistory(sec *Secrets) []kemStep {
	ai, ok := b.authorIdx[sec.Member]
	if !ok {
		return nil
	}
	var out []kemStep
	for _, p := range b.byAuthor[ai] {
		n := b.nodes[p]
		var raw []byte
		switch op := n.op.(type) {
		case *Genesis:
			raw = op.KEM
		case *Join:
			raw = op.KEM
		case *MemberKey:
			raw = op.KEM
		default:
			continue
		}
		if k, err := identity.ParseKEMPublicKey(raw); err == nil {
			out = append(out, kemStep{n.e.Seq, k})
		}
	}
	return out
}

// kemsFor returns this member's KEM private keys to open what n seals to
// it: first the key it had published in n's causal past (what an honest
// sealer sealed to), then its current key; with all, every retired key
// after those.
func (b *builder) kemsFor(n *node, all bool) []*identity.KEMPrivateKey {
	sec := b.secrets
	if sec == nil {
		return nil
	}
	var out []*identity.KEMPrivateKey
	add := func(k *identity.KEMPrivateKey) {
		if k != nil && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if ai, ok := b.authorIdx[sec.Member]; ok {
		seen := n.seen(ai)
		i, _ := slices.BinarySearchFunc(b.myKEMs, seen+1, func(s kemStep, q uint64) int { return cmpU(s.seq, q) })
		if i > 0 {
			pub := b.myKEMs[i-1].pub
			for _, k := range append([]*identity.KEMPrivateKey{sec.KEM}, sec.Retired...) {
				if k.Public().Equal(pub) {
					add(k)
				}
			}
		}
	}
	add(sec.KEM)
	// A member with devices publishes its KEM keys in several chains
	// (devices.md §5): try them all rather than follow one chain.
	if all || len(b.memberChains[sec.Member]) > 1 {
		for i := len(sec.Retired) - 1; i >= 0; i-- {
			add(sec.Retired[i])
		}
	}
	return out
}
