package relay

import (
	"sort"
	"sync"
	"time"

	"github.com/pursuance/pursuance/keys"
)

// hub feeds live subscribers: it keeps each followed topic's most recent
// entries in memory, encoded once as the messages every caught-up
// subscriber sends (so such a subscriber never reads the store), and wakes
// the subscribers of a topic after each commit. One goroutine per
// subscriber, none per message.
//
// Its memory is bounded in bytes: at most topicMax per topic and max in
// all, the oldest messages going first. A message a subscriber is sending
// stays counted until it is sent, even once dropped from the cache, and a
// subscriber takes only cached messages, one at a time, so everything the
// hub hands out is within max. A subscriber whose next message is no
// longer cached reads the store instead (Server.stream).
type hub struct {
	mu       sync.Mutex
	topics   map[keys.Topic]*feed
	subs     int
	bytes    int64 // of every message cached or being sent
	max      int64
	topicMax int64
	order    []*liveMsg // cached messages, oldest first (and some dropped ones, skipped)
	dropped  int        // dropped messages still in order
}

type feed struct {
	recent []*liveMsg // cached messages, ascending cursors
	bytes  int64      // of recent
	subs   map[*subscriber]struct{}
}

// liveMsg is entries of one topic from one commit, encoded once for every
// subscriber that is caught up: they all send the same bytes.
type liveMsg struct {
	feed    *feed
	data    []byte     // the entry frames
	entries []entryRef // where each entry's frame starts in data
	refs    int        // subscribers sending it
	cached  bool
	bytes   int64 // what it costs, counted in hub.bytes until freed
}

type entryRef struct {
	cursor uint64
	off    int
}

// What a cached message costs besides its envelopes: per entry, its
// frame's two varints (at most) and its entryRef; per message, the rest.
const (
	frameCost = 2 * 10
	entryCost = frameCost + 16
	msgCost   = 64
)

// size is what m costs.
func (m *liveMsg) size() int64 { return int64(cap(m.data) + 16*cap(m.entries) + msgCost) }

// free lets go of m's data, which hub.order may outlive; called with
// hub.mu held once m is neither cached nor being sent.
func (h *hub) free(m *liveMsg) {
	h.bytes -= m.bytes
	m.data, m.entries, m.feed = nil, nil, nil
}

func (m *liveMsg) last() uint64 { return m.entries[len(m.entries)-1].cursor }

type subscriber struct {
	notify chan struct{}
}

func newHub(max, topicMax int64) *hub {
	return &hub{topics: map[keys.Topic]*feed{}, max: max, topicMax: topicMax}
}

func (h *hub) subscribe(t keys.Topic) *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &subscriber{notify: make(chan struct{}, 1)}
	f := h.topics[t]
	if f == nil {
		f = &feed{subs: map[*subscriber]struct{}{}}
		h.topics[t] = f
	}
	f.subs[s] = struct{}{}
	h.subs++
	return s
}

func (h *hub) unsubscribe(t keys.Topic, s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.topics[t]
	delete(f.subs, s)
	h.subs--
	if len(f.subs) == 0 {
		delete(h.topics, t) // a topic nobody follows keeps no memory
		for len(f.recent) > 0 {
			h.uncache(f.recent[0])
		}
	}
}

func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subs
}

// held returns the bytes the hub holds.
func (h *hub) held() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bytes
}

