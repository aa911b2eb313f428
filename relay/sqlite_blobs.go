package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/keys"
)

// The SQLite store's blob area: the blobs, each with its ID, the topic it
// is charged to and its size, and a running count of each topic's blob
// bytes, so that the quotas never read blobs (a sum over the blobs table
// would read every blob's pages). Written outside the group commit (a
// blob is large and rare next to envelopes): each put is its own
// transaction, durable before it returns (synchronous=FULL).

const blobSchema = `
CREATE TABLE IF NOT EXISTS blobs (
	id    BLOB NOT NULL UNIQUE,
	topic BLOB NOT NULL,
	size  INTEGER NOT NULL,
	data  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS blob_topics (
	topic BLOB PRIMARY KEY,
	bytes INTEGER NOT NULL
) WITHOUT ROWID;
`

var _ BlobStore = (*SQLite)(nil)

// blobs makes the blob table at the first use.
func (s *SQLite) blobs(ctx context.Context) error {
	s.blobOnce.Do(func() {
		if _, err := s.db.ExecContext(ctx, blobSchema); err != nil {
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
	res, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO blobs (id, topic, size, data) VALUES (?, ?, ?, ?)", id[:], topic[:], len(blob), blob)
	if err != nil {
		return false, fmt.Errorf("relay store: put blob: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err // held already (or the driver failed to say)
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
