package store

import (
	"bytes"
	"cmp"
	"fmt"
	"math"

	"github.com/pursuance/pursuance/event"
)

// checkBatch reports the first reason a batch cannot be stored at all, before
// anything is written, so that both implementations reject the same batches
// the same way. It checks only what the store itself needs: events are
// present, and seq and lamport fit the signed 64-bit integers SQLite holds
// (honest logs grow them by one per event, so real ones never come close).
// Everything else about an event is the caller's to check.
func checkBatch(events []*event.Event, evidence []event.Equivocation) error {
	for i, e := range events {
		switch {
		case e == nil:
			return fmt.Errorf("event %d of the batch is nil", i)
		case e.Seq > math.MaxInt64:
			return fmt.Errorf("event %s: seq %d is beyond what the store holds", e.ID().Short(), e.Seq)
		case e.Lamport > math.MaxInt64:
			return fmt.Errorf("event %s: lamport %d is beyond what the store holds", e.ID().Short(), e.Lamport)
		}
	}
	for _, q := range evidence {
		if q.Seq > math.MaxInt64 {
			return fmt.Errorf("equivocation by %s: seq %d is beyond what the store holds", q.Author.Short(), q.Seq)
		}
	}
	return nil
}

// headChanges works out how a batch moves the heads of the logs it touches.
// added are the events the batch newly stores (not those already held). It
// returns the added events that become heads, and the parents that stop
// being heads, each with the pursuance whose heads they leave. An event
// named as a parent by another added event never becomes a head, so a
// causally ordered batch touches the heads table only at its frontier.
func headChanges(added []*event.Event) (newHeads []*event.Event, named map[event.ID]event.ID) {
	named = make(map[event.ID]event.ID)
	for _, e := range added {
		pid := e.PursuanceID()
		for _, p := range e.Parents {
			named[p] = pid
		}
	}
	for _, e := range added {
		if _, ok := named[e.ID()]; ok {
			delete(named, e.ID()) // never a head, so nothing to remove either
			continue
		}
		newHeads = append(newHeads, e)
	}
	return newHeads, named
}

// compareEquivocation orders equivocation records by (author, seq, A, B),
// the order Evidence returns them in.
func compareEquivocation(a, b event.Equivocation) int {
	if c := bytes.Compare(a.Author[:], b.Author[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	if c := a.A.Compare(b.A); c != 0 {
		return c
	}
	return a.B.Compare(b.B)
}

// compareCausal orders events by (lamport, ID), the order Iterate visits
// them in.
func compareCausal(a, b *event.Event) int {
	if c := cmp.Compare(a.Lamport, b.Lamport); c != 0 {
		return c
	}
	return a.ID().Compare(b.ID())
}
