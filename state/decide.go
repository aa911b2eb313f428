package state

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// view is the state an event is judged against: the authority state and
// the tasks as of its causal parents.
type view struct {
	auth *authState
	task func(event.ID) *Task
}

// decide returns nil if the node at p is valid: permitted by the charter
// at its parents and not invalidated by a concurrent removal, demotion or
// invite revocation. It may also settle fold-level outcomes (an invite's
// last use, a move with no effect); whether an approval carries its
// proposal is settled when it is applied (carry).
func (b *builder) decide(p int32, n *node) error {
	e := &n.e
	if p == 0 || e.Kind == event.KindGenesis {
		if p != 0 || e.ID() != b.pursuance || e.Kind != event.KindGenesis {
			return errors.New("a pursuance has exactly one genesis event, its first")
		}
	}
	if s, ok := b.forks[*e.Author]; ok && e.Seq >= s {
		return fmt.Errorf("void: the author signed two different events at seq %d; its events from there on are not trusted", s)
	}
	if n.outsider {
		// Judged by header alone, so that the verdict is the same with or
		// without the body (a member drops such bodies: State.Garbage).
		return fmt.Errorf("not permitted: %s is not a member", b.name(b.auth, *n.member))
	}
	if n.opErr != nil {
		return n.opErr
	}
	v := b.viewAt(n)
	if err := b.checkDeviceCurrent(v.auth, n); err != nil {
		return err
	}
	roles := v.auth.roles(*n.member)
	_, member := v.auth.members[*n.member]
	if err := b.permitted(v, n, n.op, *n.member, member, roles, false); err != nil {
		return err
	}
	if IsTaskOp(n.op) {
		if err := b.checkSealing(v, n); err != nil {
			return err
		}
	}
	if err := b.strongRemove(p, n, v, roles); err != nil {
		return err
	}
	return b.settle(n)
}

// viewAt returns the state at n's parents: the current state when n has
// seen every accepted event it could depend on, else one rebuilt from the
// accepted events in n's causal past.
func (b *builder) viewAt(n *node) view {
	auth := b.auth
	for i, s := range b.authMax {
		if s > n.seen(uint32(i)) {
			auth = b.authAt(n)
			break
		}
	}
	return view{auth: auth, task: func(id event.ID) *Task { return b.taskAt(n, id) }}
}

// authAt rebuilds the authority state from the accepted authority events in
// n's causal past.
func (b *builder) authAt(n *node) *authState {
	a, from := newAuthState(), 0
	for i := len(b.snaps) - 1; i >= 0; i-- {
		s := &b.snaps[i]
		seen := true
		for j, m := range s.max {
			if m > n.seen(uint32(j)) {
				seen = false
				break
			}
		}
		if seen {
			a, from = s.st.clone(), s.upto
			break
		}
	}
	for _, p := range b.authRecs[from:] {
		if x := b.nodes[p]; b.inPast(x, n) {
			b.applyAuth(a, x, false)
		}
	}
	return a
}

// taskAt returns the task as of n's causal past, or nil if its creation is
// not there.
func (b *builder) taskAt(n *node, id event.ID) *Task {
	t := b.tasks.at(id)
	if t == nil {
		return nil
	}
	all := true
	for _, x := range t.touched {
		if x.seq > n.seen(x.author) {
			all = false
			break
		}
	}
	if all {
		return t
	}
	var at *Task
	for _, p := range b.taskRecs.at(id) {
		x := b.nodes[p]
		if !b.inPast(x, n) {
			continue
		}
		if at == nil {
			switch c := effectiveOp(x).(type) {
			case *TaskCreate:
				at = newTask(&x.e, c, t.VisibleTo)
				at.Creator = *x.member
				continue
			case *LinkReceive:
				at = b.newReceivedTask(x, b.embeddedOf(x, c), t.VisibleTo)
				continue
			case *TaskSealed:
				if c.Task.IsZero() {
					at = newSealedTask(&x.e)
					at.Creator = *x.member
					continue
				}
			}
			return nil
		}
		if x.inert == "" {
			b.applyTaskOp(at, x, effectiveOp(x))
		}
	}
	return at
}

