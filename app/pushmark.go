package app

import (
	"context"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// A push plans what a relay lacks by going through the log in order
// (push.go). Reading everything the relay is known to hold from sync.db
// for that (heldBy: a row per event, blinded IDs into maps) was most of a
// round's work at 100,000 events. A push mark, kept by the process for
// the home (foldCache), records what a complete push to a relay found:
// the log it planned from (each author's highest seq, and how many events)
// and the events the relay was not known to hold then. The next push to
// that relay looks up only the events that came since and those, one by
// one; the others were held then, and what a relay holds is only
// forgotten by this process's sync code, which drops the relay's marks
// when it does (syncDB.shrunk: a relay wiped, a topic reset, pushed
// envelopes lost). A full plan is made again every fullPlanEvery, when the
// current group generation changed, and when the log differs from the
// mark otherwise than by events above the authors' seqs (a fork).

// fullPlanEvery bounds how long pushes to a relay plan from a mark before
// reading all it holds again: what another process of the home forgot
// (its own sync, which re-sends meanwhile) is caught by then.
const fullPlanEvery = 5 * time.Minute

// pushMark is what a complete push to a relay found (above).
type pushMark struct {
	vv      map[identity.PublicKey]uint64 // each author's highest seq in the log planned from
	count   int                           // the events of that log
	pending map[event.ID]bool             // its events the relay was not known to hold
	last    keys.Topic                    // the current group generation's topic then
	heldAny bool                          // the relay was known to hold some event
	full    time.Time                     // when the last full plan was made
}

type pushKey struct {
	p     event.ID
	relay string
}

// takePushMark returns the mark of pushes of p to relay and forgets it
// (a push that fails leaves none: the next plans in full), nil if none,
// and the relay's epoch, which putPushMark is given back.
func (c *foldCache) takePushMark(p event.ID, relay string) (*pushMark, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := pushKey{p, relay}
	m := c.marks[k]
	delete(c.marks, k)
	return m, c.epochs[relay]
}

// putPushMark records the mark of a complete push of p to relay, unless
// sync.db forgot some of the relay's holdings since the push began (its
// epoch moved on): the push may have planned from them.
func (c *foldCache) putPushMark(p event.ID, relay string, epoch uint64, m *pushMark) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epochs[relay] != epoch {
		return
	}
	if c.marks == nil {
		c.marks = map[pushKey]*pushMark{}
	}
	c.marks[pushKey{p, relay}] = m
}

// dropPushMarks forgets the marks of pushes to relay: sync.db forgot some
// of what it holds.
func (c *foldCache) dropPushMarks(relay string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epochs == nil {
		c.epochs = map[string]uint64{}
	}
	c.epochs[relay]++
	for k := range c.marks {
		if k.relay == relay {
			delete(c.marks, k)
		}
	}
}

// holds reports whether the relay is known to hold event id (on any
// topic, or on topic t when t is not zero): one lookup, not heldBy's scan.
func (s *syncDB) holds(ctx context.Context, relay string, t keys.Topic, id event.ID) (bool, error) {
	q, args := "SELECT 1 FROM held WHERE relay = ? AND id = ? LIMIT 1", []any{s.relay(relay), s.id(id)}
	if t != (keys.Topic{}) {
		q, args = "SELECT 1 FROM held WHERE relay = ? AND id = ? AND topic = ?", append(args, s.topic(t))
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	return rows.Next(), rows.Err()
}
