package state

import (
	"errors"
	"fmt"
	"slices"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// The rules about keys: which generations content may be sealed under,
// who holds a generation, and what a key update must be (docs/keys.md,
// docs/rules.md §10.6).

// checkWraps checks that every wrap of a sealed task event is under the
// current generation, at the event's parents, of its scope (an older one
// may be held by a member removed since), and that no one holds that
// generation who is not entitled to it there (a stale key: rotate first).
// now is the claimed time of the event judged (an invite expired by then
// no longer vouches for whoever holds its code).
func (b *builder) checkWraps(a *authState, wraps []ContentWrap, now uint64) error {
	for _, w := range wraps {
		kg, ok := a.generation(w.Update)
		if !ok {
			return fmt.Errorf("sealed under %s, which is no key generation", w.Update.Short())
		}
		if cur, _ := a.current(kg.Role); cur.Update != w.Update {
			return fmt.Errorf("sealed under generation %d of %s, not the current one (%d)", kg.Gen, scopeName(kg.Role), cur.Gen)
		}
		if stale, _ := b.keyHolders(a, kg, now); len(stale) > 0 {
			return fmt.Errorf("sealed under generation %d of %s, which %s holds without being entitled to it: it must be rotated first", kg.Gen, scopeName(kg.Role), b.holderName(a, stale[0]))
		}
		if retired := retiredHolders(a, kg); len(retired) > 0 {
			return fmt.Errorf("sealed under generation %d of %s, which was sealed to a KEM key %s has since replaced: it must be rotated first", kg.Gen, scopeName(kg.Role), b.name(a, retired[0]))
		}
	}
	return nil
}

// keyHolders compares who holds generation kg with who is entitled to its
// scope in a: stale holds it and is not entitled, owed is entitled and does
// not hold it. A generation is held by the members its key-update sealed
// it to, by the members (current or former) who joined with an invite that
// sealed it, and by the code of an invite that sealed it once the invite
// is spent (inviteSpent): a copy of a used, expired or revoked code must
// open nothing written afterwards. now is the time expiry is judged at
// (0: expiry is not looked at).
func (b *builder) keyHolders(a *authState, kg KeyGen, now uint64) (stale, owed []identity.PublicKey) {
	holders := map[identity.PublicKey]bool{}
	for _, m := range kg.Members {
		holders[m] = true
	}
	sealedBy := func(inv *Invite) bool {
		return slices.ContainsFunc(inv.Boxes, func(s InviteSeal) bool { return s.Update == kg.Update })
	}
	for _, ms := range []map[identity.PublicKey]*Member{a.members, a.former} {
		for id, m := range ms {
			if holders[id] {
				continue
			}
			if j, ok := b.nodes[b.at(m.Since)].op.(*Join); ok {
				if inv, ok := b.inviteOp(j.Invite); ok && sealedBy(inv) {
					holders[id] = true
				}
			}
		}
	}
	for _, inv := range a.invites {
		if inviteSpent(inv, now) && sealedBy(&inv.op) {
			holders[inv.op.Key] = true
		}
	}
	entitled := a.entitled(kg.Role)
	for _, m := range entitled {
		if !holders[m] {
			owed = append(owed, m)
		}
	}
	for m := range holders {
		if _, ok := slices.BinarySearchFunc(entitled, m, identity.PublicKey.Compare); !ok {
			stale = append(stale, m)
		}
	}
	slices.SortFunc(stale, identity.PublicKey.Compare)
	return stale, owed
}

// retiredHolders returns the members to whom generation kg was sealed
// under a KEM key they have replaced since (a member-key event, in a): a
// thief of the old key, or of a keystore it was in, opens the generation,
// so nothing more may be sealed under it. Sorted.
func retiredHolders(a *authState, kg KeyGen) []identity.PublicKey {
	var out []identity.PublicKey
	for i, m := range kg.Members {
		if mem := a.members[m]; mem != nil && i < len(kg.KEMs) && kg.KEMs[i] != mem.KEMSince {
			out = append(out, m)
		}
	}
	return out // kg.Members is sorted
}

// inviteSpent reports whether an invite no longer stands for a newcomer
// to come: someone joined with it (its code may have been copied), it
// was revoked, or it had expired at now (0: not looked at). The keys it
// sealed are then stale in the hands of its code.
func inviteSpent(inv *inviteState, now uint64) bool {
	return inv.revoked || inv.used > 0 || inv.op.Expires != 0 && now > inv.op.Expires
}

// holderName names who holds a key without being entitled to it, for
// reasons: a member, or the code of an invite.
func (b *builder) holderName(a *authState, k identity.PublicKey) string {
	for _, inv := range a.invites {
		if inv.op.Key == k {
			return fmt.Sprintf("the code of invite %s", inv.id.Short())
		}
	}
	return b.name(a, k)
}

// scopeName names a key's scope in reasons.
func scopeName(role string) string {
	if role == "" {
		return "the group key"
	}
	return fmt.Sprintf("the key of %q", role)
}

// checkSealing checks how a task op was carried. In a pursuance that has
// a group key, a task op must be sealed; sealed, it must be wrapped under
// the current generation of the scopes that read the task (the group key
// if every member sees it, else each role it is visible or assigned to
// that has a key), of no other scope, and of every such scope the author
// is entitled to. (Boxes, sealed to readers outside the wrapped scopes —
// or, by an author outside a scope, to each of its members — name nobody,
// so they cannot be checked.)
func (b *builder) checkSealing(v view, n *node) error {
	a := v.auth
	if n.sealed == nil {
		if _, ok := a.current(""); ok {
			return errors.New("task content must be sealed (a task-sealed event) in a pursuance with keys")
		}
		return nil
	}
	if err := b.checkWraps(a, n.sealed.Wraps, n.e.Time); err != nil {
		return err
	}
	var vis []string
	var assignees []string
	switch op := n.op.(type) {
	case *TaskCreate:
		vis, assignees = n.vis, op.Assignees
	default:
		t := v.task(taskOf(op))
		if t == nil || t.Sealed {
			// permitted judged a missing task already; of a task whose
			// creation this member could not open, it does not know every
			// reader, so it cannot judge the wraps.
			return nil
		}
		vis = t.VisibleTo
		for _, as := range t.Assignees {
			assignees = append(assignees, as.String())
		}
		if op, ok := op.(*TaskAssign); ok {
			assignees = append(assignees, op.Assignee)
		}
	}
	want := map[string]bool{}
	if len(vis) == 0 {
		want[""] = true
	} else {
		for _, r := range vis {
			want[r] = true
		}
		for _, s := range assignees {
			if as, err := ParseAssignee(s); err == nil && as.IsRole() {
				want[as.Role] = true
			}
		}
	}
	got := map[string]bool{}
	for _, w := range n.sealed.Wraps {
		kg, _ := a.generation(w.Update)
		if !want[kg.Role] {
			return fmt.Errorf("sealed for %s, which does not read the task", scopeName(kg.Role))
		}
		got[kg.Role] = true
	}
	// A scope the author is not entitled to it seals to by boxes, to each
	// of its members, which nobody else can check.
	roles := a.roles(*n.member)
	for r := range want {
		entitled := r == "" || a.charter.CanSee(roles, charter.TaskFacts{VisibleTo: []string{r}})
		if _, keyed := a.current(r); keyed && !got[r] && entitled {
			return fmt.Errorf("not sealed for %s, which reads the task", scopeName(r))
		}
	}
	return nil
}

// checkInviteSeals checks that an invite's sealed seeds are the current
// generations, at the invite's parents, of the group key and the invite's
// role: an older generation could reach a member removed since.
func checkInviteSeals(a *authState, op *Invite) error {
	for _, box := range op.Boxes {
		cur, ok := a.current(box.Role)
		if !ok || cur.Update != box.Update {
			scope := "the group key"
			if box.Role != "" {
				scope = fmt.Sprintf("the key of %q", box.Role)
			}
			return fmt.Errorf("the invite seals a generation of %s that is not the current one", scope)
		}
	}
	return nil
}

// checkKeyUpdate checks a new key generation: who may publish it, that it
// is the next generation, and that its seed is sealed to exactly the
// members entitled to it at the event's parents.
func (b *builder) checkKeyUpdate(a *authState, n *node, op *KeyUpdate, roles []string) error {
	c := a.charter
	scope := "the group key"
	if op.Role != "" {
		scope = fmt.Sprintf("the key of %q", op.Role)
		if c.Rank(op.Role) < 0 {
			return fmt.Errorf("no role %q in the charter", op.Role)
		}
	}
	// Any member may rotate the group key, and those entitled to a role's
	// key (its holders, and the roles that see its tasks) that key: a
	// rotation gives nobody anything (the seed goes to exactly the
	// entitled members), and keys must move with no particular member
	// online. Rotating a role's key from outside needs rotate-keys.
	if op.Role != "" && !c.CanSee(roles, charter.TaskFacts{VisibleTo: []string{op.Role}}) {
		if err := c.Allows(roles, charter.RotateKeys, nil, nil); err != nil {
			return fmt.Errorf("%w (those who read a role's tasks may rotate its key)", err)
		}
	}
	var earlier []identity.PublicKey // members sealed to by the earlier parts
	if op.Part > 0 {
		pg, ok := a.partial[op.First]
		switch {
		case !ok:
			return fmt.Errorf("%s: part %d of a key update %s that is not in progress", scope, op.Part, op.First.Short())
		case pg.author != *n.member:
			return fmt.Errorf("%s: part %d of another member's key update", scope, op.Part)
		case pg.kg.Role != op.Role || pg.kg.Gen != op.Gen || pg.parts != op.Parts:
			return fmt.Errorf("%s: part %d does not match its first part", scope, op.Part)
		case pg.next != op.Part:
			return fmt.Errorf("%s: part %d, but part %d comes next", scope, op.Part, pg.next)
		case op.Boxes[0].Member.Compare(pg.kg.Members[len(pg.kg.Members)-1]) <= 0:
			return fmt.Errorf("%s: part %d repeats or precedes the members of the parts before it", scope, op.Part)
		}
		earlier = pg.kg.Members
	} else if want := a.currentGen(op.Role) + 1; op.Gen != want {
		return fmt.Errorf("%s: generation %d, but the next is %d", scope, op.Gen, want)
	}
	if op.Role != "" && len(op.Chain)+len(op.Siblings) > 0 && c.Keys.History == charter.HistoryFromJoin {
		return fmt.Errorf("%s: the charter keeps no history (history: from-join), so nothing may be chained", scope)
	}
	for _, sib := range op.Siblings {
		i := slices.IndexFunc(a.keys[op.Role], func(k KeyGen) bool { return k.Update == sib.Prev })
		if i < 0 || a.keys[op.Role][i].Gen != sib.Gen {
			return fmt.Errorf("%s: chains %s as generation %d, which it is not", scope, sib.Prev.Short(), sib.Gen)
		}
	}
	if !op.Prev.IsZero() {
		i := slices.IndexFunc(a.keys[op.Role], func(k KeyGen) bool { return k.Update == op.Prev })
		if i < 0 || a.keys[op.Role][i].Gen != op.Gen-1 {
			return fmt.Errorf("%s: chains %s, which is not a generation %d of it", scope, op.Prev.Short(), op.Gen-1)
		}
	}
	want := a.entitled(op.Role)
	got := slices.Clone(earlier)
	for _, box := range op.Boxes {
		got = append(got, box.Member)
	}
	for _, m := range got {
		if _, ok := slices.BinarySearchFunc(want, m, identity.PublicKey.Compare); !ok {
			return fmt.Errorf("seals %s to %s, who is not entitled to it", scope, b.name(a, m))
		}
	}
	// Each seed goes to the KEM key its member has at the parents: record
	// which, so that a later member-key of the member makes it stale.
	n.w().kems = n.kems[:0]
	for _, box := range op.Boxes {
		var since event.ID
		if m := a.members[box.Member]; m != nil {
			since = m.KEMSince
		}
		n.w().kems = append(n.kems, since)
	}
	if op.Parts > 1 && op.Part+1 < op.Parts {
		return nil // the last part is checked for whom the generation leaves out
	}
	for _, m := range want {
		if _, ok := slices.BinarySearchFunc(got, m, identity.PublicKey.Compare); !ok {
			return fmt.Errorf("%s leaves out %s, who is entitled to it", scope, b.name(a, m))
		}
	}
	return nil
}
