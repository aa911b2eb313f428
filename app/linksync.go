package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/ingest"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
	"github.com/pursuance/pursuance/store"
)

// The link channel (docs/links.md §4): one more relay topic per link,
// derived from the link's secret, on the relays of both sides. Every
// member of either side who holds the secret publishes there its own
// pursuance's events — headers of all, bodies of authority and link events
// only — and reads the other side's, which it keeps in linked.db (an event
// store of its own, encrypted at rest like events.db) and folds with the
// same rules. A member of the receiving side receives there the hand-offs
// sent over the link (a link-receive).

// LinkedFile is the name of the store, in a home, of what it holds of the
// pursuances at the other end of its links.
const LinkedFile = "linked.db"

// Bounds of one link's sync with one relay.
const (
	linkPages = 1024 // pages read of a link's channel per relay per sync
)

// linkedStore is the store of the other sides of links, with its own
// ingester.
type linkedStore struct {
	st store.Store
	in *ingest.Ingester
}

// linked opens linked.db once.
func (n *Node) linked() (*linkedStore, error) {
	if n.lnk != nil {
		return n.lnk, nil
	}
	st, err := store.OpenSQLite(filepath.Join(n.home, LinkedFile), n.keys.linked)
	if err != nil {
		return nil, fmt.Errorf("app: open %s: %w", LinkedFile, err)
	}
	n.lnk = &linkedStore{st: st, in: ingest.New(st, ingest.Options{})}
	return n.lnk, nil
}

// LinkedState folds what this home holds, through its links, of pursuance
// p: the other side of a link. It is nil when nothing of p has come yet.
func (n *Node) LinkedState(ctx context.Context, p event.ID) (*state.State, error) {
	lk, err := n.linked()
	if err != nil {
		return nil, err
	}
	if _, err := lk.st.Get(ctx, p); errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	ev, err := lk.st.Evidence(ctx, p)
	if err != nil {
		return nil, err
	}
	b := state.NewBuilder(p, ev)
	if err := lk.st.Iterate(ctx, p, b.Add); err != nil {
		return nil, err
	}
	return b.Finish()
}

// LinkSyncResult says what syncing a pursuance's links did.
type LinkSyncResult struct {
	Received int // events of the other sides new to this home
	Sent     int // envelopes sent
	Receives int // hand-offs received as tasks
	Errors   []error
}

// linkHeld is what sync.db records, on the link's topic, for an event a
// relay holds there: a name of its own, so that no sync of the pursuance
// takes the event for held on one of its own topics.
func linkHeld(t keys.Topic, id event.ID) event.ID {
	h := sha256.New()
	h.Write([]byte("pursuance/v1/link-held\x00"))
	h.Write(t[:])
	h.Write(id[:])
	var out event.ID
	h.Sum(out[:0])
	return out
}

