package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
	"github.com/pursuance/pursuance/store"
)

// SyncOptions change what Sync does.
type SyncOptions struct {
	// Relays are relays or peers to sync with beside the pursuance's
	// relay list (a member's node serves the same protocol).
	Relays []string
	// Progress, when set, is told how a long sync is going. Reading a
	// relay's topic, it gets ProgressFetched with the relay's URL, the
	// cursor reached and the topic's last cursor.
	Progress func(format string, args ...any)
	// PullOnly reads and sends nothing.
	PullOnly bool
	// Quick tries each relay once, within a few seconds, without retries:
	// for the sync every command does before reading and after writing.
	Quick bool
	// BeforePush, when set, is called once what was read is in and keys
	// are healed, before anything is sent: a node refreshes its embedded
	// relay's Admitter there, so that what it sends itself is admitted.
	BeforePush func(context.Context)
}

// quickKey marks a quick sync's context: retry does not retry.
type quickKey struct{}

// quickTimeout bounds a quick sync.
const quickTimeout = 5 * time.Second

// SyncResult says what a sync did.
type SyncResult struct {
	Received int // events new to this home
	Sent     int // envelopes sent, all relays together
	Relays   []RelayResult
	// Tampered counts envelopes on a topic whose key this member holds
	// that do not open: altered or forged by a relay (or by someone with an
	// old key). Refused counts events that opened but failed verification.
	Tampered, Refused int
	// Missing names events that others name as parents or predecessors and
	// that no relay had: withheld or pruned everywhere asked.
	Missing []event.ID
}

// RelayResult is one relay's part of a sync.
type RelayResult struct {
	URL      string
	Received int
	Sent     int
	Err      error
}