// effectiveOp is what an accepted node does: its own op, or the proposal
// an approval carried.
func effectiveOp(n *node) Op {
	if n.exec != nil {
		return n.exec
	}
	return n.op
}

// actionOf names the charter permission an op needs (the kind table).
func actionOf(op Op) charter.Action { return kindOf(op.Kind()).action }

// permitted checks op by author against the view. roles and member are
// the author's standing (the strong-remove check passes reduced ones).
// carried is true when op is a proposal being carried by its quorum: the
// quorum is then met and not asked for again.
func (b *builder) permitted(v view, n *node, op Op, author identity.PublicKey, member bool, roles []string, carried bool) error {
	a := v.auth
	e := &n.e
	switch op := op.(type) {
	case *Genesis:
		return b.checkGenesis(n, op)
	case *Join:
		return b.checkJoin(a, n, op)
	}
	if !member {
		return fmt.Errorf("not permitted: %s is not a member", b.name(a, author))
	}
	c := a.charter
	act := actionOf(op)
	if act != "" && !carried {
		if q, ok := c.QuorumFor(act); ok {
			if need := b.neededAt(a, q, n); need > 1 || !slices.Contains(roles, q.Of) {
				return fmt.Errorf("not permitted alone: %s needs %d approvals from %q; propose it", act, need, q.Of)
			}
		}
	}
	switch op := op.(type) {
	case *CharterAmend:
		if _, err := b.charterOf(op.Charter); err != nil {
			return fmt.Errorf("the amended charter is invalid: %v", err)
		}
		return c.Allows(roles, act, nil, nil)
	case *RoleAssign:
		m, ok := a.members[op.Member]
		switch {
		case !ok:
			return fmt.Errorf("%s is not a member", b.name(a, op.Member))
		case c.Rank(op.Role) < 0:
			return fmt.Errorf("no role %q in the charter", op.Role)
		case m.HasRole(op.Role):
			return fmt.Errorf("%s already holds %q", m.Name, op.Role)
		}
		return c.Allows(roles, act, []string{op.Role}, nil)
	case *RoleRevoke:
		m, ok := a.members[op.Member]
		switch {
		case !ok:
			return fmt.Errorf("%s is not a member", b.name(a, op.Member))
		case !m.HasRole(op.Role):
			return fmt.Errorf("%s does not hold %q", m.Name, op.Role)
		case op.Role == c.FounderRole() && a.holders(op.Role) == 1:
			return fmt.Errorf("%s is the last %q", m.Name, op.Role)
		}
		return c.Allows(roles, act, []string{op.Role}, nil)
	case *Remove:
		m, ok := a.members[op.Member]
		switch {
		case !ok:
			return fmt.Errorf("%s is not a member", b.name(a, op.Member))
		case op.Member == author:
			return errors.New("a member cannot remove itself; it leaves")
		case m.HasRole(c.FounderRole()) && a.holders(c.FounderRole()) == 1:
			return fmt.Errorf("%s is the last %q", m.Name, c.FounderRole())
		}
		return c.Allows(roles, act, m.Roles, nil)
	case *Leave:
		if slices.Contains(roles, c.FounderRole()) && a.holders(c.FounderRole()) == 1 && len(a.members) > 1 {
			return fmt.Errorf("the last %q may not leave; give the role to someone first", c.FounderRole())
		}
		return nil
	case *Invite:
		if c.Rank(op.Role) < 0 {
			return fmt.Errorf("no role %q in the charter", op.Role)
		}
		if err := op.Key.Check(); err != nil {
			return fmt.Errorf("invite key: %v", err)
		}
		if err := checkInviteSeals(a, op); err != nil {
			return err
		}
		return c.Allows(roles, act, []string{op.Role}, nil)
	case *InviteRevoke:
		inv, ok := a.invites[op.Invite]
		if !ok {
			return fmt.Errorf("no invite %s", op.Invite.Short())
		}
		if inv.author == author {
			return nil
		}
		return c.Allows(roles, charter.Invite, []string{inv.op.Role}, nil)
	case *Proposal:
		inner, err := b.innerOf(e.ID(), op)
		if err != nil {
			return fmt.Errorf("proposal: %v", err)
		}
		if _, ok := c.QuorumFor(actionOf(inner)); !ok {
			return fmt.Errorf("%s needs no quorum; do it directly", op.Action)
		}
		if err := b.permitted(v, n, inner, author, member, roles, true); err != nil {
			return fmt.Errorf("proposal: %w", err)
		}
		return nil
	case *Approval:
		pr, ok := a.proposals[op.Proposal]
		switch {
		case !ok:
			return fmt.Errorf("no open proposal %s", op.Proposal.Short())
		case pr.approvals[author]:
			return errors.New("already approved")
		}
		q, ok := c.QuorumFor(pr.action)
		if !ok {
			return fmt.Errorf("the charter no longer puts %s under a quorum; proposal %s is moot", pr.action, op.Proposal.Short())
		}
		if !slices.Contains(roles, q.Of) {
			return fmt.Errorf("not permitted: only %q approves %s", q.Of, pr.action)
		}
		if at, expired := b.proposalExpiry(a, pr, n); expired {
			return fmt.Errorf("proposal %s expired %s", op.Proposal.Short(), stamp(at))
		}
		return nil
	case *TaskCreate:
		if err := c.Allows(roles, act, nil, nil); err != nil {
			return err
		}
		if !op.Parent.IsZero() {
			pt := v.task(op.Parent)
			if pt == nil || !c.CanSee(roles, b.facts(pt, author, roles)) {
				return fmt.Errorf("no parent task %s", op.Parent.Short())
			}
		}
		for _, r := range op.VisibleTo {
			if c.Rank(r) < 0 {
				return fmt.Errorf("no role %q in the charter", r)
			}
		}
		if op.VisibleTo != nil {
			n.w().vis = op.VisibleTo
		}
		if len(n.vis) == 0 {
			if v := c.NewTaskVisibility(roles); v != nil {
				n.w().vis = v
			}
		}
		for _, s := range op.Assignees {
			if err := b.checkAssignee(a, roles, s); err != nil {
				return err
			}
		}
		return nil
	case *KeyUpdate:
		return b.checkKeyUpdate(a, n, op, roles)
	case *MemberKey:
		// Any member publishes its own KEM key: what it changes is where
		// seeds sealed to this member go from now on.
		k, err := identity.ParseKEMPublicKey(op.KEM)
		if err != nil {
			return fmt.Errorf("member key: %v", err)
		}
		if err := identity.VerifyKEMBinding(*n.e.Author, k, op.Binding); err != nil {
			return fmt.Errorf("member key: %v", err)
		}
		if a.members[author].KEM.Equal(k) {
			return fmt.Errorf("member key: that is already the KEM key of %s", b.name(a, author))
		}
		// The member's other devices must learn the new key.
		return b.checkNewMemberKEM(a, a.members[author], *n.e.Author, op.KEM, op.Binding, op.Boxes, a.currentDevices(author))
	case *Device:
		return b.checkDevice(a, n, op, author)
	case *Relays:
		return c.Allows(roles, act, nil, nil)
	case *Succession:
		return b.permittedSuccession(a, n, op, roles)
	case *Succeed:
		return b.permittedSucceed(a, n, op, author, roles)
	case *NodeAddress:
		// Any member announces its own node (the op names no one else).
		return nil
	case *Profile:
		if err := c.Allows(roles, act, nil, nil); err != nil {
			return err
		}
		return b.permittedProfile(a, op)
	case *LinkOffer, *LinkAccept, *LinkEnd, *Handoff, *LinkReceive, *LinkReport:
		return b.permittedLink(v, n, op, author, roles)
	case *TaskSealed:
		// Sealed for others: what this member can judge is that it is
		// sealed under current generations, and that the task exists.
		if err := b.checkWraps(a, op.Wraps, e.Time); err != nil {
			return err
		}
		if !op.Task.IsZero() && v.task(op.Task) == nil {
			return fmt.Errorf("no task %s", op.Task.Short())
		}
		n.w().inert = "sealed: none of your keys opens it"
		return nil
	case Opaque:
		if act == "" {
			return fmt.Errorf("%s events are not understood by this version", op.Kind())
		}
		return c.Allows(roles, act, nil, nil)
	}
	// The rest act on an existing task.
	id := taskOf(op)
	t := v.task(id)
	if t == nil {
		return fmt.Errorf("no task %s", id.Short())
	}
	f := b.facts(t, author, roles)
	if !c.CanSee(roles, f) {
		return fmt.Errorf("no task %s", id.Short())
	}
	switch op := op.(type) {
	case *TaskAssign:
		// Assigning again is allowed: the add-wins set keeps one more tag,
		// which a concurrent unassign does not see.
		return b.checkAssignee(a, roles, op.Assignee)
	case *TaskUnassign:
		if !t.isAssigned(op.Assignee) {
			return fmt.Errorf("not assigned to %s", b.assigneeName(a, op.Assignee))
		}
		as, _ := ParseAssignee(op.Assignee)
		return c.Allows(roles, act, b.assigneeRoles(a, as), nil)
	case *TaskMove:
		if !op.Parent.IsZero() {
			pt := v.task(op.Parent)
			if pt == nil || !c.CanSee(roles, b.facts(pt, author, roles)) {
				return fmt.Errorf("no parent task %s", op.Parent.Short())
			}
			if op.Parent == id {
				return errors.New("a task cannot be its own parent")
			}
		}
	}
	return c.Allows(roles, act, nil, &f)
}

