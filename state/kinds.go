package state

import (
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
)

// kindInfo is what the engine knows of one kind of op, in one row: the
// properties that used to be type switches spread over the package. Add a
// row for every new kind; TestKindTable walks every kind and checks that
// the row is there and agrees with the op's type.
type kindInfo struct {
	// new returns a pointer to a zero op of the kind; nil for a kind this
	// version carries but does not interpret (DecodeOp gives Opaque).
	new func() Op
	// action is the charter permission the op needs; "" when none does,
	// or when its own rules decide (genesis, join, key-update…).
	action charter.Action
	// authority marks ops that change the authority state: membership,
	// roles, charter, invites, proposals, keys and relays. They are
	// decided with strong removal and kept in the authority snapshots.
	authority bool
	// task marks ops that act on a task: what a TaskSealed carries.
	task bool
	// key marks ops a member's client publishes to keep keys healthy,
	// which must not wait for keys to be healed first.
	key bool
	// link marks the ops of links between pursuances (docs/links.md):
	// they travel with their bodies on a link's channel, as authority ops
	// do, and never sealed as task ops.
	link bool
}

// kinds is the table of op kinds, by event kind.
var kinds = [...]kindInfo{
	event.KindGenesis:      {new: func() Op { return &Genesis{} }, authority: true},
	event.KindCharterAmend: {new: func() Op { return &CharterAmend{} }, action: charter.AmendCharter, authority: true},
	event.KindRoleAssign:   {new: func() Op { return &RoleAssign{} }, action: charter.AssignRole, authority: true},
	event.KindRoleRevoke:   {new: func() Op { return &RoleRevoke{} }, action: charter.RevokeRole, authority: true},
	event.KindInvite:       {new: func() Op { return &Invite{} }, action: charter.Invite, authority: true},
	event.KindJoin:         {new: func() Op { return &Join{} }, authority: true},
	event.KindRemove:       {new: func() Op { return &Remove{} }, action: charter.RemoveMember, authority: true},
	event.KindLeave:        {new: func() Op { return &Leave{} }, authority: true},
	event.KindProposal:     {new: func() Op { return &Proposal{} }, authority: true},
	event.KindApproval:     {new: func() Op { return &Approval{} }, authority: true},
	event.KindTaskCreate:   {new: func() Op { return &TaskCreate{} }, action: charter.CreateTask, task: true},
	event.KindTaskEdit:     {new: func() Op { return &TaskEdit{} }, action: charter.EditTask, task: true},
	event.KindTaskMove:     {new: func() Op { return &TaskMove{} }, action: charter.EditTask, task: true},
	event.KindTaskAssign:   {new: func() Op { return &TaskAssign{} }, action: charter.AssignTask, task: true},
	event.KindTaskUnassign: {new: func() Op { return &TaskUnassign{} }, action: charter.AssignTask, task: true},
	event.KindTaskStatus:   {new: func() Op { return &TaskStatus{} }, action: charter.SetStatus, task: true},
	event.KindTaskComment:  {new: func() Op { return &TaskComment{} }, action: charter.Comment, task: true},
	event.KindTaskArchive:  {new: func() Op { return &TaskArchive{} }, action: charter.ArchiveTask, task: true},
	// A key-update's permission is its own rule (keyrules.go): who holds
	// the scope, or rotate-keys.
	event.KindKeyUpdate:    {new: func() Op { return &KeyUpdate{} }, authority: true, key: true},
	event.KindRelays:       {new: func() Op { return &Relays{} }, action: charter.ManageRelays, authority: true},
	event.KindLink:         {new: func() Op { return &LinkOffer{} }, action: charter.LinkPursuances, authority: true, link: true},
	event.KindInviteRevoke: {new: func() Op { return &InviteRevoke{} }, authority: true},
	event.KindTaskSealed:   {new: func() Op { return &TaskSealed{} }},
	event.KindMemberKey:    {new: func() Op { return &MemberKey{} }, authority: true, key: true},
	event.KindLinkAccept:   {new: func() Op { return &LinkAccept{} }, action: charter.LinkPursuances, authority: true, link: true},
	event.KindLinkEnd:      {new: func() Op { return &LinkEnd{} }, action: charter.LinkPursuances, authority: true, link: true},
	// A hand-off's, a receive's and a report's permission is the link's
	// (link.go): a role the offer names, any member, a role that sees
	// the received task.
	event.KindHandoff:     {new: func() Op { return &Handoff{} }, link: true},
	event.KindLinkReceive: {new: func() Op { return &LinkReceive{} }, link: true},
	event.KindLinkReport:  {new: func() Op { return &LinkReport{} }, link: true},
	// A profile is an authority op: it names who answers join requests,
	// and its body travels over links like every authority op's.
	event.KindProfile: {new: func() Op { return &Profile{} }, action: charter.PublishProfile, authority: true},
	// A claim needs take-over over its role; its completion is the
	// claimant's, by the claim's own rules (succession.go).
	event.KindSuccession: {new: func() Op { return &Succession{} }, action: charter.TakeOver, authority: true},
	event.KindSucceed:    {new: func() Op { return &Succeed{} }, authority: true},
	// A node address is the author's own (nodeaddr.go): any member, no
	// action; not an authority op, so that it never travels over links.
	event.KindNodeAddress: {new: func() Op { return &NodeAddress{} }},
	// A device op's permission is its own rule (device.go): the member's
	// devices, by the tree. It is a key op: a revocation must not wait.
	event.KindDevice: {new: func() Op { return &Device{} }, authority: true, key: true},
	// Attaching a file needs what commenting needs: a reader of the task
	// who may add to it (docs/attachments.md).
	event.KindTaskAttach: {new: func() Op { return &TaskAttach{} }, action: charter.Comment, task: true},
}

// kindOf returns the row of kind k; the zero row for a kind this version
// does not know.
func kindOf(k event.Kind) kindInfo {
	if int(k) < len(kinds) {
		return kinds[k]
	}
	return kindInfo{}
}

// IsKeyOp reports whether op is one a member's client publishes to keep
// keys healthy (a key-update, a member-key), which must not wait for keys
// to be healed first.
func IsKeyOp(op Op) bool { return kindOf(op.Kind()).key }

// taskOp is an op on an existing task: it names the task it acts on.
type taskOp interface {
	Op
	target() event.ID
}

func (o TaskSealed) target() event.ID   { return o.Task }
func (o TaskEdit) target() event.ID     { return o.Task }
func (o TaskMove) target() event.ID     { return o.Task }
func (o TaskAssign) target() event.ID   { return o.Task }
func (o TaskUnassign) target() event.ID { return o.Task }
func (o TaskStatus) target() event.ID   { return o.Task }
func (o TaskComment) target() event.ID  { return o.Task }
func (o TaskArchive) target() event.ID  { return o.Task }
