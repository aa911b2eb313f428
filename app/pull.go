package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
)

// relayRun is one relay's part of a sync, worked by one goroutine.
type relayRun struct {
	*syncRun
	res *RelayResult
	c   *relay.Client
	// readers read a topic's pages several at once (nil: one after
	// another on c): see readClients.
	readers []*relay.Client
	pulled  map[keys.Topic]bool // topics read this sync
	bytes   int64               // envelope bytes read this sync
	// instanceResets counts the times this sync found the relay's
	// instance changed; a second time, its answers are not believed.
	instanceResets int
}

// pullAll reads every topic of the keys this member holds, and of those
// it learns meanwhile (from this relay or another), once each.
func (rr *relayRun) pullAll(ctx context.Context) error {
	for range maxKeyRounds {
		ks, err := rr.keys(ctx)
		if err != nil {
			return err
		}
		var todo []keys.Topic
		for t := range ks {
			if !rr.pulled[t] {
				todo = append(todo, t)
			}
		}
		if len(todo) == 0 {
			return nil
		}
		slices.SortFunc(todo, func(a, b keys.Topic) int { return bytes.Compare(a[:], b[:]) })
		for _, t := range todo {
			rr.pulled[t] = true
			if err := rr.pullTopic(ctx, t, ks[t]); err != nil {
				return err
			}
			if rr.res.Partial {
				return nil
			}
		}
	}
	return nil
}

// topicRead is the state of reading one topic of one relay.
type topicRead struct {
	t        keys.Topic
	env      *keys.Envelopes
	at       uint64  // cursor of the last entry read
	anchor   []byte  // hash of the envelope at `at` as read before (nil: unknown)
	saved    readPos // what sync.db is to keep: before the first entry that did not open
	held     bool    // an entry did not open: saved stays where it is
	target   uint64  // the relay's last cursor when the read began
	first    uint64  // the relay's first kept cursor, as last answered (0: none kept)
	last     uint64  // the relay's last cursor, as last answered
	pushed   []pushedEnv
	seen     map[[32]byte]bool // hashes of pushed envelopes read
	logged   bool              // a failure to open was logged
	resets   int
	barren   int // pages in a row of which nothing opened
	complete bool
}

// restart reads the topic again from the start.
func (tr *topicRead) restart() {
	*tr = topicRead{t: tr.t, env: tr.env, resets: tr.resets, logged: tr.logged, seen: map[[32]byte]bool{}}
}