// checkAssignee checks that s names a member or role and that roles may
// assign tasks to it.
func (b *builder) checkAssignee(a *authState, roles []string, s string) error {
	as, err := ParseAssignee(s)
	if err != nil {
		return fmt.Errorf("%v", err)
	}
	if as.IsRole() {
		if a.charter.Rank(as.Role) < 0 {
			return fmt.Errorf("no role %q in the charter", as.Role)
		}
	} else if _, ok := a.members[as.Member]; !ok {
		return fmt.Errorf("%s is not a member", b.name(a, as.Member))
	}
	return a.charter.Allows(roles, charter.AssignTask, b.assigneeRoles(a, as), nil)
}

// assigneeRoles returns the roles an assignment to as concerns.
func (b *builder) assigneeRoles(a *authState, as Assignee) []string {
	if as.IsRole() {
		return []string{as.Role}
	}
	return a.roles(as.Member)
}

// facts describes a task from an actor's side, for the charter.
func (b *builder) facts(t *Task, actor identity.PublicKey, roles []string) charter.TaskFacts {
	return taskFacts(t, actor, roles)
}

// taskFacts is what the charter's rules read of t for actor, who holds
// roles (builder.facts; State.CanSee of a state not folded yet).
func taskFacts(t *Task, actor identity.PublicKey, roles []string) charter.TaskFacts {
	return charter.TaskFacts{VisibleTo: t.VisibleTo, AssignedToActor: t.AssignedTo(actor, roles), CreatedByActor: t.Creator == actor}
}

