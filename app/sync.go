package app

import (
	"cmp"
	"context"
	"crypto/tls"
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
	// Peers are other members' nodes to sync with, as relays, but each
	// given up on after PeerStall without progress (a node is often
	// off). One that is also on the relay list is a relay.
	Peers []string
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

// quickTimeout bounds a quick sync; quickGrace is how long, in one, a
// relay done reading waits for the others before it sends.
const (
	quickTimeout = 5 * time.Second
	quickGrace   = time.Second
)

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
	// Links is what syncing the pursuance's links did (linksync.go).
	Links LinkSyncResult
}

// RelayResult is one relay's part of a sync.
type RelayResult struct {
	URL      string
	Received int
	Sent     int
	Err      error
	// Behind counts the events this relay lacked that another relay or
	// peer of this sync is known to hold (they were sent to it). A relay
	// behind at every sync withholds, or drops what it is sent.
	Behind int
	// Lost counts envelopes the relay acknowledged that a read then did
	// not show where it said (their events were sent again).
	Lost int
	// Reset says why the relay was found to have lost what it held (its
	// data wiped, or its history rewound, as by a restore from a backup):
	// it was read again from the start and sent what it lacks.
	Reset string
	// Tampered counts this relay's envelopes that did not open.
	Tampered int
	// Partial is set when a bound on reading (pages, bytes, time) stopped
	// before the relay's end: the rest comes at the next sync.
	Partial bool
}

// Sync exchanges pursuance p's events with its relays (and opts.Relays):
// it reads every topic of every group key generation this member holds
// from where it last stopped, opens, verifies and stores what is new,
// learning newer keys as it goes; then it sends each relay, sealed under
// the current group key, every event it is not known to hold, and the
// group's key-updates under the current topic (so that a newcomer holding
// only the current generation unchains the earlier ones).
//
// Relays are worked concurrently and independently: one that fails,
// hangs (each call gives up after Options.RelayTimeout without progress)
// or never stops answering "more" (reads are bounded in pages, bytes and
// time) does not stop the others; its error is in the result. What a
// relay says is checked against what it said before (docs/sync.md): a
// relay that lost its data, rewound its history or did not keep what it
// acknowledged is found out, read again and refilled.
//
// Sync holds the home's lock only while it stores what came in and while
// it re-keys, never while it waits for a relay; it takes the lock back
// before it returns (errHomeLost if another process kept it).
func (n *Node) Sync(ctx context.Context, p event.ID, opts SyncOptions) (res SyncResult, err error) {
	if err := n.holdsHome(); err != nil {
		return SyncResult{}, err
	}
	limits := n.opts.limits.withDefaults()
	if opts.Quick {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithValue(ctx, quickKey{}, true), quickTimeout)
		defer cancel()
		limits.grace = min(limits.grace, quickGrace)
	}
	sdb, err := n.syncDB(ctx)
	if err != nil {
		return SyncResult{}, err
	}
	// The home is left to others from here on (the web UI's requests,
	// commands) but for the turns that store and re-key: even the folds of
	// the log (the relay list, the keys) are done without it (issue 15).
	home := n.releaseHome()
	defer func() {
		// The state after the round, folded before the home is taken
		// back: what the caller reads next (a node's round: its peers, the
		// topics to follow) finds it folded.
		if _, e := n.st.Get(ctx, p); e == nil {
			n.syncState(ctx, p)
		}
		if e := home.reclaim(ctx); e != nil && err == nil {
			err = e
		}
	}()
	urls, err := n.relayURLs(ctx, p, opts.Relays)
	if err != nil {
		return SyncResult{}, err
	}
	var peers map[string]bool
	for _, u := range opts.Peers {
		if !slices.Contains(urls, u) {
			if peers == nil {
				peers = map[string]bool{}
			}
			peers[u] = true
		}
	}
	for u := range peers {
		urls = append(urls, u)
	}
	slices.Sort(urls)
	if len(urls) == 0 {
		return SyncResult{}, fmt.Errorf("%w: add one (`pursuance relays add P URL`) or name a peer (`--peer URL`)", ErrNoRelay)
	}
	run := &syncRun{n: n, p: p, sdb: sdb, opts: opts, urls: urls, peers: peers, limits: limits, total: &res,
		chains: map[event.ID][]*state.KeyUpdate{}, ksVersion: -1, left: len(urls), pulled: make(chan struct{})}
	run.results = make([]RelayResult, len(urls))
	run.runs = make([]*relayRun, len(urls))
	for i, u := range urls {
		run.results[i].URL = u
	}
	run.progress = func(string, ...any) {}
	if opts.Progress != nil {
		// Relays are worked concurrently; the caller's printer need not be
		// safe for that.
		var pmu sync.Mutex
		run.progress = func(format string, args ...any) {
			pmu.Lock()
			defer pmu.Unlock()
			opts.Progress(format, args...)
		}
	}
	run.home = home
	var wg sync.WaitGroup
	for i := range urls {
		wg.Go(func() { run.relay(ctx, i) })
	}
	wg.Wait()
	taken, err := n.afterPull(ctx, sdb, p, run.chains, &res, run.home.with)
	if err != nil {
		return res, err
	}
	if taken > 0 {
		run.healAgain(ctx)
	}
	if res.Links, err = n.syncLinks(ctx, p, opts, run.home); err != nil {
		return res, err
	}
	res.Missing, err = n.missing(ctx, p)
	if err != nil {
		return res, err
	}
	for _, r := range run.results {
		res.Sent += r.Sent
	}
	res.Relays = run.results
	return res, run.healErr
}

