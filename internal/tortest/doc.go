// Package tortest runs a private Tor network on loopback for tests, and
// makes sure no tor it starts can ever reach any other network.
//
// A package whose tests need real tor processes calls Main from its
// TestMain. Main runs the package's tests again in a fresh network
// namespace (and PID namespace) that holds nothing but the loopback
// interface, and checks that before any test runs. Every function here
// that starts tor or tor-gencert checks again, just before starting it,
// that the process is in the namespace Main made and that the namespace
// still has no interface but lo; it refuses otherwise. Where namespaces
// cannot be made (not Linux, not allowed, no tor installed), Available
// reports why and Skip skips: tests never fall back to the host network.
//
// Shared starts one network per test binary on first use: directory
// authorities whose keys tor-gencert makes fresh for it, relays that all
// get the Guard and HSDir flags, and testing-network timings, so that it
// publishes its first consensus in seconds. Network.ClientTorrc is what a
// tor needs to use that network and nothing else; Network.StartClient
// starts such a tor for a test. Every torrc written here is checked by
// CheckTorrc: Testing network, the private authorities only, no fallback
// directories, no address outside 127.0.0.0/8.
//
// docs/testing-tor.md explains how the network is built and why.
package tortest
