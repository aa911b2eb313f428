package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/keys"
)

// The SQLite store's blob area: the blobs, each with its ID, the topic it
// is charged to and its size, and a running count of each topic's blob
// bytes, so that the quotas never read blobs (a sum over the blobs table
// would read every blob's pages). Written outside the group commit (a
// blob is large and rare next to envelopes): each put is its own
// transaction, durable before it returns (synchronous=FULL). Each blob
// keeps the time of its last put (Unix milliseconds), which retention
// reads (PruneBlobs).

const blobSchema = `
CREATE TABLE IF NOT EXISTS blobs (
	id    BLOB NOT NULL UNIQUE,
	topic BLOB NOT NULL,
	size  INTEGER NOT NULL,
	data  BLOB NOT NULL,
	at    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS blob_topics (
	topic BLOB PRIMARY KEY,
	bytes INTEGER NOT NULL
) WITHOUT ROWID;
`

var (
	_ BlobStore  = (*SQLite)(nil)
	_ BlobPruner = (*SQLite)(nil)
)

// blobs makes the blob table at the first use, and gives a table made
// before blobs kept their put time one, the time of this upgrade: their
// age is counted from it.
func (s *SQLite) blobs(ctx context.Context) error {
	s.blobOnce.Do(func() {
		if _, err := s.db.ExecContext(ctx, blobSchema); err != nil {
			s.blobInitErr = fmt.Errorf("relay store: blob schema: %w", err)
			return
		}
		var hasAt bool
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) > 0 FROM pragma_table_info('blobs') WHERE name = 'at'").Scan(&hasAt); err != nil {
			s.blobInitErr = fmt.Errorf("relay store: blob schema: %w", err)
			return
		}
		if !hasAt {
			if _, err := s.db.ExecContext(ctx, "ALTER TABLE blobs ADD COLUMN at INTEGER NOT NULL DEFAULT 0"); err != nil {
				s.blobInitErr = fmt.Errorf("relay store: blob schema: %w", err)
				return
			}
		}
		if _, err := s.db.ExecContext(ctx, "UPDATE blobs SET at = ? WHERE at = 0", time.Now().UnixMilli()); err != nil {
			s.blobInitErr = fmt.Errorf("relay store: blob schema: %w", err)
			return
		}
		if _, err := s.db.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS blobs_at ON blobs (at)"); err != nil {
			s.blobInitErr = fmt.Errorf("relay store: blob schema: %w", err)
		}
	})
	return s.blobInitErr
}

func (s *SQLite) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// PutBlob implements BlobStore.
func (s *SQLite) PutBlob(ctx context.Context, id attach.BlobID, topic keys.Topic, blob []byte) (bool, error) {
	if s.isClosed() {
		return false, ErrClosed
	}
	if err := s.blobs(ctx); err != nil {
		return false, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("relay store: put blob: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	res, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO blobs (id, topic, size, data, at) VALUES (?, ?, ?, ?, ?)", id[:], topic[:], len(blob), blob, now)
	if err != nil {
		return false, fmt.Errorf("relay store: put blob: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("relay store: put blob: %w", err)
	} else if n == 0 {
		// Held already: the put counts as a fresh one for retention.
		if _, err := tx.ExecContext(ctx, "UPDATE blobs SET at = MAX(at, ?) WHERE id = ?", now, id[:]); err != nil {
			return false, fmt.Errorf("relay store: put blob: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return false, fmt.Errorf("relay store: put blob: %w", err)
		}
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO blob_topics (topic, bytes) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET bytes = bytes + excluded.bytes", topic[:], len(blob)); err != nil {
		return false, fmt.Errorf("relay store: put blob: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("relay store: put blob: %w", err)
	}
	return true, nil
}

// Blob implements BlobStore.
func (s *SQLite) Blob(ctx context.Context, id attach.BlobID) ([]byte, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	if err := s.blobs(ctx); err != nil {
		return nil, err
	}
	var b []byte
	err := s.db.QueryRowContext(ctx, "SELECT data FROM blobs WHERE id = ?", id[:]).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNoBlob, id)
	}
	if err != nil {
		return nil, fmt.Errorf("relay store: blob: %w", err)
	}
	return b, nil
}

// HasBlobs implements BlobStore.
func (s *SQLite) HasBlobs(ctx context.Context, ids []attach.BlobID) ([]bool, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	if err := s.blobs(ctx); err != nil {
		return nil, err
	}
	have := make([]bool, len(ids))
	idx := map[attach.BlobID][]int{}
	args := make([]any, 0, len(ids))
	for i, id := range ids {
		if _, ok := idx[id]; !ok {
			args = append(args, id[:])
		}
		idx[id] = append(idx[id], i)
	}
	q := "SELECT id FROM blobs WHERE id IN (?" + strings.Repeat(", ?", len(args)-1) + ")"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("relay store: has blobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("relay store: has blobs: %w", err)
		}
		for _, i := range idx[attach.BlobID(b)] {
			have[i] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("relay store: has blobs: %w", err)
	}
	return have, nil
}

// BlobUsage implements BlobStore.
func (s *SQLite) BlobUsage(ctx context.Context, topic keys.Topic) (int64, int64, error) {
	if s.isClosed() {
		return 0, 0, ErrClosed
	}
	if err := s.blobs(ctx); err != nil {
		return 0, 0, err
	}
	var tb, total int64
	err := s.db.QueryRowContext(ctx, "SELECT COALESCE((SELECT bytes FROM blob_topics WHERE topic = ?), 0), COALESCE((SELECT SUM(bytes) FROM blob_topics), 0)", topic[:]).Scan(&tb, &total)
	if err != nil {
		return 0, 0, fmt.Errorf("relay store: blob usage: %w", err)
	}
	return tb, total, nil
}

// PruneBlobs implements BlobPruner, in one transaction: the blobs last put
// before cut go, and each topic's count of blob bytes drops by theirs.
func (s *SQLite) PruneBlobs(ctx context.Context, cut time.Time) (n int, bytes int64, err error) {
	if s.isClosed() {
		return 0, 0, ErrClosed
	}
	if err := s.blobs(ctx); err != nil {
		return 0, 0, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("relay store: prune blobs: %w", err)
	}
	defer tx.Rollback()
	at := cut.UnixMilli()
	rows, err := tx.QueryContext(ctx, "SELECT topic, COUNT(*), SUM(size) FROM blobs WHERE at < ? GROUP BY topic", at)
	if err != nil {
		return 0, 0, fmt.Errorf("relay store: prune blobs: %w", err)
	}
	type charge struct {
		topic []byte
		bytes int64
	}
	var charges []charge
	for rows.Next() {
		var c charge
		var count int
		if err := rows.Scan(&c.topic, &count, &c.bytes); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("relay store: prune blobs: %w", err)
		}
		charges = append(charges, c)
		n += count
		bytes += c.bytes
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("relay store: prune blobs: %w", err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM blobs WHERE at < ?", at); err != nil {
		return 0, 0, fmt.Errorf("relay store: prune blobs: %w", err)
	}
	for _, c := range charges {
		if _, err := tx.ExecContext(ctx, "UPDATE blob_topics SET bytes = bytes - ? WHERE topic = ?", c.bytes, c.topic); err != nil {
			return 0, 0, fmt.Errorf("relay store: prune blobs: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM blob_topics WHERE bytes <= 0"); err != nil {
		return 0, 0, fmt.Errorf("relay store: prune blobs: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("relay store: prune blobs: %w", err)
	}
	return n, bytes, nil
}
