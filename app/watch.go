package app

import (
	"bytes"
	"context"
	"slices"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
)

// WatchTarget is a relay topic that a node follows live (the relay's
// WebSocket stream), so that it learns at once, without polling, that
// another member wrote.
type WatchTarget struct {
	Relay  string
	Topic  keys.Topic
	Cursor uint64 // how far this home has read the topic
	// Isolation is the isolation string of the pursuance's connections
	// (DialFunc): the stream is one of them.
	Isolation string
}

// WatchTargets returns, for pursuance p, the topic of the newest group key
// generation this member holds on each of p's relays and extra, with this
// home's cursor on it. Events are sealed under the generation current
// before them, and key-updates again under the current one, so that topic
// carries what members write from now on. Beside it, the topic of each
// older generation sealed by an invite a newcomer may still join with
// (JoinTopics): the newcomer holds only that one, so its join comes
// there, and a rotation made since (a revocation of another invite, a
// removal) must not leave it waiting for the next timed round. (An event
// under another older generation, from a member who was cut off, does.)
// It adds the channels of p's open links (linkWatchTargets).
func (n *Node) WatchTargets(ctx context.Context, p event.ID, extra []string) ([]WatchTarget, error) {
	ks, err := n.groupKeys(ctx, &p, nil)
	if err != nil {
		return nil, err
	}
	var newest keys.Topic
	var gen uint64
	for t, k := range ks {
		if k.Gen > gen {
			newest, gen = t, k.Gen
		}
	}
	if gen == 0 {
		return nil, nil // no key: nothing of p can be read yet
	}
	topics := []keys.Topic{newest}
	if _, err := n.st.Get(ctx, p); err == nil { // a newcomer with no log yet has only its code's
		s, err := n.State(ctx, p)
		if err != nil {
			return nil, err
		}
		var joins []keys.Topic
		for t := range JoinTopics(s, n.now()) {
			if _, held := ks[t]; held && t != newest {
				joins = append(joins, t)
			}
		}
		slices.SortFunc(joins, func(a, b keys.Topic) int { return bytes.Compare(a[:], b[:]) })
		topics = append(topics, joins...)
	}
	urls, err := n.relayURLs(ctx, p, extra)
	if err != nil {
		return nil, err
	}
	sdb, err := n.syncDB(ctx)
	if err != nil {
		return nil, err
	}
	var out []WatchTarget
	for _, u := range urls {
		for _, t := range topics {
			c, err := sdb.cursor(ctx, u, t)
			if err != nil {
				return nil, err
			}
			out = append(out, WatchTarget{Relay: u, Topic: t, Cursor: c, Isolation: n.isolation(p)})
		}
	}
	links, err := n.linkWatchTargets(ctx, p, extra, sdb)
	return append(out, links...), err
}

// linkWatchTargets returns the channel topic of every open link of p whose
// secret this member holds, on the relays the channel is on (linkRelays),
// so that a hand-off, a receive or a report the other side writes starts
// a round at once (docs/links.md §4).
func (n *Node) linkWatchTargets(ctx context.Context, p event.ID, extra []string, sdb *syncDB) ([]WatchTarget, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return nil, err
	}
	var out []WatchTarget
	for _, l := range s.Links() {
		if !l.HasSecret || l.Ended {
			continue
		}
		secret, _ := s.LinkSecret(l.ID)
		ch := secret.Channel()
		topic, _, err := ch.Topic()
		if err != nil {
			return nil, err
		}
		urls, err := n.linkRelays(ctx, s, l, extra)
		if err != nil {
			return nil, err
		}
		for _, u := range urls {
			c, err := sdb.cursor(ctx, u, topic)
			if err != nil {
				return nil, err
			}
			out = append(out, WatchTarget{Relay: u, Topic: topic, Cursor: c, Isolation: n.linkIsolation(p, l.ID)})
		}
	}
	return out, nil
}
