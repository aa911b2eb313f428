package relay

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pursuance/pursuance/keys"
)

// The live feed of a NATS store: what its front hands its live subscribers.

// follow starts the live feed: from stream sequence from, or (0) with what
// is stored from now on. Heartbeats every second: a feed cut off by a
// server's failure is noticed within seconds (the default, 5 s of 30,
// left live subscribers waiting half a minute) and resumes after the last
// entry it handed on.
func (n *NATS) follow(ctx context.Context, from uint64) (jetstream.ConsumeContext, error) {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}
	if from > 0 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}
	}
	c, err := n.js.OrderedConsumer(ctx, n.stream, cfg)
	if err != nil {
		return nil, err
	}
	return c.Consume(n.delivered, jetstream.PullExpiry(natsFeedExpiry), jetstream.PullHeartbeat(natsFeedHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { n.log.Debug("live feed", "err", err) }))
}

// watchFeed restarts the live feed when it stalls: the stream holds
// entries past the last the feed took, and the feed took none for
// natsFeedStalled. The ordered consumer resets itself after most
// failures, but a stream leader killed under load left a front's feed
// stuck for good, once in a while (TestNATSServerKilled): a new consumer
// from the entry after the last taken resumes it, and delivered drops
// what an old one still hands on.
func (n *NATS) watchFeed() {
	t := time.NewTicker(natsFeedWatch)
	defer t.Stop()
	var seen uint64
	var since time.Time
	for {
		select {
		case <-n.watchDone:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), natsFeedWatch)
		st, err := n.js.Stream(ctx, n.stream)
		cancel()
		if err != nil {
			continue
		}
		last := st.CachedInfo().State.LastSeq
		n.fmu.Lock()
		fed := n.lastFed
		n.fmu.Unlock()
		if last <= fed || fed != seen {
			seen, since = fed, time.Time{}
			continue
		}
		if since.IsZero() {
			since = time.Now()
			continue
		}
		if time.Since(since) < natsFeedStalled {
			continue
		}
		ctx, cancel = context.WithTimeout(context.Background(), natsFeedWatch)
		cons, err := n.follow(ctx, fed+1)
		cancel()
		if err != nil {
			continue
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			cons.Stop()
			return
		}
		old := n.cons
		n.cons = cons
		n.mu.Unlock()
		old.Stop()
		n.log.Info("live feed restarted", "after", fed, "stream_last", last)
		since = time.Time{}
	}
}

// openStream creates the relay's stream, or opens it: made before by this
// front or another, it keeps its instance and takes our age limit.
func (n *NATS) openStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	st, err := n.js.CreateStream(ctx, cfg)
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return st, err
	}
	if st, err = n.js.Stream(ctx, cfg.Name); err != nil {
		return nil, err
	}
	have := st.CachedInfo().Config
	if have.MaxAge != cfg.MaxAge {
		have.MaxAge = cfg.MaxAge
		return n.js.UpdateStream(ctx, have)
	}
	return st, nil
}

// delivered takes one entry of the live feed. Entries that come together
// (an append's batch, several appends) are handed on together, as a
// commit of the SQLite store is, so that a subscriber gets them in one
// message: an entry waits while the consumer says more are pending, up to
// natsFeedBatch entries or natsFeedWait.
func (n *NATS) delivered(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	topic, _, ok := n.parseSubject(m.Subject())
	if !ok {
		return
	}
	seq := md.Sequence.Stream
	n.sawCursor(topic, seq)
	n.fmu.Lock()
	if seq <= n.lastFed {
		n.fmu.Unlock()
		return // a stopped feed's, taken already
	}
	n.lastFed = seq
	if n.feed == nil {
		n.feed = map[keys.Topic][]Entry{}
	}
	n.feed[topic] = append(n.feed[topic], Entry{Cursor: seq, Envelope: m.Data()})
	n.feedN++
	if md.NumPending > 0 && n.feedN < natsFeedBatch {
		if n.feedTimer == nil {
			n.feedTimer = time.AfterFunc(natsFeedWait, n.flushFeed)
		}
		n.fmu.Unlock()
		return
	}
	n.fmu.Unlock()
	n.flushFeed()
}

// flushFeed hands the entries waiting to the server's live subscribers.
func (n *NATS) flushFeed() {
	n.fmu.Lock()
	defer n.fmu.Unlock() // held while handing on: batches stay in order
	if n.feedTimer != nil {
		n.feedTimer.Stop()
		n.feedTimer = nil
	}
	if n.feedN == 0 {
		return
	}
	batch := n.feed
	n.feed, n.feedN = nil, 0
	n.mu.Lock()
	fn := n.onCommit
	n.mu.Unlock()
	if fn != nil {
		fn(batch)
	}
}

// sawCursor records that topic holds cursor: this front's reads of the
// topic must reach it (a replica that lags is asked again).
func (n *NATS) sawCursor(t keys.Topic, c uint64) {
	n.kmu.Lock()
	if c > n.known[t] {
		if len(n.known) >= natsMaxKnownTopics {
			clear(n.known)
		}
		n.known[t] = c
	}
	n.kmu.Unlock()
}

// forgetCursor lowers what this front expects topic to hold to c.
func (n *NATS) forgetCursor(t keys.Topic, c uint64) {
	n.kmu.Lock()
	if n.known[t] > c {
		n.known[t] = c
	}
	n.kmu.Unlock()
}

func (n *NATS) knownCursor(t keys.Topic) uint64 {
	n.kmu.Lock()
	defer n.kmu.Unlock()
	return n.known[t]
}
