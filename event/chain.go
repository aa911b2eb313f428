package event

import (
	"fmt"

	"github.com/pursuance/pursuance/identity"
)

// Chain authors the successive events of one member in one pursuance. It
// tracks the member's last event so that each new one carries the right
// seq, backlink and lamport clock. A Chain is not safe for concurrent use.
type Chain struct {
	Key       *identity.SigningKey
	Pursuance ID   // set by Genesis, or by the caller to author in an existing pursuance
	Last      *Ref // the author's latest event in this pursuance, nil before the first
}

// Genesis founds a new pursuance: the chain's first event, of kind genesis.
// The pursuance's ID is the returned event's ID.
func (c *Chain) Genesis(time uint64, body []byte) (*Event, error) {
	if c.Last != nil || !c.Pursuance.IsZero() {
		return nil, fmt.Errorf("event: genesis on a chain that already has events")
	}
	e, err := Sign(c.Key, Draft{Seq: 1, Lamport: 1, Kind: KindGenesis, Time: time, Body: body})
	if err != nil {
		return nil, err
	}
	c.Pursuance = e.ID()
	r := e.Ref()
	c.Last = &r
	return e, nil
}

// Next signs the chain's next event. parents are the heads of the log the
// author has seen (with their lamport clocks); the author's own last event
// need not be among them.
func (c *Chain) Next(kind Kind, parents []Ref, time uint64, body []byte) (*Event, error) {
	if c.Pursuance.IsZero() {
		return nil, fmt.Errorf("event: chain has no pursuance")
	}
	d := Draft{Pursuance: c.Pursuance, Seq: 1, Kind: kind, Time: time, Body: body}
	max := uint64(0)
	if c.Last != nil {
		d.Seq = c.Last.Seq + 1
		d.Backlink = c.Last.ID
		max = c.Last.Lamport
	}
	d.Parents = make([]ID, len(parents))
	for i, p := range parents {
		d.Parents[i] = p.ID
		max = maxU(max, p.Lamport)
	}
	d.Lamport = max + 1
	e, err := Sign(c.Key, d)
	if err != nil {
		return nil, err
	}
	r := e.Ref()
	c.Last = &r
	return e, nil
}
