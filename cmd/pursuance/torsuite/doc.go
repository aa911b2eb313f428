// Package torsuite is the end-to-end test of Pursuance over real Tor: the
// pursuance command, run as real processes, in a private Tor network of
// real tor processes on loopback (internal/tortest), inside a fresh
// network and PID namespace that has nothing but loopback.
//
// It holds no code but this comment; its tests are the scenario of issue
// 12: a relay as an onion service only; two members whose nodes run `up
// --tor` found, invite, join and work a task through the relay's onion
// address; the relay stops and they keep working node to node, over
// their nodes' own onion services; a third member joins with a code that
// names only the founder's node. The relay's own log and sockets show
// that every connection it got came from its tor, and from nothing else.
//
// TestMain runs the tests through tortest.Main; the test binary also acts
// as the pursuance command (os.Executable) when the tests run it with
// PURSUANCE_TORSUITE_CLI=1, so the processes are the real command built
// with the tests' flags (-race included). Where namespaces or tor are not
// available, the tests skip and say why; they never run tor on the
// machine's own network. docs/testing-tor.md says how to run them.
package torsuite