// TaskOf returns the task a task op (other than a task-create) acts on,
// zero for any other op.
func TaskOf(op Op) event.ID { return taskOf(op) }

// taskOf returns the task an op acts on.
func taskOf(op Op) event.ID {
	if t, ok := op.(taskOp); ok {
		return t.target()
	}
	return event.ID{}
}

func (b *builder) checkGenesis(n *node, g *Genesis) error {
	if _, err := b.charterOf(g.Charter); err != nil {
		return fmt.Errorf("the charter is invalid: %v", err)
	}
	if _, err := b.publicOf(n, g.Name, g.KEM, g.Binding); err != nil {
		return fmt.Errorf("founder: %v", err)
	}
	return b.checkLine(nil, n, g.Root)
}

// checkLine checks the root line a genesis or join carries: it leads
// from the member the event speaks for to its author, and its keys are
// free (a is nil for a genesis: nothing is used yet).
func (b *builder) checkLine(a *authState, n *node, line []Device) error {
	if len(line) == 0 {
		return nil
	}
	m, err := verifyRootLine(line, *n.e.Author)
	if err != nil {
		return err
	}
	if m != *n.member {
		return fmt.Errorf("root line: its author %s has signed before as %s", n.e.Author.Short(), n.member.Short())
	}
	if a != nil {
		return checkLineKeys(a, m, line)
	}
	return nil
}

