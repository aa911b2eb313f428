package charter

import "strings"

// Action is something a charter may permit a role to do. Its value is the
// name used in charter files and on the wire; unknown values are invalid.
//
// Actions come in three kinds, which decide what a Grant of them holds and
// what Allows expects as its target:
//
//   - plain actions are granted or not (Grant.Roles and Grant.Tasks empty);
//   - role-targeted actions are granted over a list of roles (Grant.Roles);
//   - task-scoped actions are granted over a task scope (Grant.Tasks).
type Action string

// The actions, in the order Actions returns them. Only ever append new
// actions at the end; an action's name is part of the wire format.
const (
	// AmendCharter replaces the charter. Plain.
	AmendCharter Action = "amend-charter"
	// AssignRole gives a member a role. Role-targeted: the role given.
	AssignRole Action = "assign-role"
	// RevokeRole takes a role from a member. Role-targeted: the role taken.
	RevokeRole Action = "revoke-role"
	// Invite creates an invite. Role-targeted: the role the invite grants.
	Invite Action = "invite"
	// RemoveMember removes a member. Role-targeted: every role the removed
	// member holds must be covered, by one single role of the actor.
	RemoveMember Action = "remove-member"
	// CreateTask creates a task. Plain.
	CreateTask Action = "create-task"
	// AssignTask assigns a task to, or unassigns it from, a role R or a
	// member. Role-targeted: R, or the roles the member holds, of which any
	// one covered suffices; a member with no role needs "*".
	AssignTask Action = "assign-task"
	// EditTask edits a task's fields or re-parents it. Task-scoped.
	EditTask Action = "edit-task"
	// SetStatus sets a task's status. Task-scoped.
	SetStatus Action = "set-status"
	// Comment comments on a task. Task-scoped.
	Comment Action = "comment"
	// ArchiveTask archives a task. Task-scoped.
	ArchiveTask Action = "archive-task"
	// SeeTasks lets a role see the tasks visible to a role R.
	// Role-targeted: R.
	SeeTasks Action = "see-tasks"
	// RotateKeys publishes new key generations. Plain.
	RotateKeys Action = "rotate-keys"
	// ManageRelays changes the pursuance's relay list. Plain.
	ManageRelays Action = "manage-relays"
	// LinkPursuances links the pursuance with another one. Plain.
	LinkPursuances Action = "link-pursuances"
	// PublishProfile publishes, changes or withdraws the pursuance's
	// public profile, naming the role that answers join requests
	// (docs/directory.md). Plain.
	PublishProfile Action = "publish-profile"
	// TakeOver claims a role whose holders have all gone inactive
	// (docs/succession.md). Role-targeted: the role claimed. Only a
	// charter with a continuity section (Continuity.InactiveAfter) may
	// grant it or put it under a quorum.
	TakeOver Action = "take-over"
)

// Actions returns every action, in the order of the constants above. The
// caller owns the returned slice.
func Actions() []Action {
	return []Action{
		AmendCharter, AssignRole, RevokeRole, Invite, RemoveMember,
		CreateTask, AssignTask, EditTask, SetStatus, Comment, ArchiveTask,
		SeeTasks, RotateKeys, ManageRelays, LinkPursuances, PublishProfile,
		TakeOver,
	}
}

// actionKind says what a Grant of an action holds.
type actionKind int

const (
	unknownAction actionKind = iota
	plainAction
	roleAction
	taskAction
)

func (a Action) kind() actionKind {
	switch a {
	case AmendCharter, CreateTask, RotateKeys, ManageRelays, LinkPursuances, PublishProfile:
		return plainAction
	case AssignRole, RevokeRole, Invite, RemoveMember, AssignTask, SeeTasks, TakeOver:
		return roleAction
	case EditTask, SetStatus, Comment, ArchiveTask:
		return taskAction
	}
	return unknownAction
}

// The special entries of a Grant's Roles list. Neither may be a role name.
const (
	AllRoles   = "*"     // every role in the charter
	RolesBelow = "below" // every role ranked strictly below the granting role
)

// The task scopes of a Grant's Tasks list.
const (
	AnyTask      = "any"      // any task the actor can see
	AssignedTask = "assigned" // tasks assigned to the actor or one of its roles
	OwnTask      = "own"      // tasks the actor created
)