// pullTopic reads one topic of the relay from where this home last
// stopped to the relay's end (as it was when the read began), page by
// page, within the sync's bounds. It checks the relay against what it
// said before: its instance, the envelope at the cursor where reading
// stopped (the anchor), and the envelopes it acknowledged; a relay that
// lost its data or rewound its history is read again from the start.
// An envelope that does not open is not stepped over: the cursor kept is
// the one before it, so that the next sync reads it again (from this
// relay once honest; meanwhile its event may come from another).
func (rr *relayRun) pullTopic(ctx context.Context, t keys.Topic, k keys.Key) error {
	sdb, url := rr.sdb, rr.c.URL()
	env, err := keys.NewEnvelopes(&k)
	if err != nil {
		return err
	}
	tr := &topicRead{t: t, env: env}
	if err := rr.loadTopic(ctx, tr); err != nil {
		return err
	}
	// After the first page, which checks the anchor and tells where the
	// topic ends, the rest may be read ahead, several pages at once; they
	// are still taken, checked and stored in cursor order, page by page.
	var ahead *relay.RangeReader
	stopAhead := func() {
		if ahead != nil {
			ahead.Close()
			ahead = nil
		}
	}
	defer stopAhead()
	for pages := 0; ; pages++ {
		if pages >= rr.limits.pages || rr.bytes >= rr.limits.bytes || tr.barren >= rr.limits.barren {
			rr.res.Partial = true
			break
		}
		after := tr.at
		if pages == 0 && tr.at > 0 {
			after = tr.at - 1 // the entry at the cursor, to check it is still there
		}
		var page relay.ReadResult
		err := retry(ctx, func() error {
			var err error
			if ahead != nil {
				page, err = ahead.Read(ctx, after)
			} else {
				limit := rr.limits.page
				if pages == 0 && len(rr.readers) > 1 {
					limit = min(limit, AheadFirstPage)
				}
				page, err = rr.c.Read(ctx, t, after, limit)
			}
			return err
		})
		if err != nil {
			return err
		}
		restart, err := rr.checkInstance(ctx, page.Instance)
		if err != nil {
			return err
		}
		if !restart && pages == 0 && tr.at > 0 {
			restart, err = rr.checkAnchor(ctx, tr, &page)
			if err != nil {
				return err
			}
		}
		if restart {
			stopAhead()
			tr.restart()
			if err := rr.loadTopic(ctx, tr); err != nil {
				return err
			}
			pages = -1
			continue
		}
		tr.first, tr.last = page.First, page.Last
		if pages == 0 {
			tr.target = page.Last
			if err := rr.judgeBefore(ctx, tr, &page); err != nil {
				return err
			}
		}
		if len(page.Entries) == 0 {
			tr.complete = true
			break
		}
		lo := tr.at
		if err := rr.apply(ctx, tr, &page); err != nil {
			return err
		}
		if err := rr.settle(ctx, tr, lo, false); err != nil {
			return err
		}
		if pages == 0 && len(rr.readers) > 1 && tr.target > tr.at {
			ahead = relay.NewRangeReader(ctx, rr.readers, t, tr.at, tr.target, rr.limits.page)
		}
		// Keep the cursor only while nothing waits for predecessors: what
		// waits in memory is lost when this process ends, and must be
		// read again.
		if rr.n.in.PendingCount() == 0 {
			if err := sdb.setReadPos(ctx, url, t, tr.saved); err != nil {
				return err
			}
		}
		if page.Last > 0 {
			rr.progress(ProgressFetched, url, tr.at, page.Last)
		}
		if tr.at >= tr.target {
			tr.complete = true
			break
		}
	}
	if tr.complete {
		return rr.settle(ctx, tr, tr.at, true)
	}
	return nil
}

// settle closes the checks of the pushed envelopes a read has covered:
// shown (read, by hash), or lost, when the read passed the cursor the
// relay answered for them, and, at the end of a complete read, when the
// relay acknowledged a cursor beyond its end or answered none and the
// read did not show them.
func (rr *relayRun) settle(ctx context.Context, tr *topicRead, lo uint64, end bool) error {
	var shown, lost []pushedEnv
	for _, p := range tr.pushed {
		switch {
		case tr.seen[p.hash]:
			shown = append(shown, p)
		case p.cursor != 0 && pruned(tr.first, tr.last, p.cursor):
			shown = append(shown, p) // dropped by retention since: kept as held
		case p.cursor > lo && p.cursor <= tr.at, end && (p.cursor == 0 || p.cursor > tr.at):
			lost = append(lost, p)
		}
	}
	if len(shown) > 0 {
		if err := rr.sdb.settlePushed(ctx, rr.c.URL(), tr.t, shown, nil); err != nil {
			return err
		}
		tr.pushed = withoutEnvs(tr.pushed, shown)
	}
	return rr.lose(ctx, tr, lost)
}

// loadTopic reads from sync.db where this home stopped reading the topic
// and what it pushed there unconfirmed.
func (rr *relayRun) loadTopic(ctx context.Context, tr *topicRead) error {
	pos, err := rr.sdb.readPos(ctx, rr.c.URL(), tr.t)
	if err != nil {
		return err
	}
	tr.at, tr.anchor, tr.saved = pos.cursor, pos.anchor, pos
	if tr.pushed, err = rr.sdb.pushedOn(ctx, rr.c.URL(), tr.t); err != nil {
		return err
	}
	tr.seen = map[[32]byte]bool{}
	return nil
}