// syncLimits bound what one sync reads from one relay.
type syncLimits struct {
	pages  int           // pages of one topic
	page   int           // entries asked for in one read
	bytes  int64         // envelope bytes, all topics
	barren int           // pages in a row of which nothing opens
	budget time.Duration // time reading (quick syncs: their own deadline)
	grace  time.Duration // a relay done reading waits this long for the others before it sends
	// peerStall is how long a member's node may send nothing
	// (SyncOptions.Peers; PeerStall, or the relays' stall if shorter).
	peerStall time.Duration
}

// The default syncLimits. A newcomer's first sync of a big log reads a
// few GB; a relay that always answers "more" is cut off by these.
const (
	maxPullPages  = 4096
	maxPullBytes  = 4 << 30
	maxBarren     = 16
	pullBudget    = 10 * time.Minute
	pushGrace     = 5 * time.Second
	readPageLimit = relay.DefaultLimit
	maxKeyRounds  = 8
	pushBatch     = 256
	pushBatchSize = 4 << 20
)

func (l syncLimits) withDefaults() syncLimits {
	if l.pages == 0 {
		l.pages = maxPullPages
	}
	if l.page == 0 {
		l.page = readPageLimit
	}
	if l.bytes == 0 {
		l.bytes = maxPullBytes
	}
	if l.barren == 0 {
		l.barren = maxBarren
	}
	if l.budget == 0 {
		l.budget = pullBudget
	}
	if l.grace == 0 {
		l.grace = pushGrace
	}
	if l.peerStall == 0 {
		l.peerStall = PeerStall
	}
	return l
}

// syncRun is one Sync: what its relays' goroutines share.
type syncRun struct {
	n        *Node
	p        event.ID
	sdb      *syncDB
	opts     SyncOptions
	urls     []string
	peers    map[string]bool // which of urls are members' nodes (SyncOptions.Peers)
	limits   syncLimits
	results  []RelayResult // one goroutine each
	runs     []*relayRun   // each relay's, once it was sent to (healAgain)
	progress func(string, ...any)
	home     *homeTurns

	mu        sync.Mutex // guards what follows
	total     *SyncResult
	chains    map[event.ID][]*state.KeyUpdate
	version   int // rises when ingest stores events or chains grow
	ks        map[keys.Topic]keys.Key
	ksVersion int
	left      int           // relays still reading
	pulled    chan struct{} // closed when none is

	healMu  sync.Mutex // guards healed, healErr; taken before the home
	healed  bool
	healErr error

	keysMu sync.Mutex // one goroutine computes the keys at a time
}