// Charter is a pursuance's constitution: its name, its mission, its roles
// ranked highest first, and the quorums some actions need.
//
// A Charter from Parse, Unmarshal or Template is valid (see Validate) and
// canonical: lists sorted and free of repeats, empty lists nil. Its methods
// only read it; it is safe for concurrent use as long as nobody modifies it.
type Charter struct {
	Name    string   `cbor:"1,keyasint"`
	Mission string   `cbor:"2,keyasint,omitempty"`
	Roles   []Role   `cbor:"3,keyasint"`           // ranked, highest first; Roles[0] is the role the founder holds
	Quorums []Quorum `cbor:"4,keyasint,omitempty"` // sorted by Action, at most one per Action
	Keys    Keys     `cbor:"5,keyasint,omitzero"`
	// Continuity says when a member counts as inactive and how a role
	// whose holders all went inactive is taken over (docs/succession.md).
	Continuity Continuity `cbor:"6,keyasint,omitzero"`
}

// Continuity is the charter's rules for members who stop signing
// (docs/succession.md). Every period is in seconds; event times are
// compared with them by the rules (package state), from the times members
// claim on their events, never from a reader's clock.
type Continuity struct {
	// InactiveAfter is how long a member may go without signing anything
	// before it counts as inactive; 0: nobody ever does, TakeOver may not
	// be granted and quorums count every holder.
	InactiveAfter uint64 `cbor:"1,keyasint,omitempty"`
	// Witnesses is how many distinct members' clocks a time judgement
	// needs: "now" is the Witnesses-th latest time among the members'
	// latest claimed times, so fewer than Witnesses members lying about
	// time cannot move it. From 1 to MaxWitnesses when InactiveAfter is
	// set; 0 otherwise.
	Witnesses uint64 `cbor:"2,keyasint,omitempty"`
	// Waiting is how long a take-over claim waits before it can be
	// completed; any holder's event in that time cancels it.
	Waiting uint64 `cbor:"3,keyasint,omitempty"`
	// ProposalsExpire is how long a proposal stays open for approvals;
	// 0: proposals never expire.
	ProposalsExpire uint64 `cbor:"4,keyasint,omitempty"`
}

// Continuity limits and defaults.
const (
	// MaxWitnesses bounds Continuity.Witnesses.
	MaxWitnesses = 16
	// DefaultWitnesses is the witnesses a charter file gets when its
	// continuity section sets inactive-after and names none: one liar
	// cannot move the time alone.
	DefaultWitnesses = 2
	// MinInactiveAfter is the shortest inactivity period a charter may
	// set: an hour, so that a member's short silence never counts.
	MinInactiveAfter = 3600
)

// Enabled reports whether members can count as inactive.
func (c Continuity) Enabled() bool { return c.InactiveAfter > 0 }

// Keys is the charter's key policy (docs/keys.md).
type Keys struct {
	// History is HistoryChained (the zero value: a new holder of a role's
	// key reads the role's history, chained under the new generation) or
	// HistoryFromJoin (role keys are not chained: a holder reads from the
	// generation it was given on). The group key is always chained: every
	// member must read the whole log to check it.
	History string `cbor:"1,keyasint,omitempty"`
	// RotateEvery, in seconds, is how old a current generation may get
	// before any member who may rotate it does; 0: no periodic rotation.
	RotateEvery uint64 `cbor:"2,keyasint,omitempty"`
}

// Key history policies.
const (
	HistoryChained  = ""
	HistoryFromJoin = "from-join"
)

// MinRotateEvery is the shortest rotation period a charter may set.
const MinRotateEvery = 3600

// Role is a rank in the pursuance, with what its holders may do. A member
// may hold several roles; it may do whatever any one of them permits.
type Role struct {
	Name        string  `cbor:"1,keyasint"`
	Description string  `cbor:"2,keyasint,omitempty"`
	Grants      []Grant `cbor:"3,keyasint,omitempty"` // sorted by Action, at most one per Action
	// TaskVisibility lists the roles that tasks created by this role's
	// holders are visible to by default, sorted. Empty means the creator's
	// own roles.
	TaskVisibility []string `cbor:"4,keyasint,omitempty"`
}

