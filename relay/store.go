package relay

import (
	"context"
	"errors"
	"time"

	"github.com/pursuance/pursuance/keys"
)

// Store keeps the relay's topics durably. Implementations must be safe for
// concurrent use.
type Store interface {
	// Append adds envs at the end of topic, in order, skipping those the
	// topic already holds (by content: a replay is idempotent). It returns
	// only once what it stored is durable, with the cursor of each
	// envelope (for one it skipped, the cursor of the entry it already
	// held). Once it has returned without an error it holds no reference
	// to envs: the server reuses them.
	Append(ctx context.Context, topic keys.Topic, envs [][]byte) (AppendResult, error)
	// Read returns the entries of topic after the cursor, in cursor order:
	// at most limit, and no more envelope bytes than maxBytes unless the
	// first entry alone is larger.
	Read(ctx context.Context, topic keys.Topic, after uint64, limit, maxBytes int) (ReadResult, error)
	// Prune drops what retention no longer keeps and returns how many
	// envelopes it dropped.
	Prune(ctx context.Context, now time.Time, r Retention) (int, error)
	// Usage returns what topic and the whole store hold, for the
	// server's quotas. It may lag a commit in progress.
	Usage(ctx context.Context, topic keys.Topic) (Usage, error)
	// OnCommit sets a function called after each durable commit with the
	// entries it stored, by topic (the server feeds live subscribers from
	// it; it copies what it keeps). It must not block.
	OnCommit(func(map[keys.Topic][]Entry))
	// Instance returns the store's instance ID: random, made when the
	// store is created and kept in it, so that a copy restored from a
	// backup keeps it and an empty store made anew has another. Clients
	// tell from it that a relay lost what it held (docs/relay-protocol.md,
	// "Instance").
	Instance() string
	Close() error
}

// AppendResult says what an append did.
type AppendResult struct {
	Stored     int    `json:"stored"`
	Duplicates int    `json:"duplicates"`
	Refused    int    `json:"refused,omitempty"` // not admitted by the server's Config.Admit: not stored
	Last       uint64 `json:"last"`              // the topic's last cursor after the append
	// Cursors has the cursor of each envelope appended, in order; for a
	// duplicate, the cursor of the entry that holds it. A client checks
	// them on a later read (it does not trust the answer alone).
	Cursors []uint64 `json:"cursors"`
	// Instance is the relay's instance ID (the Pursuance-Relay-Instance
	// header of the answer); the client fills it in.
	Instance string `json:"-"`
}

// ReadResult is one page of a topic.
type ReadResult struct {
	Entries []Entry
	// Last is the topic's last cursor (0: empty). First is the cursor of
	// its earliest kept entry: above after+1, retention dropped entries
	// the reader has not seen.
	Last, First uint64
	// Instance is the relay's instance ID (the Pursuance-Relay-Instance
	// header of the answer; "" from a relay that sends none); the client
	// fills it in.
	Instance string
}

// Usage is what a store holds: a topic's envelope bytes (TopicExists:
// it was ever written to) and the envelope bytes of all topics.
type Usage struct {
	TopicBytes  int64
	TopicExists bool
	TotalBytes  int64
}

// Retention bounds what a relay keeps of each topic: entries older than
// MaxAge, and the oldest entries beyond MaxBytes, are dropped (0: no
// bound).
type Retention struct {
	MaxAge   time.Duration
	MaxBytes int64
}

// ErrClosed is returned by a closed store.
var ErrClosed = errors.New("relay: store closed")