// checkInstance compares the relay's instance ID with the one last seen.
// Another one means the relay's data was wiped: everything known of it is
// forgotten, and the read starts over (restart).
func (rr *relayRun) checkInstance(ctx context.Context, instance string) (restart bool, err error) {
	if instance == "" {
		return false, nil // a relay older than instance IDs
	}
	url := rr.c.URL()
	known, err := rr.sdb.instance(ctx, url)
	switch {
	case err != nil:
		return false, err
	case known == instance:
		return false, nil
	case known == "":
		return false, rr.sdb.setInstance(ctx, url, instance)
	}
	if rr.instanceResets > 0 {
		return false, fmt.Errorf("its instance ID changed twice during one sync: %w", errNotBelieved)
	}
	rr.instanceResets++
	rr.res.Reset = "its data was wiped (a new instance)"
	return true, rr.sdb.resetRelay(ctx, url, instance)
}

// checkAnchor checks, on the first page of a topic read from cursor
// tr.at, that the relay still has there the envelope read before. If not
// (restored from a backup, or it lied), what is known of the topic at the
// relay is forgotten and the read starts over (restart). The anchor
// entry itself is taken off the page.
func (rr *relayRun) checkAnchor(ctx context.Context, tr *topicRead, page *relay.ReadResult) (restart bool, err error) {
	var why string
	es := page.Entries
	switch {
	case page.Last < tr.at:
		why = fmt.Sprintf("its last cursor is %d, below %d where this home had read", page.Last, tr.at)
	case len(es) > 0 && es[0].Cursor == tr.at:
		if h := sha256.Sum256(es[0].Envelope); tr.anchor != nil && !bytes.Equal(h[:], tr.anchor) {
			why = fmt.Sprintf("its entry %d is not the one read before", tr.at)
		}
		page.Entries = es[1:]
		tr.seeEntry(es[0])
	case pruned(page.First, page.Last, tr.at):
		// Dropped by retention: nothing to check it against.
	default:
		why = fmt.Sprintf("its entry %d is gone", tr.at)
	}
	if why == "" {
		return false, nil
	}
	if tr.resets > 0 {
		return false, fmt.Errorf("its history of a topic changed twice during one sync (%s): %w", why, errNotBelieved)
	}
	tr.resets++
	rr.res.Reset = "its history was rewound, as by a restore from a backup (" + why + ")"
	return true, rr.sdb.resetTopic(ctx, rr.c.URL(), tr.t)
}

// pruned reports whether the entry at cursor is one the relay's
// retention dropped, given the first kept and last cursors it answered: a
// topic whose every entry was dropped answers first 0.
func pruned(first, last, cursor uint64) bool {
	return cursor < first || first == 0 && cursor <= last
}

// seeEntry notes an entry whose hash a pushed envelope may have.
func (tr *topicRead) seeEntry(e relay.Entry) {
	if len(tr.pushed) > 0 {
		tr.seen[sha256.Sum256(e.Envelope)] = true
	}
}

// judgeBefore settles, on the first page, the envelopes pushed at
// cursors before where this read began: the read will not show them.
func (rr *relayRun) judgeBefore(ctx context.Context, tr *topicRead, page *relay.ReadResult) error {
	var lost, dropped []pushedEnv
	for _, p := range tr.pushed {
		if p.cursor == 0 || p.cursor >= tr.at || tr.seen[p.hash] {
			continue
		}
		if pruned(page.First, page.Last, p.cursor) {
			dropped = append(dropped, p) // retention: kept as held
		} else {
			lost = append(lost, p)
		}
	}
	if err := rr.sdb.settlePushed(ctx, rr.c.URL(), tr.t, dropped, nil); err != nil {
		return err
	}
	return rr.lose(ctx, tr, lost)
}

// lose records pushed envelopes the relay did not keep: they are sent
// again.
func (rr *relayRun) lose(ctx context.Context, tr *topicRead, lost []pushedEnv) error {
	if len(lost) == 0 {
		return nil
	}
	rr.res.Lost += len(lost)
	tr.pushed = withoutEnvs(tr.pushed, lost)
	return rr.sdb.settlePushed(ctx, rr.c.URL(), tr.t, nil, lost)
}