// Sync exchanges pursuance p's events with its relays (and opts.Relays):
// it reads every topic of every group key generation this member holds
// from where it last stopped, opens, verifies and stores what is new,
// learning newer keys as it goes; then it sends each relay, sealed under
// the current group key, every event it is not known to hold, and the
// group's key-updates under the current topic (so that a newcomer holding
// only the current generation unchains the earlier ones). A relay that
// fails does not stop the others; its error is in the result.
func (n *Node) Sync(ctx context.Context, p event.ID, opts SyncOptions) (SyncResult, error) {
	if n.id == nil {
		return SyncResult{}, errLocked
	}
	if opts.Quick {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithValue(ctx, quickKey{}, true), quickTimeout)
		defer cancel()
	}
	sdb, err := n.syncDB(ctx)
	if err != nil {
		return SyncResult{}, err
	}
	urls, err := n.relayURLs(ctx, p, opts.Relays)
	if err != nil {
		return SyncResult{}, err
	}
	if len(urls) == 0 {
		return SyncResult{}, fmt.Errorf("%w: add one (`pursuance relays add P URL`) or name a peer (`--peer URL`)", ErrNoRelay)
	}
	var res SyncResult
	results := make([]RelayResult, len(urls))
	for i, u := range urls {
		results[i].URL = u
	}
	progress := func(string, ...any) {}
	if opts.Progress != nil {
		// Relays are worked concurrently; the caller's printer need not be
		// safe for that.
		var pmu sync.Mutex
		progress = func(format string, args ...any) {
			pmu.Lock()
			defer pmu.Unlock()
			opts.Progress(format, args...)
		}
	}
	// Pull, as long as reading teaches new keys.
	chains := map[event.ID][]*state.KeyUpdate{}
	pulled := map[string]bool{} // relay ‖ topic read this sync
	var mu sync.Mutex
	for round := 0; round < 8; round++ {
		ks, err := n.groupKeys(ctx, &p, chains)
		if err != nil {
			return res, err
		}
		n.dropRetired(ctx, p, ks)
		var work []pullJob
		for i, u := range urls {
			for t, k := range ks {
				if id := u + "\x00" + string(t[:]); !pulled[id] {
					pulled[id] = true
					work = append(work, pullJob{relay: i, key: k, topic: t})
				}
			}
		}
		if len(work) == 0 {
			break
		}
		var wg sync.WaitGroup
		for i, u := range urls {
			wg.Go(func() {
				c := relay.NewClient(u, nil)
				for _, j := range work {
					if j.relay != i || results[i].Err != nil {
						continue
					}
					got, err := n.pull(ctx, sdb, c, j, chains, &mu, &res, progress)
					mu.Lock()
					results[i].Received += got
					if err != nil {
						results[i].Err = err
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	if err := n.afterPull(ctx, sdb, p, chains, &res); err != nil {
		return res, err
	}
	res.Missing = n.in.Missing()
	if !opts.PullOnly {
		if _, err := n.st.Get(ctx, p); err == nil {
			// What came in may leave keys owed (a newcomer) or stale (a
			// removal): heal before sending, so the others get the keys.
			if s, err := n.State(ctx, p); err == nil {
				if _, ok := s.Member(n.id.ID()); ok {
					if _, _, err := n.healForSync(ctx, s); err != nil {
						return res, err
					}
				}
			}
			if opts.BeforePush != nil {
				opts.BeforePush(ctx)
			}
			if err := n.push(ctx, sdb, p, results, progress); err != nil {
				return res, err
			}
		}
	}
	for _, r := range results {
		res.Sent += r.Sent
	}
	res.Relays = results
	return res, nil
}

// ErrNoRelay is returned by Sync for a pursuance with no relay to sync
// with.
var ErrNoRelay = errors.New("no relay to sync with")

// RelayError says why a relay failed in words for people: "unreachable
// (connection refused)" rather than the whole request that failed.
func RelayError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "dial":
		return "unreachable (" + op.Err.Error() + ")"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	}
	return err.Error()
}

// ProgressFetched is the format of SyncOptions.Progress's reports of
// reading: relay URL (string), cursor reached and last (uint64).
const ProgressFetched = "%s: %d of %d"

type pullJob struct {
	relay int
	key   keys.Key
	topic keys.Topic
}

// pull reads one topic of one relay from its cursor to its end.
func (n *Node) pull(ctx context.Context, sdb *syncDB, c *relay.Client, j pullJob, chains map[event.ID][]*state.KeyUpdate, mu *sync.Mutex, res *SyncResult, progress func(string, ...any)) (int, error) {
	env, err := keys.NewEnvelopes(&j.key)
	if err != nil {
		return 0, err
	}
	cursor, err := sdb.cursor(ctx, c.URL(), j.topic)
	if err != nil {
		return 0, err
	}
	received := 0
	for {
		var page relay.ReadResult
		err := retry(ctx, func() error {
			var err error
			page, err = c.Read(ctx, j.topic, cursor, 1000)
			return err
		})
		if err != nil {
			return received, err
		}
		if len(page.Entries) == 0 {
			break
		}
		var batch [][]byte
		var ids []event.ID
		seen := map[[32]byte]bool{}
		for _, e := range page.Entries {
			b, err := env.Open(e.Envelope)
			if err != nil {
				mu.Lock()
				res.Tampered++
				mu.Unlock()
				n.logf("relay %s: envelope %d of topic %s does not open: %v", c.URL(), e.Cursor, relay.TopicHex(j.topic)[:12], err)
				continue
			}
			mu.Lock()
			noteGroupUpdate(b, chains)
			mu.Unlock()
			if n.refuse(ctx, sdb, c.URL(), j.topic, e.Cursor, b) {
				continue // not an event this member may need, yet (admit.go)
			}
			if h := sha256.Sum256(b); !seen[h] {
				seen[h] = true
				batch = append(batch, b)
			}
			if ev, err := event.Decode(b); err == nil {
				ids = append(ids, ev.ID())
			}
		}
		if len(batch) > 0 {
			out, err := n.in.Ingest(ctx, batch)
			if err != nil {
				return received, err
			}
			mu.Lock()
			res.Received += len(out.Accepted)
			res.Refused += len(out.Rejected)
			mu.Unlock()
			received += len(out.Accepted)
		}
		if err := sdb.markHeld(ctx, c.URL(), j.topic, ids); err != nil {
			return received, err
		}
		cursor = page.Entries[len(page.Entries)-1].Cursor
		// Keep the cursor only while nothing waits for predecessors: what
		// waits in memory is lost when this process ends, and must be
		// read again.
		if n.in.PendingCount() == 0 {
			if err := sdb.setCursor(ctx, c.URL(), j.topic, cursor); err != nil {
				return received, err
			}
		}
		if page.Last > 0 {
			progress(ProgressFetched, c.URL(), cursor, page.Last)
		}
	}
	return received, nil
}

// push sends each relay what it is not known to hold: each event sealed
// under the group generation current before it in log order, on that
// generation's topic, as Export seals it (a member removed along the way
// reads up to its removal, nothing after), and every group key-update
// again under the current generation's topic.
func (n *Node) push(ctx context.Context, sdb *syncDB, p event.ID, results []RelayResult, progress func(string, ...any)) error {
	s, err := n.State(ctx, p)
	if err != nil {
		return err
	}
	gens, err := n.groupEnvelopes(ctx, s)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for i := range results {
		if results[i].Err != nil {
			continue
		}
		wg.Go(func() {
			if err := n.pushTo(ctx, sdb, p, gens, &results[i], progress); err != nil {
				results[i].Err = err
			}
		})
	}
	wg.Wait()
	return nil
}

func (n *Node) pushTo(ctx context.Context, sdb *syncDB, p event.ID, gens groupGens, r *RelayResult, progress func(string, ...any)) error {
	u := r.URL
	lastTopic := gens.last.Topic()
	held, onLast, err := sdb.heldBy(ctx, u, lastTopic)
	if err != nil {
		return err
	}
	c := relay.NewClient(u, nil)
	type batch struct {
		envs [][]byte
		ids  []event.ID
		size int
	}
	batches := map[*genEnv]*batch{}
	flush := func(g *genEnv) error {
		b := batches[g]
		if b == nil || len(b.envs) == 0 {
			return nil
		}
		topic := g.Topic()
		err := retry(ctx, func() error {
			_, err := c.Append(ctx, topic, g.topicKey, b.envs)
			return err
		})
		if err != nil {
			return err
		}
		if err := sdb.markHeld(ctx, u, topic, b.ids); err != nil {
			return err
		}
		r.Sent += len(b.envs)
		progress("%s: sent %d", u, r.Sent)
		b.envs, b.ids, b.size = b.envs[:0], b.ids[:0], 0
		return nil
	}
	add := func(g *genEnv, e *event.Event, buf []byte) error {
		sealed, err := g.Seal(buf, n.rand())
		if err != nil {
			return err
		}
		b := batches[g]
		if b == nil {
			b = &batch{}
			batches[g] = b
		}
		b.envs = append(b.envs, sealed)
		b.ids = append(b.ids, e.ID())
		b.size += len(sealed)
		if len(b.envs) == 256 || b.size >= 4<<20 {
			return flush(g)
		}
		return nil
	}
	cur := gens.first
	var buf []byte
	var updates []*event.Event
	err = n.st.Iterate(ctx, p, func(e *event.Event) error {
		id := e.ID()
		g := envelopeGen(e, cur, gens)
		if next, ok := gens.by[id]; ok {
			cur = next
			updates = append(updates, e)
		}
		if held[id] {
			return nil
		}
		buf = e.AppendEncode(buf[:0])
		return add(g, e, buf)
	})
	if err != nil {
		return err
	}
	for _, e := range updates {
		if !onLast[e.ID()] {
			buf = e.AppendEncode(buf[:0])
			if err := add(gens.last, e, buf); err != nil {
				return err
			}
		}
		if err := n.pushBehind(ctx, sdb, u, gens, e, add); err != nil {
			return err
		}
	}
	for g := range batches {
		if err := flush(g); err != nil {
			return err
		}
	}
	return nil
}

// logf records something a user may want to know about but that does not
// stop the work: a relay's lie, say. Options.Log receives it.
func (n *Node) logf(format string, args ...any) {
	if n.opts.Log != nil {
		n.opts.Log(fmt.Sprintf(format, args...))
	}
}

// retry runs fn until it succeeds, fails for good, or three retries with
// backoff have failed.
func retry(ctx context.Context, fn func() error) error {
	delay := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt == 3 || !relay.IsRetryable(err) || ctx.Err() != nil || ctx.Value(quickKey{}) != nil {
			return err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay *= 2
	}
}

// relayURLs is the pursuance's relay list (as this home's log has it), the
// relays its invite codes named, and extra ones, without repeats.
func (n *Node) relayURLs(ctx context.Context, p event.ID, extra []string) ([]string, error) {
	var out []string
	if _, err := n.st.Get(ctx, p); err == nil {
		s, err := n.State(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, s.Relays()...)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	sec, err := n.readSecrets(p)
	if err != nil {
		return nil, err
	}
	out = append(out, sec.Relays...)
	out = append(out, extra...)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// RelayURLs returns the relays a sync of p talks to: its relay list and
// the relays its invite codes named.
func (n *Node) RelayURLs(ctx context.Context, p event.ID) ([]string, error) {
	return n.relayURLs(ctx, p, nil)
}

// syncDB opens the home's sync.db once.
func (n *Node) syncDB(ctx context.Context) (*syncDB, error) {
	if n.sdb != nil {
		return n.sdb, nil
	}
	sdb, err := openSyncDB(ctx, n.home)
	if err != nil {
		return nil, err
	}
	n.sdb = sdb
	return sdb, nil
}

// SetRelays adds and removes relays of the pursuance's list (a relays
// event; the charter's manage-relays).
func (n *Node) SetRelays(ctx context.Context, p event.ID, add, remove []string, opts DoOptions) (Result, error) {
	for _, u := range append(slices.Clone(add), remove...) {
		if err := state.CheckRelayURL(u); err != nil {
			return Result{}, err
		}
	}
	return n.Act(ctx, p, &state.Relays{Add: add, Remove: remove}, opts)
}
