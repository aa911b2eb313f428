// Package identity holds a member's keys: the Ed25519 signing key whose public
// half is the member ID, and the hybrid post-quantum KEM key (ML-KEM-768 +
// X25519, through crypto/hpke) that other members seal key generations to.
//
// An Identity is the private side, kept on the member's own machine (see
// package identity/keystore for how it is stored). Public is what other
// members learn about an identity: its name, member ID, KEM public key, and a
// binding signature by which the signing key vouches for the KEM key, so that
// nobody can pair a member ID with a KEM key of their own choosing. Fingerprint
// condenses the two public keys into a short number that two people compare
// out of band.
//
// The package is pure: it does no I/O, reads no clock, and takes randomness as
// an io.Reader, so every result is reproducible in tests.
package identity
