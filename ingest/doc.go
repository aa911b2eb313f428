// Package ingest is the one way events enter a member's store: from a relay,
// from a peer, or from the member itself. It checks each event (encoding,
// static rules, signature, chain links), detects equivocations, holds events
// whose predecessors have not arrived in a bounded pending set, and writes
// what it accepts in one transaction per batch.
//
// It is fast on bulk catch-up because of how authenticity is defined
// (docs/events.md, "Authenticity"): an event's ID covers its signature, and
// an event's backlink is the ID of its author's previous event, so one valid
// signature commits the author to every earlier event of its chain. Ingest
// therefore verifies one signature per contiguous chain segment in a batch
// (the segment's last event), hashes every event, and spreads decoding and
// verification across cores. Only if a segment's last signature fails does
// it verify further back, so a forged or corrupted event is still caught
// exactly. Options.Naive turns this off and verifies every signature, one
// at a time, as the baseline the benchmarks compare against; both paths
// accept exactly the same events.
//
// For a stream of batches, such as a catch-up, IngestBatches checks each
// batch while the store writes the one before it, so that checking (all
// cores) overlaps the store's Put (mostly one core). Each batch is still one
// Put in causal order, with the same results as one Ingest call per batch;
// the batch being written counts as stored for the check of the next, and
// if its Put fails, what it changed in the pending set and the caches is
// undone.
//
// Deciding whether an event is permitted by the charter happens later, in
// the rules engine, over the accepted log; ingest only establishes that the
// log is authentic and well-linked.
package ingest