func publicOf(id identity.PublicKey, name string, kem, binding []byte) (identity.Public, error) {
	p := identity.Public{Name: name, ID: id}
	k, err := identity.ParseKEMPublicKey(kem)
	if err != nil {
		return p, err
	}
	p.KEM = k
	if len(binding) != identity.SignatureSize {
		return p, errors.New("bad KEM binding")
	}
	copy(p.KEMBinding[:], binding)
	return p, p.Verify()
}

// checkJoin checks a join against the invite it uses.
func (b *builder) checkJoin(a *authState, n *node, j *Join) error {
	e := &n.e
	if _, ok := a.members[*n.member]; ok {
		return errors.New("already a member")
	}
	if err := b.checkLine(a, n, j.Root); err != nil {
		return err
	}
	inv, ok := a.invites[j.Invite]
	switch {
	case !ok:
		return fmt.Errorf("no invite %s", j.Invite.Short())
	case inv.revoked:
		return fmt.Errorf("invite %s was revoked", j.Invite.Short())
	case inv.op.Expires != 0 && e.Time > inv.op.Expires:
		return fmt.Errorf("invite %s had expired", j.Invite.Short())
	case a.charter.Rank(inv.op.Role) < 0:
		return fmt.Errorf("invite %s is into role %q, which the charter no longer has", j.Invite.Short(), inv.op.Role)
	}
	if _, ok := a.members[inv.author]; !ok {
		return fmt.Errorf("invite %s is void: its author is no longer a member", j.Invite.Short())
	}
	if w, saw := b.expiryWitness(a, n, inv.op.Expires); w != nil && saw {
		return b.expiredReason(a, j.Invite, w, true)
	}
	iv := *inv
	n.w().invite = &iv
	if !inv.op.Key.Verify(JoinMessage(b.pursuance, j.Invite, *n.member), j.Proof) {
		return errors.New("the invite proof does not verify")
	}
	if _, err := b.publicOf(n, j.Name, j.KEM, j.Binding); err != nil {
		return fmt.Errorf("joiner: %v", err)
	}
	if err := e.Author.Check(); err != nil {
		return fmt.Errorf("joiner: %v", err)
	}
	return nil
}