// relay works one relay: reads it, waits (a little) for the others to
// be read, then sends it what it lacks.
func (r *syncRun) relay(ctx context.Context, i int) {
	res := &r.results[i]
	c, readers := r.n.relayClient(r.p, res.URL), r.n.readClients(r.p, res.URL)
	if r.peers[res.URL] {
		stall := min(r.limits.peerStall, cmp.Or(r.n.opts.RelayTimeout, r.limits.peerStall))
		for _, rc := range append(readers, c) {
			rc.Stall(stall).OnionStall(stall) // a node is often off: no longer wait for its onion
		}
	}
	rr := &relayRun{syncRun: r, res: res, c: c, readers: readers, pulled: map[keys.Topic]bool{}}
	pctx, cancel := context.WithTimeout(ctx, r.limits.budget)
	err := rr.pullAll(pctx)
	if err != nil && pctx.Err() != nil && ctx.Err() == nil {
		res.Partial, err = true, nil // out of time: the rest next sync
	}
	cancel()
	res.Err = err
	r.donePulling()
	if r.opts.PullOnly || res.Err != nil {
		return
	}
	select {
	case <-r.pulled:
	case <-time.After(r.limits.grace):
	case <-ctx.Done():
		res.Err = ctx.Err()
		return
	}
	if !r.heal(ctx) {
		return
	}
	r.runs[i] = rr
	if err := rr.push(ctx); err != nil {
		res.Err = err
	}
}

// healAgain heals once more and sends what that wrote, once the relays'
// goroutines are done, when the end of the sync (afterPull) took in events
// after the keys were healed: a newcomer's join that named an event this
// node had refused (the join of a revoked code's holder, signed before it
// could see the revocation) is stored only once that parent is judged
// again or fetched again, and the re-key to the newcomer then goes out in
// this sync, not the next. Once only: what the second heal writes is this
// member's own and takes nothing more in. It sends to the relays that were
// sent to before without an error, each in its own goroutine as before;
// like heal and push, it holds the home only while it re-keys.
func (r *syncRun) healAgain(ctx context.Context) {
	r.healMu.Lock()
	ok := r.healed && r.healErr == nil // else nothing was sent: nothing to send again
	if ok {
		r.healed = false
	}
	r.healMu.Unlock()
	if !ok || !r.heal(ctx) {
		return
	}
	var wg sync.WaitGroup
	for i, rr := range r.runs {
		if rr == nil || r.results[i].Err != nil {
			continue
		}
		wg.Go(func() {
			if err := rr.push(ctx); err != nil {
				r.results[i].Err = err
			}
		})
	}
	wg.Wait()
}

func (r *syncRun) donePulling() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.left--
	if r.left == 0 {
		close(r.pulled)
	}
}

// heal rotates, once a sync (and once more in healAgain), the keys that
// what came in left owed (a newcomer) or stale (a removal), before
// anything is sent, so that the others get the keys. It reports whether
// sending may go on.
func (r *syncRun) heal(ctx context.Context) bool {
	r.healMu.Lock()
	defer r.healMu.Unlock()
	if r.healed {
		return r.healErr == nil
	}
	r.healed = true
	n := r.n
	if _, err := n.st.Get(ctx, r.p); err != nil {
		return true // nothing of p here yet: nothing to heal or send
	}
	// Folded without the home; under it, taken from the node again (a
	// fold only if another process wrote meanwhile).
	n.syncState(ctx, r.p)
	r.healErr = r.home.with(ctx, func() error {
		s, err := n.syncState(ctx, r.p)
		if err != nil {
			return nil // as before: a state that does not build heals nothing
		}
		if _, ok := s.Member(n.me()); ok {
			_, _, err = n.healForSync(ctx, s)
		}
		return err
	})
	if r.healErr == nil && r.opts.BeforePush != nil {
		r.opts.BeforePush(ctx)
	}
	return r.healErr == nil
}

// keys returns the group keys this member holds in p, by topic, and those
// chained under them in what was read so far; computed again only when
// something new came in.
func (r *syncRun) keys(ctx context.Context) (map[keys.Topic]keys.Key, error) {
	r.keysMu.Lock()
	defer r.keysMu.Unlock()
	r.mu.Lock()
	v, ks := r.version, r.ks
	chains := make(map[event.ID][]*state.KeyUpdate, len(r.chains))
	for p, c := range r.chains {
		chains[p] = slices.Clone(c)
	}
	r.mu.Unlock()
	if r.ksVersion == v {
		return ks, nil
	}
	ks, err := r.n.groupKeys(ctx, &r.p, chains)
	if err != nil {
		return nil, err
	}
	r.n.dropRetired(ctx, r.p, ks)
	r.mu.Lock()
	r.ks, r.ksVersion = ks, v
	r.mu.Unlock()
	return ks, nil
}