// publish takes a commit's entries: cached for the topics someone follows
// (copied: the hub keeps no reference to them), and their subscribers
// woken.
func (h *hub) publish(committed map[keys.Topic][]Entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for t, es := range committed {
		f := h.topics[t]
		if f == nil {
			continue
		}
		// Only the newest topicMax bytes are kept: encode no more, and
		// drop what is cached before them (the cache holds no gap).
		tail := int64(msgCost)
		for i := len(es) - 1; i >= 0; i-- {
			if tail += int64(len(es[i].Envelope)) + entryCost; tail > h.topicMax {
				es = es[i+1:]
				for len(f.recent) > 0 {
					h.uncache(f.recent[0])
				}
				break
			}
		}
		for len(es) > 0 {
			// Messages of at most liveMessageBytes (or one larger entry).
			n, size := 0, 0
			for n < len(es) && (n == 0 || size+len(es[n].Envelope)+frameCost <= liveMessageBytes) {
				size += len(es[n].Envelope) + frameCost
				n++
			}
			m := &liveMsg{feed: f, data: make([]byte, 0, size), entries: make([]entryRef, n), cached: true}
			for i, e := range es[:n] {
				m.entries[i] = entryRef{cursor: e.Cursor, off: len(m.data)}
				m.data = AppendEntry(m.data, e)
			}
			es = es[n:]
			m.bytes = m.size()
			f.recent = append(f.recent, m)
			f.bytes += m.bytes
			h.bytes += m.bytes
			h.order = append(h.order, m)
		}
		for f.bytes > h.topicMax && len(f.recent) > 0 {
			h.uncache(f.recent[0])
		}
		for s := range f.subs {
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}
	}
	// The oldest messages go first, whatever their topic.
	for h.bytes > h.max && len(h.order) > h.dropped {
		m := h.order[0]
		h.order[0] = nil
		h.order = h.order[1:]
		h.uncache(m) // if it still was
		h.dropped--  // no longer in order
	}
	if h.dropped > 64 && h.dropped > len(h.order)/2 {
		kept := make([]*liveMsg, 0, len(h.order)-h.dropped)
		for _, m := range h.order {
			if m.cached {
				kept = append(kept, m)
			}
		}
		h.order, h.dropped = kept, 0
	}
}

// uncache drops m from the cache: it is the oldest of its topic. Its bytes
// are freed once no subscriber is sending it. Called with mu held.
func (h *hub) uncache(m *liveMsg) {
	if !m.cached {
		return
	}
	m.cached = false
	f := m.feed
	if len(f.recent) > 0 && f.recent[0] == m {
		f.recent[0] = nil
		f.recent = f.recent[1:]
	}
	f.bytes -= m.bytes
	h.dropped++
	if m.refs == 0 {
		h.free(m)
	}
}

// next returns the cached entries that come right after cursor, as one
// message's frames (a part of a message when cursor is inside it); ok is
// false when the cache does not reach back to cursor+1 (read the store
// instead). The caller sends data, then calls done(m).
func (h *hub) next(t keys.Topic, cursor uint64) (m *liveMsg, data []byte, n int, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.topics[t]
	if f == nil || len(f.recent) == 0 || f.recent[0].entries[0].cursor > cursor+1 {
		return nil, nil, 0, false
	}
	// The first message with entries after cursor (a caught-up
	// subscriber asks for the newest).
	k := sort.Search(len(f.recent), func(k int) bool { return f.recent[k].last() > cursor })
	if k == len(f.recent) {
		return nil, nil, 0, true // caught up
	}
	m = f.recent[k]
	i := sort.Search(len(m.entries), func(i int) bool { return m.entries[i].cursor > cursor })
	m.refs++
	return m, m.data[m.entries[i].off:], len(m.entries) - i, true
}

// done says a subscriber has sent m.
func (h *hub) done(m *liveMsg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m.refs--
	if m.refs == 0 && !m.cached {
		h.free(m)
	}
}

// bucket is a token bucket: rate per second, burst of twice that.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	at     time.Time
}

func newBucket(rate float64, now time.Time) *bucket {
	return &bucket{rate: rate, tokens: 2 * rate, at: now}
}

func (b *bucket) take(now time.Time, n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(2*b.rate, b.tokens+d.Seconds()*b.rate)
		b.at = now
	}
}

// full reports whether b has refilled: it then carries no state.
func (b *bucket) full(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.tokens >= 2*b.rate
}
