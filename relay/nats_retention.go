package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pursuance/pursuance/keys"
)

// Usage and retention of a NATS store: quotas counted, old entries purged.

// Usage implements Store: a topic's bytes are its entries' sizes, which
// its subjects name, counted by the stream's leader at most every
// natsUsageTTL (this front's appends added in between); all topics' bytes
// are the stream's, as JetStream counts them less what it adds to
// each message (subject and header: each message's is the same, msgOverhead).
func (n *NATS) Usage(ctx context.Context, t keys.Topic) (Usage, error) {
	var u Usage
	if n.isClosed() {
		return u, ErrClosed
	}
	now := time.Now()
	n.umu.Lock()
	c, ok := n.usage[t]
	n.umu.Unlock()
	fresh := time.Duration(now.UnixNano()-n.totAt.Load()) < natsUsageTTL
	if ok && now.Sub(c.at) < natsUsageTTL && fresh {
		return Usage{TopicBytes: c.bytes, TopicExists: true, TotalBytes: n.total.Load()}, nil
	}
	info, err := n.streamInfo(ctx, n.topicFilter(t))
	if err != nil {
		return u, fmt.Errorf("relay store: usage: %w", err)
	}
	for subj, count := range info.State.Subjects {
		if _, size, ok := n.parseSubject(subj); ok {
			u.TopicBytes += int64(size) * int64(count)
			u.TopicExists = true
		}
	}
	u.TotalBytes = max(0, int64(info.State.Bytes)-int64(info.State.Msgs)*n.msgOverhead())
	n.total.Store(u.TotalBytes)
	n.totAt.Store(now.UnixNano())
	n.umu.Lock()
	if u.TopicExists {
		if len(n.usage) >= maxCachedTopics {
			clear(n.usage)
		}
		n.usage[t] = cachedUsage{bytes: u.TopicBytes, at: now}
	} else {
		delete(n.usage, t)
	}
	n.umu.Unlock()
	return u, nil
}

// natsPurgeRequest and natsPurgeResponse are JetStream's purge.
type natsPurgeRequest struct {
	Filter string `json:"filter,omitempty"`
	Seq    uint64 `json:"seq,omitempty"` // purge below this sequence
}

type natsPurgeResponse struct {
	Success bool   `json:"success"`
	Purged  uint64 `json:"purged"`
	Error   *struct {
		Description string `json:"description"`
	} `json:"error,omitempty"`
}

func (n *NATS) purge(ctx context.Context, req natsPurgeRequest) (int, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, natsRequestTimeout)
	defer cancel()
	m, err := n.nc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+n.stream, body)
	if err != nil {
		return 0, err
	}
	var res natsPurgeResponse
	if err := json.Unmarshal(m.Data, &res); err != nil {
		return 0, err
	}
	if !res.Success {
		desc := "failed"
		if res.Error != nil {
			desc = res.Error.Description
		}
		return 0, fmt.Errorf("purge: %s", desc)
	}
	return int(res.Purged), nil
}

// Prune implements Store: entries older than MaxAge go in one purge of
// the stream below the first younger one; a topic beyond MaxBytes loses
// its oldest entries in a purge of its subjects.
func (n *NATS) Prune(ctx context.Context, now time.Time, r Retention) (int, error) {
	if n.isClosed() {
		return 0, ErrClosed
	}
	dropped := 0
	if r.MaxAge > 0 {
		cut := now.Add(-r.MaxAge).UTC()
		msgs, _, err := n.directGet(ctx, natsGetRequest{StartTime: &cut})
		if err != nil {
			return 0, fmt.Errorf("relay store: prune: %w", err)
		}
		req := natsPurgeRequest{} // all: nothing is younger
		if len(msgs) > 0 {
			req.Seq = msgSeq(msgs[0])
		}
		k, err := n.purge(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("relay store: prune: %w", err)
		}
		dropped += k
	}
	if r.MaxBytes > 0 {
		k, err := n.pruneBytes(ctx, r.MaxBytes)
		dropped += k
		if err != nil {
			return dropped, fmt.Errorf("relay store: prune: %w", err)
		}
	}
	if dropped > 0 {
		n.umu.Lock()
		clear(n.usage)
		n.umu.Unlock()
		n.totAt.Store(0)
		n.kmu.Lock()
		clear(n.known) // a topic may hold nothing now
		n.kmu.Unlock()
	}
	return dropped, nil
}

// pruneBytes drops each topic's oldest entries beyond max bytes. The
// leader lists every topic's subjects (one per envelope size) with their
// counts, which give its bytes; a topic over the bound is read from its
// oldest entry until enough is found, then purged below the next.
func (n *NATS) pruneBytes(ctx context.Context, max int64) (int, error) {
	if !n.prune.CompareAndSwap(false, true) {
		return 0, nil // another prune is at it
	}
	defer n.prune.Store(false)
	info, err := n.streamInfo(ctx, n.prefix+".*.*")
	if err != nil {
		return 0, err
	}
	bytes := map[keys.Topic]int64{}
	for subj, count := range info.State.Subjects {
		if t, size, ok := n.parseSubject(subj); ok {
			bytes[t] += int64(size) * int64(count)
		}
	}
	dropped := 0
	for t, b := range bytes {
		if b <= max {
			continue
		}
		excess := b - max
		var cut uint64
		for after := uint64(0); excess > 0; {
			msgs, _, err := n.directGet(ctx, natsGetRequest{Seq: after + 1, NextFor: n.topicFilter(t), Batch: natsScanBatch})
			if err != nil {
				return dropped, err
			}
			if len(msgs) == 0 {
				break
			}
			for _, m := range msgs {
				if excess <= 0 {
					break
				}
				cut = msgSeq(m)
				excess -= int64(len(m.Data))
			}
			after = msgSeq(msgs[len(msgs)-1])
		}
		if cut == 0 {
			continue
		}
		k, err := n.purge(ctx, natsPurgeRequest{Filter: n.topicFilter(t), Seq: cut + 1})
		if err != nil {
			return dropped, err
		}
		dropped += k
	}
	return dropped, nil
}