// strongRemove applies p2panda's strong-remove rule: an event is invalid if
// a removal or demotion of its author, concurrent with it, would have
// forbidden it. Restrictions between the same two members in both
// directions all apply (mutual removal).
func (b *builder) strongRemove(p int32, n *node, v view, roles []string) error {
	if j, ok := n.op.(*Join); ok {
		// A revocation closes its invite to concurrent joins too.
		for _, r := range b.revokedBy[j.Invite] {
			if !b.inPast(b.nodes[r], n) {
				return fmt.Errorf("invalidated: invite %s was revoked by concurrent event %s", j.Invite.Short(), b.nodes[r].e.ID().Short())
			}
		}
		for _, r := range b.pinnedRev[j.Invite] {
			if r > p && n.e.Seq > b.nodes[r].seen(n.author) {
				return fmt.Errorf("invalidated: invite %s was revoked by concurrent event %s", j.Invite.Short(), b.nodes[r].e.ID().Short())
			}
		}
		// An expiry that a member observed before the join reached it
		// closes the invite to the join as a revocation would (expiry.go).
		if w, saw := b.expiryWitness(v.auth, n, n.inviteUsed().op.Expires); w != nil {
			return b.expiredReason(v.auth, j.Invite, w, saw)
		}
	}
	if usesLink(n.op) {
		// An end of the link closes it to what is sent, received or
		// reported over it concurrently, as a revocation closes an invite.
		l := linkOf(n.op)
		for _, r := range b.endedBy[l] {
			if !b.inPast(b.nodes[r], n) {
				return fmt.Errorf("invalidated: link %s was ended by concurrent event %s", l.Short(), b.nodes[r].e.ID().Short())
			}
		}
		for _, r := range b.pinnedEnd[l] {
			if r > p && n.e.Seq > b.nodes[r].seen(n.author) {
				return fmt.Errorf("invalidated: link %s was ended by concurrent event %s", l.Short(), b.nodes[r].e.ID().Short())
			}
		}
	}
	if err := b.strongRevoke(p, n); err != nil {
		return err
	}
	author := *n.member
	var rs []int32
	for _, r := range b.restrictBy[author] {
		if !b.inPast(b.nodes[r], n) {
			rs = append(rs, r)
		}
	}
	for _, r := range b.pinnedBy[author] {
		if r > p && n.e.Seq > b.nodes[r].seen(n.author) {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	mine := restrictionOf(v.auth, n.op)
	reduced := slices.Clone(roles)
	member := true
	var by []string
	for _, r := range rs {
		rn := b.nodes[r]
		rr, ok := b.pinned[r]
		if !ok {
			rr = *rn.restrict
		}
		if mine != nil && mine.member() && b.reaches(p, n, mine.target, *rn.member) {
			continue // mutual, or a cycle of removals: all of them apply
		}
		if rr.role == "" {
			member = false
		} else {
			reduced = slices.DeleteFunc(reduced, func(s string) bool { return s == rr.role })
		}
		by = append(by, rn.e.ID().Short())
	}
	if len(by) == 0 {
		return nil
	}
	vis, send := n.vis, n.sendRole // settled with the author's full roles at its parents
	err := b.permitted(v, n, n.op, author, member, reduced, false)
	n.w().vis, n.w().sendRole = vis, send
	if err != nil {
		return fmt.Errorf("invalidated by concurrent removal or demotion of its author (%s): %v", strings.Join(by, ", "), err)
	}
	return nil
}

// reaches reports whether member from reaches member to through removals
// and demotions concurrent with n: from == to, or from restricted someone
// who reaches to. An event restricting X is exempt from a concurrent
// restriction of its author by Y when X reaches Y: X and Y removing each
// other, or a longer cycle, all apply (p2panda's rule 2).
func (b *builder) reaches(p int32, n *node, from, to identity.PublicKey) bool {
	concurrent := func(r int32) bool {
		x := b.nodes[r]
		if r < p {
			return !b.inPast(x, n)
		}
		return n.e.Seq > x.seen(n.author)
	}
	edges := map[identity.PublicKey][]identity.PublicKey{}
	add := func(r int32, rr restriction) {
		if rr.member() && concurrent(r) {
			a := b.nodes[r].member
			edges[*a] = append(edges[*a], rr.target)
		}
	}
	for _, rs := range b.restrictBy {
		for _, r := range rs {
			add(r, *b.nodes[r].restrict)
		}
	}
	for r, rr := range b.pinned {
		if r > p {
			add(r, rr)
		}
	}
	seen := map[identity.PublicKey]bool{from: true}
	queue := []identity.PublicKey{from}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		if m == to {
			return true
		}
		for _, next := range edges[m] {
			if !seen[next] {
				seen[next] = true
				queue = append(queue, next)
			}
		}
	}
	return false
}

// restrictionOf returns what op takes away from whom, if anything.
func restrictionOf(a *authState, op Op) *restriction {
	switch op := op.(type) {
	case *Remove:
		return &restriction{target: op.Member}
	case *RoleRevoke:
		return &restriction{target: op.Member, role: op.Role}
	case *InviteRevoke:
		return &restriction{invite: op.Invite}
	case *LinkEnd:
		return &restriction{link: op.Link}
	case *Device:
		switch op.Action {
		case DeviceRevoke:
			return &restriction{target: op.Device, device: true}
		case DeviceReplace:
			return &restriction{target: op.Parent, device: true}
		}
	case *Approval:
		if pr, ok := a.proposals[op.Proposal]; ok {
			return restrictionOf(a, pr.op)
		}
	}
	return nil
}

// settle decides the outcomes that depend on the log's order rather than
// on one event's parents: an invite's uses, a move that would close a
// cycle. (An approval completing a quorum is settled when applied: see
// carry.)
func (b *builder) settle(n *node) error {
	switch op := n.op.(type) {
	case *Join:
		inv := b.auth.invites[op.Invite]
		if inv != nil && inv.op.Uses != 0 && inv.used >= inv.op.Uses {
			return fmt.Errorf("invite %s was used up by earlier joins", op.Invite.Short())
		}
	case *LinkReceive:
		// Concurrent receives of one hand-off are all accepted; the first
		// in log order makes the task, and the others have no effect.
		if x := b.embeddedOf(n, op); x.err == nil && b.tasks.at(x.ev.ID()) != nil {
			n.w().inert = "no effect: the hand-off was received already, by an earlier event"
		}
	case *TaskMove:
		// Moves are last-writer-wins on the parent, applied in log order;
		// one that would close a cycle (two concurrent moves, each fine at
		// its parents) is accepted but has no effect. It is not rejected,
		// so that its verdict does not hang on moves that sort before it.
		steps := 0
		for p := op.Parent; !p.IsZero() && steps <= b.tasks.len(); steps++ {
			if p == op.Task {
				n.w().inert = "no effect: the move would make the task its own ancestor"
				break
			}
			t := b.tasks.at(p)
			if t == nil {
				break
			}
			p = t.Parent
		}
	}
	return nil
}

// name returns a member's display name and short ID, for reasons.
func (b *builder) name(a *authState, m identity.PublicKey) string {
	if mem, ok := a.members[m]; ok {
		return fmt.Sprintf("%s (%s)", mem.Name, m.Short())
	}
	if mem, ok := a.former[m]; ok {
		return fmt.Sprintf("%s (%s)", mem.Name, m.Short())
	}
	return m.Short()
}

func (b *builder) assigneeName(a *authState, s string) string {
	as, err := ParseAssignee(s)
	if err != nil || as.IsRole() {
		return s
	}
	return b.name(a, as.Member)
}

// carry decides whether pr, just approved by node n, is carried in the
// authority state a: whether the members of the quorum's role who approved
// it now reach the quorum, counted in a, and if so whether its action is
// still permitted to its proposer there. It returns the op to carry out,
// or why the proposal failed, or neither if it still waits. It is called
// both on the current state and on a state rebuilt at some event's
// parents, so that a view at the parents counts exactly the approvals in
// that causal past.
func (b *builder) carry(a *authState, n *node, pr *proposal) (Op, string) {
	q, ok := a.charter.QuorumFor(pr.action)
	if !ok {
		return nil, ""
	}
	count := 0
	for m := range pr.approvals {
		if mem := a.members[m]; mem != nil && mem.HasRole(q.Of) {
			count++
		}
	}
	if count < b.neededAt(a, q, n) {
		return nil, ""
	}
	pm := a.members[pr.author]
	if pm == nil {
		return nil, fmt.Sprintf("proposal %s failed: the proposer is no longer a member", pr.id.Short())
	}
	v := view{auth: a, task: func(event.ID) *Task { return nil }}
	vis := n.vis
	err := b.permitted(v, n, pr.op, pr.author, true, pm.Roles, true)
	if vis != nil {
		n.w().vis = vis
	}
	if err != nil {
		return nil, fmt.Sprintf("proposal %s failed: %v", pr.id.Short(), err)
	}
	return pr.op, ""
}
