// Package event defines the signed, hash-chained events that make up a
// pursuance's log, and their wire format.
//
// An event is a header, the author's Ed25519 signature over the header's
// exact bytes, and a body the header references by hash. Headers are
// encoded in a strict, deterministic subset of CBOR (docs/events.md); the
// decoder accepts only that single encoding, so decoding and re-encoding
// always reproduce the bytes that were signed and hashed, and nothing is ever
// re-serialized to be verified.
//
// Each author's events in a pursuance form a chain: seq counts from 1, and
// each event's backlink is the ID of the author's previous one. Each event
// also names causal parents, the heads of the log its author had seen, and
// a lamport clock one above the largest of theirs, so (lamport, ID) orders
// any set of events consistently with causality. A pursuance's ID is the ID
// of its genesis event.
//
// Checks come in increasing cost: Decode (encoding and limits),
// StaticValidate (rules that need no other event), VerifySignature (the
// expensive one) and CheckLinks (rules against the events linked to).
// Deciding whether an event is permitted by the pursuance's charter is the
// job of the rules engine, not of this package.
//
// The package is pure: it does no I/O, reads no clock and keeps no global
// state. Callers pass times and randomness in.
package event