// syncLinks syncs every link of p this member holds the secret of with the
// relays of both sides: reads the other side's events into linked.db,
// receives hand-offs (on the receiving side), and publishes p's. It takes
// the home only around storing and signing (home.with).
func (n *Node) syncLinks(ctx context.Context, p event.ID, opts SyncOptions, home *homeTurns) (LinkSyncResult, error) {
	var res LinkSyncResult
	if _, err := n.st.Get(ctx, p); err != nil {
		return res, nil // nothing of p here yet
	}
	s, err := n.State(ctx, p)
	if err != nil {
		return res, err
	}
	if _, ok := s.Member(n.me()); !ok {
		return res, nil
	}
	for _, l := range s.Links() {
		if !l.HasSecret {
			continue
		}
		if err := n.syncLink(ctx, s, l, opts, home, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// linkRelays are the relays a link's channel is on: this pursuance's, the
// other side's (as its history names them), the relays the link's code
// named, and extra ones (a peer, the node's relay).
func (n *Node) linkRelays(ctx context.Context, s *state.State, l state.LinkInfo, extra []string) ([]string, error) {
	out, err := n.RelayURLs(ctx, s.Pursuance())
	if err != nil {
		return nil, err
	}
	if o, err := n.LinkedState(ctx, l.Peer); err != nil {
		return nil, err
	} else if o != nil {
		out = append(out, o.Relays()...)
	}
	sec, err := n.readSecrets(l.ID)
	if err != nil {
		return nil, err
	}
	out = append(append(out, sec.Relays...), extra...)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// syncLink syncs one link.
func (n *Node) syncLink(ctx context.Context, s *state.State, l state.LinkInfo, opts SyncOptions, home *homeTurns, res *LinkSyncResult) error {
	p := s.Pursuance()
	secret, _ := s.LinkSecret(l.ID)
	ch := secret.Channel()
	env, err := keys.NewEnvelopes(&ch)
	if err != nil {
		return err
	}
	topic, topicKey, err := ch.Topic()
	if err != nil {
		return err
	}
	urls, err := n.linkRelays(ctx, s, l, opts.Relays)
	if err != nil {
		return err
	}
	sdb, err := n.syncDB(ctx)
	if err != nil {
		return err
	}
	lk, err := n.linked()
	if err != nil {
		return err
	}
	var handoffs []*event.Event // hand-offs over this link read now
	for _, u := range urls {
		c := n.linkClient(p, l.ID, u)
		hs, err := n.pullLink(ctx, c, s, l, env, topic, sdb, lk, home, res)
		handoffs = append(handoffs, hs...)
		if err != nil {
			res.Errors = append(res.Errors, fmt.Errorf("%s: %s", u, RelayError(err)))
		}
	}
	if !l.Offer && !l.Ended {
		if err := home.with(ctx, func() error { return n.receiveHandoffs(ctx, p, l, handoffs, lk, res) }); err != nil {
			return err
		}
	}
	if opts.PullOnly {
		return nil
	}
	for _, u := range urls {
		c := n.linkClient(p, l.ID, u)
		if err := n.pushLink(ctx, c, p, l, env, topic, topicKey, sdb, lk, res); err != nil {
			res.Errors = append(res.Errors, fmt.Errorf("%s: %s", u, RelayError(err)))
		}
	}
	return nil
}

// pullLink reads a link's channel at one relay from where this home last
// stopped: the other side's events go to linked.db; this pursuance's own
// authority and link events, which some member may have published there
// only, go to the home's store when their predecessors are there. It
// returns the hand-offs over the link it read (with their bodies), stored
// or waiting for their predecessors.
func (n *Node) pullLink(ctx context.Context, c *relay.Client, s *state.State, l state.LinkInfo, env *keys.Envelopes, topic keys.Topic, sdb *syncDB, lk *linkedStore, home *homeTurns, res *LinkSyncResult) ([]*event.Event, error) {
	p, url := s.Pursuance(), c.URL()
	pos, err := sdb.readPos(ctx, url, topic)
	if err != nil {
		return nil, err
	}
	cursor := pos.cursor
	var handoffs []*event.Event
	for range linkPages {
		var page relay.ReadResult
		err := retry(ctx, func() error {
			var err error
			page, err = c.Read(ctx, topic, cursor, readPageLimit)
			return err
		})
		if err != nil {
			return handoffs, err
		}
		if len(page.Entries) == 0 {
			return handoffs, nil
		}
		var own, other [][]byte
		var held []event.ID
		for _, en := range page.Entries {
			cursor = max(cursor, en.Cursor)
			b, err := env.Open(en.Envelope)
			if err != nil {
				n.warn("a link channel's envelope does not open: altered or forged", "relay", url, "cursor", en.Cursor)
				continue
			}
			e, err := event.Decode(b)
			if err != nil {
				continue
			}
			body := e.HasBody()
			if body || !state.CarriedOverLinks(e.Kind) {
				held = append(held, linkHeld(topic, e.ID()))
			}
			switch e.PursuanceID() {
			case p:
				if body && state.CarriedOverLinks(e.Kind) {
					own = append(own, b)
				}
			case l.Peer:
				other = append(other, b)
				if e.Kind == event.KindHandoff && body {
					handoffs = append(handoffs, e)
				}
			}
		}
		err = home.with(ctx, func() error {
			lk.in.Reload()
			if len(other) > 0 {
				out, err := lk.in.Ingest(ctx, other)
				if err != nil {
					return err
				}
				res.Received += len(out.Accepted)
			}
			return n.ingestOwn(ctx, p, own)
		})
		if err != nil {
			return handoffs, err
		}
		if err := sdb.markHeld(ctx, url, topic, held); err != nil {
			return handoffs, err
		}
		if lk.in.PendingCount() == 0 {
			if err := sdb.setReadPos(ctx, url, topic, readPos{cursor: cursor}); err != nil {
				return handoffs, err
			}
		}
		if cursor >= page.Last {
			return handoffs, nil
		}
	}
	return handoffs, nil
}

// ingestOwn stores this pursuance's own events read on a link's channel
// (an event some member published on the channel only) whose
// predecessors this home holds, or are among them: a member's, or a
// removed member's that did not see its removal (every replica must hold
// it, to mark it invalidated) — not what a removed member signs after it.
// The others come by the pursuance's own topics.
func (n *Node) ingestOwn(ctx context.Context, p event.ID, raw [][]byte) error {
	if len(raw) == 0 {
		return nil
	}
	s, err := n.State(ctx, p)
	if err != nil {
		return err
	}
	var evs []*event.Event
	// For each event taken, the events of the log its causal past ends on.
	taking := map[event.ID][]event.ID{}
	for _, b := range raw {
		e, err := event.Decode(b)
		if err != nil {
			continue
		}
		links := slices.Clone(e.Parents)
		if !e.Backlink.IsZero() {
			links = append(links, e.Backlink)
		}
		have, err := n.st.Refs(ctx, append(slices.Clone(links), e.ID()))
		if err != nil {
			return err
		}
		if _, dup := have[e.ID()]; dup {
			continue
		}
		var frontier []event.ID
		ok := true
		for _, l := range links {
			if _, stored := have[l]; stored {
				frontier = append(frontier, l)
			} else if f, taken := taking[l]; taken {
				frontier = append(frontier, f...)
			} else {
				ok = false
			}
		}
		if _, member := s.Member(e.Author); !ok || !member && !s.RemovedUnseen(e.Author, frontier) {
			continue
		}
		evs = append(evs, e)
		taking[e.ID()] = slices.Compact(slices.SortedFunc(slices.Values(frontier), event.ID.Compare))
	}
	if len(evs) == 0 {
		return nil
	}
	_, err = n.in.IngestEvents(ctx, evs)
	return err
}

// receiveHandoffs receives, as tasks of p, the hand-offs over the accepted
// link l that p has not received yet: those read now (stored in linked.db
// or waiting there for their predecessors) and those linked.db holds. Each
// is received whatever the verdict on its origin, which is shown with it
// and may change as the sending pursuance's history arrives.
func (n *Node) receiveHandoffs(ctx context.Context, p event.ID, l state.LinkInfo, read []*event.Event, lk *linkedStore, res *LinkSyncResult) error {
	hs := slices.Clone(read)
	if a, err := n.LinkedState(ctx, l.Peer); err != nil {
		return err
	} else if a != nil {
		for _, h := range a.Handoffs() {
			if h.Link != l.ID {
				continue
			}
			e, err := lk.st.Get(ctx, h.ID)
			if err != nil {
				return err
			}
			hs = append(hs, e)
		}
	}
	done := map[event.ID]bool{}
	for _, h := range hs {
		if done[h.ID()] || h.PursuanceID() != l.Peer || !h.HasBody() {
			continue
		}
		done[h.ID()] = true
		s, err := n.State(ctx, p)
		if err != nil {
			return err
		}
		if _, ok := s.Task(h.ID()); ok {
			continue
		}
		if cur, ok := s.Link(l.ID); !ok || cur.Ended {
			return nil
		}
		_, err = n.do(ctx, s, &state.LinkReceive{Link: l.ID, Handoff: h.Encode()}, DoOptions{})
		var ref *refused
		switch {
		case errors.As(err, &ref):
			n.warn("a hand-off on a link's channel was not received", "link", l.ID.Short(), "handoff", h.ID().Short(), "why", err)
		case err != nil:
			return err
		default:
			res.Receives++
		}
	}
	return nil
}

// pushLink sends a relay, on the link's channel, what it is not known to
// hold there: this pursuance's events (task events without their bodies)
// and what this home holds of the other side.
func (n *Node) pushLink(ctx context.Context, c *relay.Client, p event.ID, l state.LinkInfo, env *keys.Envelopes, topic keys.Topic, topicKey *identity.SigningKey, sdb *syncDB, lk *linkedStore, res *LinkSyncResult) error {
	url := c.URL()
	_, held, err := sdb.heldBy(ctx, url, topic)
	if err != nil {
		return err
	}
	var envs [][]byte
	var ids []event.ID
	size := 0
	flush := func() error {
		if len(envs) == 0 {
			return nil
		}
		err := retry(ctx, func() error {
			_, err := c.Append(ctx, topic, topicKey, envs)
			return err
		})
		if err != nil {
			return err
		}
		if err := sdb.markHeld(ctx, url, topic, ids); err != nil {
			return err
		}
		res.Sent += len(envs)
		envs, ids, size = envs[:0], ids[:0], 0
		return nil
	}
	var buf []byte
	send := func(e *event.Event) error {
		k := linkHeld(topic, e.ID())
		if held.has(k) {
			return nil
		}
		if !state.CarriedOverLinks(e.Kind) {
			e = e.WithoutBody()
		}
		buf = e.AppendEncode(buf[:0])
		sealed, err := env.Seal(buf, n.rand())
		if err != nil {
			return err
		}
		envs, ids, size = append(envs, sealed), append(ids, k), size+len(sealed)
		if len(envs) == pushBatch || size >= pushBatchSize {
			return flush()
		}
		return nil
	}
	if err := n.st.Iterate(ctx, p, send); err != nil {
		return err
	}
	if _, err := lk.st.Get(ctx, l.Peer); err == nil {
		if err := lk.st.Iterate(ctx, l.Peer, send); err != nil {
			return err
		}
	}
	return flush()
}
