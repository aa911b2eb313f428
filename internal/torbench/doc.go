// Package torbench measures Pursuance over Tor in internal/tortest's
// private Tor network, each measurement beside the same work over plain
// loopback in the same run (docs/benchmarks.md, "Tor (private network)"):
//
//   - catch-up: a new member reads, opens, verifies and stores a
//     pursuance's log from a relay (`pursuance relay --onion`, run in the
//     test process) through its onion service, against the same relay's
//     loopback listener;
//   - delivery: a task written by one member's node reaches another's
//     (write, sync out, the relay's live stream, sync in), through the
//     relay's onion service and each member's own tor, against loopback;
//   - start-up: from `pursuance up --tor` to its onion service reachable
//     by another tor client, against plain `pursuance up` to its relay
//     answering on loopback.
//
// It holds only tests: a small run by default, as a smoke test that fails
// if any path breaks (every event verified, every task delivered, the
// node reachable), and the full measurement with PURSUANCE_TOR_BENCH=1,
// which prints a table. All of it runs inside tortest's network namespace,
// which has nothing but loopback: the private network's relays are on
// this machine, so what is measured is Tor's own cost (cells, crypto,
// circuits, onion-service rendezvous), not the Internet's latency.
package torbench