// missing returns the events that pending events name and that are on
// no relay asked; an event another process stored meanwhile is not
// missing.
func (n *Node) missing(ctx context.Context, p event.ID) ([]event.ID, error) {
	ids := n.in.Missing()
	if len(ids) == 0 {
		return nil, nil
	}
	have, err := n.st.Refs(ctx, ids)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ids, func(id event.ID) bool {
		_, ok := have[id]
		return ok
	}), nil
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
	var cert *tls.CertificateVerificationError
	switch {
	case errors.Is(err, ErrNeedsTor):
		return ErrNeedsTor.Error()
	case errors.As(err, &cert):
		// Nothing was sent. A relay with a certificate of its operator's
		// own authority is trusted through SSL_CERT_FILE.
		return "its TLS certificate is not trusted on this machine (" + cert.Err.Error() + "); if the relay's operator uses a certificate authority of their own, set SSL_CERT_FILE to that authority's certificate (docs/operating.md, \"TLS\")"
	case errors.As(err, &op) && op.Op == "dial":
		return "unreachable (" + op.Err.Error() + ")"
	case errors.Is(err, relay.ErrConnectStalled):
		// Nothing answered the dial: through Tor, an onion service that
		// is down (tor keeps trying its introduction points).
		return "unreachable: no connection in time (" + err.Error() + ")"
	case errors.Is(err, relay.ErrStalled):
		return "no answer in time: it accepts connections but sends nothing (" + err.Error() + ")"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	}
	return err.Error()
}

// ProgressFetched is the format of SyncOptions.Progress's reports of
// reading: relay URL (string), cursor reached and last (uint64).
const ProgressFetched = "%s: %d of %d"

// warn records something a user may want to know about but that does not
// stop the work: a relay's lie, say (Options.Logger).
func (n *Node) warn(msg string, args ...any) {
	if n.opts.Logger != nil {
		n.opts.Logger.Warn(msg, args...)
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
		wait, ok := retryWait(err, delay)
		if !ok {
			return err // the relay asked for longer than a sync waits
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay *= 2
	}
}

// maxRetryWait is the longest a sync waits for one relay to be ready
// again; a relay asking for longer (Retry-After) is left for the next
// sync.
const maxRetryWait = 5 * time.Second

// retryWait returns how long to wait before trying a relay again after
// err: the backoff delay, or the relay's Retry-After when it asked for
// longer; false when that is more than a sync waits.
func retryWait(err error, delay time.Duration) (time.Duration, bool) {
	var se *relay.StatusError
	if errors.As(err, &se) && se.RetryAfter > delay {
		return se.RetryAfter, se.RetryAfter <= maxRetryWait
	}
	return delay, true
}

// relayURLs is the pursuance's relay list (as this home's log has it),
// the relays its invite codes named, and extra ones, without repeats.
// The codes' relays count only until the log has a relay list of its own
// (the pursuance chose its relays; a code's relay may have been dropped
// since), and never when a relays event of the log removed them.
func (n *Node) relayURLs(ctx context.Context, p event.ID, extra []string) ([]string, error) {
	var out []string
	var removed map[string]bool
	if _, err := n.st.Get(ctx, p); err == nil {
		s, err := n.syncState(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, s.Relays()...)
		if len(out) == 0 {
			removed = map[string]bool{}
			for _, u := range s.RemovedRelays() {
				removed[u] = true
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if len(out) == 0 {
		sec, err := n.readSecrets(p)
		if err != nil {
			return nil, err
		}
		for _, u := range sec.Relays {
			if !removed[u] {
				out = append(out, u)
			}
		}
	}
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
	sdb, err := openSyncDB(ctx, n.home, n.keys.sync)
	if err != nil {
		return nil, err
	}
	if n.folds != nil {
		sdb.shrunk = n.folds.dropPushMarks
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