// withoutEnvs returns pushed without the envelopes of drop, in place, in
// time linear in both: a read settles page after page of what a push sent,
// and after a push of 100k events a search of drop for each of pushed (as
// before) took a round minutes (issue 15).
func withoutEnvs(pushed, drop []pushedEnv) []pushedEnv {
	gone := make(map[pushedEnv]bool, len(drop))
	for _, p := range drop {
		gone[p] = true
	}
	return slices.DeleteFunc(pushed, func(p pushedEnv) bool { return gone[p] })
}

// apply opens a page's envelopes, stores their events (holding the home
// meanwhile) and moves the read on.
func (rr *relayRun) apply(ctx context.Context, tr *topicRead, page *relay.ReadResult) error {
	n, url := rr.n, rr.c.URL()
	var batch [][]byte
	var ids []event.ID
	var updates [][]byte
	dedup := map[[32]byte]bool{}
	tasks := map[event.ID]bool{} // the task events of the page
	tampered := 0
	for _, e := range page.Entries {
		rr.bytes += int64(len(e.Envelope))
		tr.seeEntry(e)
		b, err := tr.env.Open(e.Envelope)
		if err != nil {
			tampered++
			if !tr.logged {
				tr.logged = true
				n.warn("a relay's envelope does not open: altered or forged; read again at the next sync", "relay", url, "cursor", e.Cursor, "topic", relay.TopicHex(tr.t)[:12], "err", err)
			}
			tr.held = true
			continue
		}
		// Not an event this member may need (yet): not stored (admit.go).
		refused := n.refuse(ctx, rr.sdb, url, tr.t, e.Cursor, b)
		if h := sha256.Sum256(b); !dedup[h] {
			dedup[h] = true
			if !refused {
				batch = append(batch, b)
			}
			updates = append(updates, b)
		}
		if ev, err := event.Decode(b); err == nil && !refused {
			ids = append(ids, ev.ID())
			if taskKind(ev.Kind) {
				tasks[ev.ID()] = true
			}
		}
		if !tr.held {
			h := sha256.Sum256(e.Envelope)
			tr.saved = readPos{cursor: e.Cursor, anchor: h[:]}
		}
	}
	last := page.Entries[len(page.Entries)-1]
	tr.at = last.Cursor
	if tampered == len(page.Entries) {
		tr.barren++
	} else {
		tr.barren = 0
	}
	var accepted, rejected int
	keyish := false // whether anything but a task's events was stored
	if len(batch) > 0 {
		err := rr.home.with(ctx, func() error {
			out, err := n.in.Ingest(ctx, batch)
			if err != nil {
				return err
			}
			accepted, rejected = len(out.Accepted), len(out.Rejected)
			keyish = slices.ContainsFunc(out.Accepted, func(id event.ID) bool { return !tasks[id] })
			if accepted > 0 {
				n.wroteTo(rr.p)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	rr.mu.Lock()
	rr.total.Received += accepted
	rr.total.Refused += rejected
	rr.total.Tampered += tampered
	before := len(rr.chains[rr.p])
	for _, b := range updates {
		noteGroupUpdate(b, rr.chains)
	}
	// The keys read with change only with key events (or events of
	// kinds that may bring keys: anything but a task's), or a chain of
	// updates read: a page of task events, the bulk of a log, costs no
	// recomputing of the keys, which folds the log (syncRun.keys).
	if keyish || len(rr.chains[rr.p]) != before {
		rr.version++
	}
	rr.mu.Unlock()
	rr.res.Received += accepted
	rr.res.Tampered += tampered
	return rr.sdb.markHeld(ctx, url, tr.t, ids)
}

// errNotBelieved is wrapped by the errors of a relay whose answers
// contradict each other within one sync.
var errNotBelieved = errors.New("its answers are not believed")
