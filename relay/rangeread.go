package relay

import (
	"context"
	"sync"

	"github.com/pursuance/pursuance/keys"
)

// RangeReader reads a topic's cursor range (from, to] as consecutive
// ranges of limit cursors, several at once, one on each of its clients,
// and hands the pages over in cursor order. Through Tor, each client on
// its own circuit, this multiplies what a catch-up moves per round trip
// (docs/benchmarks.md, "Tor (private network)"): one circuit's transfer
// is bound by its flow-control window, not by the machine.
//
// A reader asks for the range (lo, hi] as `after=lo&limit=limit`: with no
// gaps in the cursors the answer is exactly that range; gaps make it run
// past hi, and what lies past hi is dropped (the next range has it). An
// answer may end early (the relay's size bound): the rest of its range is
// then read when asked for, on the first client. Each page has been
// checked by Client.Read (cursors rise, all above the asked cursor, no
// more than limit); the caller checks the rest as for any page.
type RangeReader struct {
	clients []*Client
	topic   keys.Topic
	limit   int
	to      uint64
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	next    uint64       // low end of the next range to start
	started int          // ranges started (range i is read by clients[i%len])
	ahead   []*readRange // started, not taken, in cursor order
	taken   uint64       // high end of the last range taken
}

type readRange struct {
	lo, hi uint64
	done   chan struct{}
	page   ReadResult
	err    error
}

// NewRangeReader starts reading topic's range (from, to] with up to
// len(clients) reads in flight (clients must not be empty), each of
// limit entries, until Close.
func NewRangeReader(ctx context.Context, clients []*Client, topic keys.Topic, from, to uint64, limit int) *RangeReader {
	ctx, cancel := context.WithCancel(ctx)
	rd := &RangeReader{clients: clients, topic: topic, limit: limit, to: to, ctx: ctx, cancel: cancel, next: from, taken: from}
	rd.fill()
	return rd
}

// fill starts ranges until as many are in flight as there are clients.
func (rd *RangeReader) fill() {
	for len(rd.ahead) < len(rd.clients) && rd.next < rd.to {
		r := &readRange{lo: rd.next, hi: min(rd.next+uint64(rd.limit), rd.to), done: make(chan struct{})}
		rd.next = r.hi
		c := rd.clients[rd.started%len(rd.clients)]
		rd.started++
		rd.ahead = append(rd.ahead, r)
		rd.wg.Go(func() {
			defer close(r.done)
			r.page, r.err = c.Read(rd.ctx, rd.topic, r.lo, rd.limit)
		})
	}
}

// Read returns the page after cursor after, as Client.Read(after, limit)
// would, but from the ranges read ahead: the entries after `after` up to
// the end of a range. A page is empty only when the relay has nothing
// after `after`. Past the reader's range it reads directly. Not safe for
// concurrent use: one caller takes the pages in order.
func (rd *RangeReader) Read(ctx context.Context, after uint64) (ReadResult, error) {
	for {
		for len(rd.ahead) > 0 && rd.ahead[0].hi <= after {
			rd.ahead = rd.ahead[1:] // passed by a direct read: not needed
			rd.fill()
		}
		var page ReadResult
		var hi uint64
		switch {
		case len(rd.ahead) > 0 && rd.ahead[0].lo == after:
			r := rd.ahead[0]
			select {
			case <-r.done:
			case <-ctx.Done():
				return ReadResult{}, ctx.Err()
			}
			rd.ahead = rd.ahead[1:]
			rd.taken = r.hi
			rd.fill()
			if r.err != nil {
				return ReadResult{}, r.err // asked again, the range is read directly
			}
			page, hi = r.page, r.hi
		case after < rd.taken:
			// The rest of a range whose answer ended early, or failed.
			var err error
			if page, err = rd.clients[0].Read(ctx, rd.topic, after, rd.limit); err != nil {
				return ReadResult{}, err
			}
			hi = rd.taken
		default:
			return rd.clients[0].Read(ctx, rd.topic, after, rd.limit)
		}
		whole := len(page.Entries)
		keep := 0
		for keep < whole && page.Entries[keep].Cursor <= hi {
			keep++
		}
		page.Entries = page.Entries[:keep]
		if keep == 0 && whole > 0 {
			// Nothing in this range (a gap in the cursors) though more
			// follows: the next range.
			after = hi
			continue
		}
		return page, nil
	}
}

// Close stops the reads in flight and waits for them.
func (rd *RangeReader) Close() {
	rd.cancel()
	rd.wg.Wait()
}
