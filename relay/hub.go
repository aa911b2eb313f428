package relay

import (
	"sync"
	"time"

	"github.com/pursuance/pursuance/keys"
)

// hub feeds live subscribers: it keeps each topic's most recent entries in
// memory (so a subscriber that is caught up never reads the store) and
// wakes the subscribers of a topic after each commit. One goroutine per
// subscriber, none per message.
type hub struct {
	mu     sync.Mutex
	topics map[keys.Topic]*feed
	subs   int
}

type feed struct {
	recent []liveMsg // ascending cursors, at most recentPerTopic entries in all
	held   int       // entries in recent
	subs   map[*subscriber]struct{}
}

// liveMsg is one commit's entries of a topic, encoded once for every
// subscriber that is caught up: they all send the same bytes.
type liveMsg struct {
	entries []Entry
	data    []byte
}

type subscriber struct {
	notify chan struct{}
}

func newHub() *hub { return &hub{topics: map[keys.Topic]*feed{}} }

func (h *hub) feed(t keys.Topic) *feed {
	f := h.topics[t]
	if f == nil {
		f = &feed{subs: map[*subscriber]struct{}{}}
		h.topics[t] = f
	}
	return f
}

func (h *hub) subscribe(t keys.Topic) *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &subscriber{notify: make(chan struct{}, 1)}
	h.feed(t).subs[s] = struct{}{}
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
	}
}

func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subs
}

// publish takes a commit's entries: kept for the topics someone follows,
// and their subscribers woken.
func (h *hub) publish(committed map[keys.Topic][]Entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for t, es := range committed {
		f := h.topics[t]
		if f == nil {
			continue
		}
		for len(es) > 0 {
			// Messages of at most liveMessageBytes.
			m := liveMsg{}
			for len(es) > 0 && (len(m.entries) == 0 || len(m.data)+len(es[0].Envelope) <= liveMessageBytes) {
				m.entries = append(m.entries, es[0])
				m.data = AppendEntry(m.data, es[0])
				es = es[1:]
			}
			f.recent = append(f.recent, m)
			f.held += len(m.entries)
		}
		for f.held > recentPerTopic && len(f.recent) > 1 {
			f.held -= len(f.recent[0].entries)
			f.recent = f.recent[1:]
		}
		for s := range f.subs {
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}
	}
}

// since returns the kept messages after cursor, the first possibly
// re-encoded to start just after it; ok is false when the kept ones do not
// reach back to cursor+1 (read the store instead).
func (h *hub) since(t keys.Topic, cursor uint64) ([]liveMsg, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.topics[t]
	if f == nil || len(f.recent) == 0 || f.recent[0].entries[0].Cursor > cursor+1 {
		return nil, false
	}
	i := len(f.recent)
	for i > 0 && f.recent[i-1].entries[0].Cursor > cursor {
		i--
	}
	// f.recent[i-1] may hold cursor itself and entries after it.
	var out []liveMsg
	if i > 0 {
		m := f.recent[i-1]
		var rest liveMsg
		for _, e := range m.entries {
			if e.Cursor > cursor {
				rest.entries = append(rest.entries, e)
				rest.data = AppendEntry(rest.data, e)
			}
		}
		if len(rest.entries) > 0 {
			out = append(out, rest)
		}
	}
	return append(out, f.recent[i:]...), true
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
	b.tokens = min(2*b.rate, b.tokens+now.Sub(b.at).Seconds()*b.rate)
	b.at = now
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}
