package state

import (
	"slices"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// isAuthority reports whether an op changes the authority state (the
// kind table).
func isAuthority(op Op) bool { return kindOf(op.Kind()).authority }

// apply folds an accepted node into the current state.
func (b *builder) apply(p int32, n *node) {
	op := n.op
	if isAuthority(op) {
		b.applyAuth(b.auth, n, true)
		b.authRecs = append(b.authRecs, p)
		b.authMax[n.author] = max(b.authMax[n.author], n.e.Seq)
		if len(b.authRecs)%snapEvery == 0 {
			b.snaps = append(b.snaps, authSnap{upto: len(b.authRecs), max: slices.Clone(b.authMax), st: b.auth.clone()})
		}
		if r := restrictionOf(b.auth, effectiveOp(n)); r != nil {
			if _, isApproval := op.(*Approval); !isApproval || n.exec != nil {
				n.w().restrict = r
				switch {
				case r.device:
					for _, k := range n.revokes {
						b.devRestrictBy[k] = append(b.devRestrictBy[k], p)
					}
				case !r.invite.IsZero():
					b.revokedBy[r.invite] = append(b.revokedBy[r.invite], p)
				case !r.link.IsZero():
					b.endedBy[r.link] = append(b.endedBy[r.link], p)
				default:
					b.restrictBy[r.target] = append(b.restrictBy[r.target], p)
				}
			}
		}
		if j, ok := op.(*Join); ok {
			b.joinsBy[j.Invite] = append(b.joinsBy[j.Invite], p)
		}
		op = n.exec // nil: carried proposals are authority ops (charter.Action.Quorumable)
	}
	b.applyTask(p, n, op)
}

// applyTask folds what an accepted node at p does to tasks (op: its own
// op, or the proposal an approval carried), and records it as an event of
// the task.
func (b *builder) applyTask(p int32, n *node, op Op) {
	var id event.ID
	switch o := op.(type) {
	case *TaskCreate:
		id = n.e.ID()
		t := newTask(&n.e, o, n.vis)
		t.Creator = *n.member
		b.tasks.set(id, t)
	case *TaskSealed:
		id = o.Task
		if id.IsZero() {
			id = n.e.ID()
			t := newSealedTask(&n.e)
			t.Creator = *n.member
			b.tasks.set(id, t)
		}
	case *LinkReceive:
		// Every accepted receive is a record of the task, so that a view
		// holding any of them has the task (the one that made it in the
		// state may be concurrent with the view's event); only the first
		// in log order makes it.
		x := b.embeddedOf(n, o)
		id = x.ev.ID()
		if n.inert == "" {
			b.tasks.set(id, b.newReceivedTask(n, x, n.vis))
		}
	case *Handoff, *LinkReport:
		return
	case *NodeAddress:
		b.applyNodeAddress(n, o)
		return
	case nil:
		return
	default:
		id = taskOf(op)
		if t := b.tasks.at(id); t != nil && n.inert == "" {
			b.applyTaskOp(t, n, op)
		}
	}
	if id.IsZero() {
		return
	}
	b.taskRecs.set(id, append(b.taskRecs.at(id), p))
	if t := b.tasks.at(id); t != nil {
		t.touch(n.author, n.e.Seq)
	}
}

// newTask makes the task a task-create event founds.
func newTask(e *head, c *TaskCreate, visibleTo []string) *Task {
	t := &Task{
		ID:        e.ID(),
		Creator:   *e.Author,
		Parent:    c.Parent,
		Title:     c.Title,
		Body:      c.Body,
		Due:       c.Due,
		VisibleTo: slices.Sorted(slices.Values(visibleTo)),
		Created:   e.Time,
		Updated:   e.Time,
	}
	t.VisibleTo = slices.Compact(t.VisibleTo)
	for _, a := range c.Assignees {
		t.addTag(a, e.ID())
	}
	t.syncAssignees()
	return t
}

// newSealedTask makes the task a task-create this member cannot open
// founds: it exists, and events on it this member can open apply to it.
func newSealedTask(e *head) *Task {
	return &Task{ID: e.ID(), Creator: *e.Author, Sealed: true, Created: e.Time, Updated: e.Time}
}

// applyTaskOp applies an accepted op of node n to task t. Fields are
// last-writer-wins in log order; assignees are an add-wins set.
func (b *builder) applyTaskOp(t *Task, n *node, op Op) {
	switch o := op.(type) {
	case *TaskEdit:
		if o.Title != nil {
			t.Title = *o.Title
		}
		if o.Body != nil {
			t.Body = *o.Body
		}
		if o.Due != nil {
			t.Due = *o.Due
		}
	case *TaskMove:
		t.Parent = o.Parent
	case *TaskAssign:
		t.addTag(o.Assignee, n.e.ID())
		t.syncAssignees()
		if b := o.Brief; b != nil && t.Sealed {
			// This member could not open the creation: the brief is all
			// it knows of the task's text and who reads it.
			t.Title, t.Body = b.Title, b.Body
			t.VisibleTo = slices.Compact(slices.Sorted(slices.Values(b.VisibleTo)))
		}
	case *TaskUnassign:
		// Remove the adds this unassign saw; concurrent adds survive.
		if ts := t.assigned[o.Assignee]; ts != nil {
			ts.tags = slices.DeleteFunc(ts.tags, func(tag event.ID) bool {
				return b.inPast(b.nodes[b.at(tag)], n)
			})
			if len(ts.tags) == 0 {
				delete(t.assigned, o.Assignee)
			}
		}
		t.syncAssignees()
	case *TaskStatus:
		t.Status = o.Status
	case *TaskComment:
		t.Comments = append(t.Comments, Comment{ID: n.e.ID(), Author: *n.member, Text: o.Text, Time: n.e.Time})
	case *TaskArchive:
		t.Archived = o.Archived
	case *TaskAttach:
		t.Files = append(t.Files, File{ID: n.e.ID(), Author: *n.member, Time: n.e.Time, TaskAttach: *o})
	default:
		return
	}
	t.Updated = max(t.Updated, n.e.Time)
}

// applyAuth folds an accepted authority node into a. With record, a is the
// current state and the node's outcome (the proposal an approval carried)
// is recorded on it; without, a is a state being rebuilt at some event's
// parents and the outcome there is worked out afresh.
func (b *builder) applyAuth(a *authState, n *node, record bool) {
	e := &n.e
	author := *n.member // the member the event speaks for (its device's)
	switch op := n.op.(type) {
	case *Genesis:
		c, err := b.charterOf(op.Charter)
		if err != nil {
			return // decide rejected it already
		}
		a.setCharter(c, op.Charter)
		pub, _ := b.publicOf(n, op.Name, op.KEM, op.Binding)
		m := &Member{ID: author, Name: op.Name, Roles: []string{c.FounderRole()}, KEM: pub.KEM, Binding: pub.KEMBinding, KEMSince: e.ID(), Since: e.ID()}
		a.addMember(m)
		applyRootLine(a, m, *e.Author, op.Root, e.ID())
	case *Join:
		// The join was judged against the invite as its parents saw it
		// (n.invite). The state being folded may lack it: an invite
		// carried by a quorum in the joiner's view may not be carried yet
		// in log order.
		role, inviter := n.inviteUsed().op.Role, n.inviteUsed().author
		if inv := a.invites[op.Invite]; inv != nil {
			inv.used++
			role, inviter = inv.op.Role, inv.author
		}
		pub, _ := b.publicOf(n, op.Name, op.KEM, op.Binding)
		delete(a.devices, author) // a member who rejoins starts with its root alone
		m := &Member{ID: author, Name: op.Name, Roles: a.rankRoles([]string{role}), KEM: pub.KEM, Binding: pub.KEMBinding, KEMSince: e.ID(), Since: e.ID(), InvitedBy: inviter}
		a.addMember(m)
		applyRootLine(a, m, *e.Author, op.Root, e.ID())
	case *Leave:
		a.dropMember(author)
		a.dropDevices(author, e.ID())
	case *MemberKey:
		if m := a.members[author]; m != nil {
			k, err := identity.ParseKEMPublicKey(op.KEM)
			if err != nil {
				return // decide rejected it already
			}
			m.KEM, m.KEMSince = k, e.ID()
			copy(m.Binding[:], op.Binding)
			m.BindingBy = identity.PublicKey{}
			if *e.Author != author {
				m.BindingBy = *e.Author
			}
		}
	case *Device:
		applyDevice(a, e.ID(), author, *e.Author, op, n.revokes)
	case *KeyUpdate:
		applyKeyUpdate(a, e.ID(), author, op, n.kems)
	case *Invite:
		a.invites[e.ID()] = &inviteState{id: e.ID(), author: author, op: *op}
	case *Proposal:
		inner, err := b.innerOf(e.ID(), op)
		if err != nil {
			return
		}
		a.proposals[e.ID()] = &proposal{id: e.ID(), author: author, op: inner, action: actionOf(inner),
			approvals: map[identity.PublicKey]bool{author: true}}
	case *Approval:
		pr := a.proposals[op.Proposal]
		if pr == nil {
			return
		}
		pr.approvals[author] = true
		exec, note := b.carry(a, n, pr)
		if record {
			if exec != nil || note != "" {
				n.w().exec, n.w().execNote = exec, note
			}
		}
		if exec != nil || note != "" {
			delete(a.proposals, op.Proposal)
		}
		if exec != nil {
			// The effect is named by the proposal, whichever approval
			// carries it: an invite carried by a quorum is the proposal's.
			b.applyAuthOp(a, pr.id, pr.author, exec)
		}
	default:
		b.applyAuthOp(a, e.ID(), author, n.op)
	}
}

// applyAuthOp applies an authority op. id names its effect (the event
// itself, or for a carried proposal the proposal) and author is the member
// it acts for (the proposer of a carried proposal).
func (b *builder) applyAuthOp(a *authState, id event.ID, author identity.PublicKey, op Op) {
	switch op := op.(type) {
	case *CharterAmend:
		if c, err := b.charterOf(op.Charter); err == nil {
			a.setCharter(c, op.Charter)
		}
	case *RoleAssign:
		if m := a.members[op.Member]; m != nil {
			m.Roles = a.rankRoles(append(m.Roles, op.Role))
		}
	case *RoleRevoke:
		if m := a.members[op.Member]; m != nil {
			m.Roles = slices.DeleteFunc(m.Roles, func(r string) bool { return r == op.Role })
		}
	case *Remove:
		a.dropMember(op.Member)
		a.dropDevices(op.Member, id)
	case *Invite:
		a.invites[id] = &inviteState{id: id, author: author, op: *op}
	case *InviteRevoke:
		if inv := a.invites[op.Invite]; inv != nil {
			inv.revoked = true
		}
	case *LinkOffer, *LinkAccept, *LinkEnd:
		applyLink(a, id, op)
	case *Profile:
		applyProfile(a, id, op)
	case *Succession, *Succeed:
		applySuccession(a, id, author, op)
	case *Relays:
		for _, u := range op.Add {
			a.relays[u] = true
		}
		for _, u := range op.Remove {
			delete(a.relays, u)
		}
	}
}

// applyKeyUpdate records an accepted key update (or part of one) in a.
// kems names, for each box, the event that published the KEM key it was
// sealed to (KeyGen.KEMs). Key updates are never carried by a proposal.
func applyKeyUpdate(a *authState, id event.ID, author identity.PublicKey, op *KeyUpdate, kems []event.ID) {
	var members []identity.PublicKey
	for _, box := range op.Boxes {
		members = append(members, box.Member)
	}
	kems = slices.Clone(kems)
	var chained []event.ID
	if !op.Prev.IsZero() {
		chained = append(chained, op.Prev)
	}
	for _, sib := range op.Siblings {
		chained = append(chained, sib.Prev)
	}
	switch {
	case op.Parts <= 1:
		a.keys[op.Role] = append(a.keys[op.Role], KeyGen{Role: op.Role, Gen: op.Gen, Update: id, Members: members, KEMs: kems, Chained: chained})
	case op.Part == 0:
		a.partial[id] = &partialGen{kg: KeyGen{Role: op.Role, Gen: op.Gen, Update: id, Members: members, KEMs: kems, Chained: chained}, author: author, parts: op.Parts, next: 1}
	default:
		pg := a.partial[op.First]
		if pg == nil {
			return // decide rejected it already
		}
		pg.kg.Members = append(pg.kg.Members, members...)
		pg.kg.KEMs = append(pg.kg.KEMs, kems...)
		pg.next++
		if pg.next == pg.parts {
			a.keys[op.Role] = append(a.keys[op.Role], pg.kg)
			delete(a.partial, op.First)
		}
	}
}
