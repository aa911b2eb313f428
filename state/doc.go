// Package state is the rules engine: the pure fold of a pursuance's log
// into its state — charter in force, members and their roles, invites,
// proposals, key generations, the task tree — and the verdict on every
// event.
//
// A Builder is fed the events of one pursuance in log order (ascending
// lamport clock, then ID: the store's Iterate order, the same on every
// replica) and decides each against the charter at its causal parents,
// never against the state at the end of the log; concurrent authority
// changes are resolved by strong removal, so a removal invalidates what
// the removed member did concurrently (docs/rules.md). The result, State,
// is a function of the set of events alone: any two replicas holding the
// same events compute byte-identical states (State.Hash), whatever order
// the events arrived in. Rejected events are kept with their reason for
// the audit log (State.Log).
//
// Ops (op.go) are the typed bodies of events, with their strict CBOR
// codec (docs/ops.md). Task content is sealed per reader scope; given a
// member's secrets (Builder.SetSecrets), the fold opens what that member
// may read and leaves the rest opaque (docs/keys.md).
//
// Like event, identity, charter and keys, the package is pure: no I/O, no
// clock, no global state (event/purity_test.go enforces it), which is what
// makes convergence testable.
package state
