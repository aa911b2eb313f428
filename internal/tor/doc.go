// Package tor runs and controls the tor daemon for Pursuance: it starts a
// tor that Pursuance owns (or attaches to one already running), waits for
// it to bootstrap, dials through its SOCKS5 port with stream isolation,
// and publishes v3 onion services with keys Pursuance keeps.
//
// It speaks tor's control protocol itself, with a small client that does
// exactly what Pursuance needs (PROTOCOLINFO, AUTHCHALLENGE and
// AUTHENTICATE, TAKEOWNERSHIP, GETINFO, SETEVENTS, ADD_ONION), and SOCKS5
// with its own small client: no dependency beyond the standard library
// and filippo.io/edwards25519 for the onion address of a key.
// docs/tor.md says why, and what each part guarantees: names are never
// resolved on this machine (the host name goes to tor), connections of
// different isolation strings never share a circuit, and a tor that
// Pursuance starts dies with it.
//
// Safety: Start refuses to run a tor configured for a private testing
// network (TestingTorNetwork) unless this process is in a network
// namespace that holds nothing but loopback, and inside a test binary it
// refuses to run a real tor configured for anything else, so that no test
// can reach the public Tor network.
package tor