// Grant permits a role one action, within limits that depend on the
// action's kind.
type Grant struct {
	Action Action `cbor:"1,keyasint"`
	// Roles, for role-targeted actions only: the roles covered. Each entry
	// is a role name, AllRoles or RolesBelow; sorted, unique, not empty.
	Roles []string `cbor:"2,keyasint,omitempty"`
	// Tasks, for task-scoped actions only: the tasks covered. Each entry
	// is AnyTask, AssignedTask or OwnTask; sorted, unique, not empty.
	Tasks []string `cbor:"3,keyasint,omitempty"`
}

// Quorum says that an action takes effect only once enough members holding
// a role approve it.
type Quorum struct {
	Action Action `cbor:"1,keyasint"`
	// Approvals is the number of approvals needed; 0 means a majority:
	// more than half of the members holding Of.
	Approvals int    `cbor:"2,keyasint,omitempty"`
	Of        string `cbor:"3,keyasint"` // the role whose members approve
}

// Role returns the role named name, and whether there is one. The pointer
// points into c.Roles.
func (c *Charter) Role(name string) (*Role, bool) {
	if i := c.Rank(name); i >= 0 {
		return &c.Roles[i], true
	}
	return nil, false
}

// FounderRole returns the name of the highest role, which the founder
// holds, or "" if the charter has no roles.
func (c *Charter) FounderRole() string {
	if len(c.Roles) == 0 {
		return ""
	}
	return c.Roles[0].Name
}

// Rank returns the rank of the role named role: 0 for the highest, 1 for the
// next and so on, or -1 if there is no such role.
func (c *Charter) Rank(role string) int {
	for i := range c.Roles {
		if c.Roles[i].Name == role {
			return i
		}
	}
	return -1
}

// RoleNames returns the names of the roles, highest rank first. The caller
// owns the returned slice.
func (c *Charter) RoleNames() []string {
	names := make([]string, len(c.Roles))
	for i := range c.Roles {
		names[i] = c.Roles[i].Name
	}
	return names
}

// QuorumFor returns the quorum that action a needs, and whether it needs
// one. An action without a quorum takes effect at once if permitted.
func (c *Charter) QuorumFor(a Action) (Quorum, bool) {
	for _, q := range c.Quorums {
		if q.Action == a {
			return q, true
		}
	}
	return Quorum{}, false
}

// Needed returns the number of approvals the quorum needs when holders
// members hold the role q.Of: Approvals, or for a majority holders/2+1.
func (q Quorum) Needed(holders int) int {
	if q.Approvals == 0 {
		return holders/2 + 1
	}
	return q.Approvals
}

// NeededActive returns the number of approvals the quorum needs when
// active of the role's holders are active (docs/succession.md): a
// majority of the active holders, or the fixed number but never more
// than the active holders (at least 1). It is what the rules use when the
// charter's continuity section is set, so that holders who went inactive
// neither block a quorum nor count towards one.
func (q Quorum) NeededActive(active int) int {
	if q.Approvals == 0 {
		return active/2 + 1
	}
	return min(q.Approvals, max(active, 1))
}

// grant returns the role's grant of action a, if any.
func (r *Role) grant(a Action) (*Grant, bool) {
	for i := range r.Grants {
		if r.Grants[i].Action == a {
			return &r.Grants[i], true
		}
	}
	return nil, false
}

// Quorumable reports whether a charter may put the action under a quorum:
// the actions that change who holds power (the charter, roles, membership,
// invites) and whom the pursuance works with or speaks to (links, its
// public profile). Task actions are too
// frequent and too small for proposals, and a proposal carries one action,
// signed once, whose author is the proposer.
func (a Action) Quorumable() bool {
	switch a {
	case AmendCharter, AssignRole, RevokeRole, Invite, RemoveMember, LinkPursuances, PublishProfile, TakeOver:
		return true
	}
	return false
}

// quorumableList names the actions that may require a quorum, for errors.
func quorumableList() string {
	var names []string
	for _, a := range Actions() {
		if a.Quorumable() {
			names = append(names, string(a))
		}
	}
	return strings.Join(names, ", ")
}
