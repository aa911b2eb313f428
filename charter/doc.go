// Package charter defines a pursuance's charter, its roles and rules, and
// decides what each role may do.
//
// The genesis event of a pursuance carries its charter and a charter-amend
// event replaces it; every client checks every event of the log against the
// charter in force at the event's causal parents. A charter names the
// pursuance and its mission, ranks its roles highest first (the founder
// holds the first), grants each role actions (amend the charter, assign or
// revoke roles, invite, remove members, create, assign, edit and archive
// tasks, see the tasks of other roles, rotate keys, manage relays, link
// pursuances) and says which actions need a quorum of approvals.
//
// People write charters in YAML (Parse), starting from a template
// (Template); errors point at the line. On the wire a charter is canonical
// CBOR (MarshalBinary, Unmarshal), one encoding per charter, decoded
// strictly. docs/charter.md specifies both forms and lists every error.
// Allows and CanSee answer the questions of the rules engine: may a member
// holding these roles do this, to these roles, on this task; can it see this
// task. They look at the charter alone: who holds which role, and whether a
// quorum has approved, is the caller's state.
//
// The package is pure: it does no I/O, reads no clock and keeps no global
// state. A Charter is a plain value; its methods only read it.
package charter
