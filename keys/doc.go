// Package keys is Pursuance's key schedule: the group key and the role
// keys in numbered generations, what each derives (envelope keys, relay
// topics, content wrapping), sealing a generation's seed to a member with
// HPKE (ML-KEM-768 + X25519), the envelope that carries events to relays,
// and content sealed for the roles that may read it.
//
// It is pure: no I/O, no clock, no global state. Randomness comes from the
// caller as an io.Reader, except inside HPKE encapsulation, which the
// standard library draws itself. docs/keys.md specifies every derivation,
// label and byte layout; testdata/keys holds vectors.
package keys
