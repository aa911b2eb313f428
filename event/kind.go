package event

import "fmt"

// Kind says what an event does. The rules engine interprets kinds; this
// package only carries them.
//
// Values are part of the wire format: only ever append new kinds at the end.
// Do NOT reorder or reuse a value.
type Kind uint64

const (
	KindInvalid Kind = iota // never valid on the wire

	KindGenesis      // founds a pursuance: charter and metadata
	KindCharterAmend // replaces the charter
	KindRoleAssign   // gives a member a role
	KindRoleRevoke   // takes a role from a member
	KindInvite       // publishes an invite key
	KindJoin         // a newcomer joins with an invite
	KindRemove       // removes a member
	KindLeave        // a member leaves
	KindProposal     // proposes an action that needs a quorum
	KindApproval     // approves a proposal
	KindTaskCreate   // creates a task
	KindTaskEdit     // edits a task's fields
	KindTaskMove     // re-parents a task
	KindTaskAssign   // adds an assignee
	KindTaskUnassign // removes an assignee
	KindTaskStatus   // sets a task's status
	KindTaskComment  // comments on a task
	KindTaskArchive  // archives a task
	KindKeyUpdate    // new key generations, sealed to members
	KindRelays       // changes the relay list
	KindLink         // offers a link to another pursuance: which roles send tasks to it
	KindInviteRevoke // revokes an invite
	KindTaskSealed   // a task event (one of the task kinds above) sealed for the task's readers
	KindMemberKey    // a member publishes a new KEM key of its own
	KindLinkAccept   // accepts a link from another pursuance: its tasks arrive for a role
	KindLinkEnd      // ends a link, from either side
	KindHandoff      // sends a task over a link
	KindLinkReceive  // receives a hand-off (embedded) as a task
	KindLinkReport   // reports a received task's progress back over its link
	KindProfile      // publishes or withdraws the pursuance's public profile
	KindSuccession   // claims a role whose holders are all inactive
	KindSucceed      // completes a succession claim after its waiting period
	KindNodeAddress  // a member announces (or withdraws) where its own node is reached
	KindDevice       // adds, revokes or replaces a device of a member (docs/devices.md)
	KindTaskAttach   // attaches a file to a task: the manifest of its encrypted chunks (docs/attachments.md)
	kindEnd          // one past the last kind; not a kind
)

var kindNames = [...]string{
	KindInvalid:      "invalid",
	KindGenesis:      "genesis",
	KindCharterAmend: "charter-amend",
	KindRoleAssign:   "role-assign",
	KindRoleRevoke:   "role-revoke",
	KindInvite:       "invite",
	KindJoin:         "join",
	KindRemove:       "remove",
	KindLeave:        "leave",
	KindProposal:     "proposal",
	KindApproval:     "approval",
	KindTaskCreate:   "task-create",
	KindTaskEdit:     "task-edit",
	KindTaskMove:     "task-move",
	KindTaskAssign:   "task-assign",
	KindTaskUnassign: "task-unassign",
	KindTaskStatus:   "task-status",
	KindTaskComment:  "task-comment",
	KindTaskArchive:  "task-archive",
	KindKeyUpdate:    "key-update",
	KindRelays:       "relays",
	KindLink:         "link",
	KindInviteRevoke: "invite-revoke",
	KindTaskSealed:   "task-sealed",
	KindMemberKey:    "member-key",
	KindLinkAccept:   "link-accept",
	KindLinkEnd:      "link-end",
	KindHandoff:      "handoff",
	KindLinkReceive:  "link-receive",
	KindLinkReport:   "link-report",
	KindProfile:      "profile",
	KindSuccession:   "succession",
	KindSucceed:      "succeed",
	KindNodeAddress:  "node-address",
	KindDevice:       "device",
	KindTaskAttach:   "task-attach",
}

// Known reports whether k is a kind this version of Pursuance knows.
func (k Kind) Known() bool { return k > KindInvalid && k < kindEnd }

// String returns the kind's name, or "kind(N)" for a kind this version does
// not know.
func (k Kind) String() string {
	if k < kindEnd {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint64(k))
}

// ParseKind returns the kind with the given name.
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if name == s && Kind(k) != KindInvalid {
			return Kind(k), nil
		}
	}
	return KindInvalid, fmt.Errorf("event: unknown kind %q", s)
}
