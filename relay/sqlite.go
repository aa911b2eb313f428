package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pursuance/pursuance/internal/sqlitefile"
	"github.com/pursuance/pursuance/keys"
)

// SQLite is the relay's default store: one file, WAL, synchronous=FULL, and
// group commit: appends from many connections are written in one
// transaction, so one fsync acknowledges them all.
type SQLite struct {
	db   *sql.DB
	w    *sql.Conn // the writer's connection, used only by the writer loop
	reqs chan *appendReq
	done chan struct{}

	mu       sync.Mutex // guards closed, onCommit
	closed   bool
	onCommit func(map[keys.Topic][]Entry)

	topics   map[keys.Topic]*topicInfo // writer loop only; a cache of at most maxCachedTopics
	total    atomic.Int64              // envelope bytes of all topics, as committed
	instance string
	wg       sync.WaitGroup

	umu   sync.Mutex
	usage map[keys.Topic]int64 // topics' bytes as committed, for Usage; a cache of at most maxCachedTopics

	blobOnce    sync.Once // the blob table made (sqlite_blobs.go)
	blobInitErr error
}

// maxCachedTopics bounds the writer's cache of topic rows (anyone can
// make topics).
const maxCachedTopics = 1 << 14

type topicInfo struct {
	id    int64
	last  uint64
	bytes int64
}

type appendReq struct {
	ctx   context.Context
	topic keys.Topic
	envs  [][]byte
	prune *pruneReq
	res   chan appendRes
}

type pruneReq struct {
	now time.Time
	r   Retention
}

type appendRes struct {
	r   AppendResult
	n   int // pruned
	err error
}

const relaySchema = `
CREATE TABLE IF NOT EXISTS topics (
	id    INTEGER PRIMARY KEY,
	topic BLOB NOT NULL UNIQUE,
	last  INTEGER NOT NULL,
	bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS envelopes (
	id    INTEGER PRIMARY KEY,
	topic INTEGER NOT NULL,
	seq   INTEGER NOT NULL,
	hash  BLOB NOT NULL,
	at    INTEGER NOT NULL,
	data  BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS envelopes_seq ON envelopes (topic, seq);
CREATE UNIQUE INDEX IF NOT EXISTS envelopes_hash ON envelopes (topic, hash);
CREATE TABLE IF NOT EXISTS meta (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`

// instanceBytes is the size of a store's random instance ID.
const instanceBytes = 16

// maxGroup bounds the appends one transaction takes.
const maxGroup = 512

// maxReadConns bounds the store's connections for reads.
const maxReadConns = 8

// OpenSQLite opens (creating if needed) the relay store at path.
func OpenSQLite(ctx context.Context, path string) (_ *SQLite, err error) {
	db, err := sqlitefile.Open(path, 10*time.Second, "synchronous(FULL)")
	if err != nil {
		return nil, err
	}
	s := &SQLite{db: db, reqs: make(chan *appendReq, maxGroup), done: make(chan struct{}), topics: map[keys.Topic]*topicInfo{}, usage: map[keys.Topic]int64{}}
	defer func() {
		if err != nil {
			if s.w != nil {
				s.w.Close()
			}
			db.Close()
		}
	}()
	// The writer's connection and maxReadConns for reads: each holds its
	// own page cache, and reads beyond these wait for one.
	db.SetMaxOpenConns(1 + maxReadConns)
	db.SetMaxIdleConns(1 + maxReadConns)
	if s.w, err = db.Conn(ctx); err != nil {
		return nil, err
	}
	if err := sqlitefile.WAL(ctx, s.w); err != nil {
		return nil, fmt.Errorf("relay store: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, relaySchema); err != nil {
		return nil, fmt.Errorf("relay store: schema: %w", err)
	}
	var total int64
	if err := s.w.QueryRowContext(ctx, "SELECT COALESCE(SUM(bytes), 0) FROM topics").Scan(&total); err != nil {
		return nil, fmt.Errorf("relay store: %w", err)
	}
	s.total.Store(total)
	// The instance ID is made with the store (or, for a store made before
	// there were instance IDs, at its first open since) and kept in it.
	var id [instanceBytes]byte
	rand.Read(id[:])
	if _, err := s.w.ExecContext(ctx, "INSERT OR IGNORE INTO meta (name, value) VALUES ('instance', ?)", hex.EncodeToString(id[:])); err != nil {
		return nil, fmt.Errorf("relay store: instance: %w", err)
	}
	if err := s.w.QueryRowContext(ctx, "SELECT value FROM meta WHERE name = 'instance'").Scan(&s.instance); err != nil {
		return nil, fmt.Errorf("relay store: instance: %w", err)
	}
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// OnCommit implements Store.
func (s *SQLite) OnCommit(fn func(map[keys.Topic][]Entry)) {
	s.mu.Lock()
	s.onCommit = fn
	s.mu.Unlock()
}

// Instance implements Store.
func (s *SQLite) Instance() string { return s.instance }

// Append implements Store.
func (s *SQLite) Append(ctx context.Context, topic keys.Topic, envs [][]byte) (AppendResult, error) {
	res, err := s.submit(ctx, &appendReq{ctx: ctx, topic: topic, envs: envs})
	return res.r, err
}

// Prune implements Store.
func (s *SQLite) Prune(ctx context.Context, now time.Time, r Retention) (int, error) {
	res, err := s.submit(ctx, &appendReq{ctx: ctx, prune: &pruneReq{now: now, r: r}})
	return res.n, err
}

func (s *SQLite) submit(ctx context.Context, req *appendReq) (appendRes, error) {
	req.res = make(chan appendRes, 1)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return appendRes{}, ErrClosed
	}
	select {
	case s.reqs <- req:
	case <-s.done:
		return appendRes{}, ErrClosed
	case <-ctx.Done():
		return appendRes{}, ctx.Err()
	}
	// Once submitted, wait for the outcome even if ctx ends: the writer
	// may be committing it.
	select {
	case r := <-req.res:
		return r, r.err
	case <-s.done:
		return appendRes{}, ErrClosed
	}
}

// loop is the writer: it takes every append waiting, writes them in one
// transaction, commits (an fsync of the WAL) and answers them all.
func (s *SQLite) loop() {
	defer s.wg.Done()
	for {
		var first *appendReq
		select {
		case first = <-s.reqs:
		case <-s.done:
			return
		}
		group := []*appendReq{first}
	drain:
		for len(group) < maxGroup {
			select {
			case r := <-s.reqs:
				group = append(group, r)
			default:
				break drain
			}
		}
		s.write(group)
	}
}

func (s *SQLite) write(group []*appendReq) {
	ctx := context.Background()
	results := make([]appendRes, len(group))
	committed := map[keys.Topic][]Entry{}
	if len(s.topics) > maxCachedTopics {
		clear(s.topics) // reloaded from the database on demand
	}
	var added int64
	total := s.total.Load()
	pruned := false
	err := func() error {
		if _, err := s.w.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			return err
		}
		touched := map[keys.Topic]topicInfo{}
		for i, req := range group {
			if req.ctx.Err() != nil {
				results[i].err = req.ctx.Err()
				continue
			}
			if req.prune != nil {
				n, sum, err := s.prune(ctx, req.prune)
				if err != nil {
					return err
				}
				if sum >= 0 {
					total, added, pruned = sum, 0, true
				}
				results[i].n = n
				continue
			}
			ti, err := s.topic(ctx, req.topic)
			if err != nil {
				return err
			}
			if _, ok := touched[req.topic]; !ok {
				touched[req.topic] = *ti
			}
			now := time.Now().UnixMilli()
			for _, env := range req.envs {
				h := sha256.Sum256(env)
				r, err := s.w.ExecContext(ctx, "INSERT OR IGNORE INTO envelopes (topic, seq, hash, at, data) VALUES (?, ?, ?, ?, ?)",
					ti.id, ti.last+1, h[:16], now, env)
				if err != nil {
					return err
				}
				if n, _ := r.RowsAffected(); n == 0 {
					// Held already: answer with the cursor that holds it.
					var at uint64
					if err := s.w.QueryRowContext(ctx, "SELECT seq FROM envelopes WHERE topic = ? AND hash = ?", ti.id, h[:16]).Scan(&at); err != nil {
						return err
					}
					results[i].r.Duplicates++
					results[i].r.Cursors = append(results[i].r.Cursors, at)
					continue
				}
				ti.last++
				results[i].r.Cursors = append(results[i].r.Cursors, ti.last)
				ti.bytes += int64(len(env))
				added += int64(len(env))
				results[i].r.Stored++
				committed[req.topic] = append(committed[req.topic], Entry{Cursor: ti.last, Envelope: env})
			}
			results[i].r.Last = ti.last
		}
		for t := range touched {
			ti := s.topics[t]
			if _, err := s.w.ExecContext(ctx, "UPDATE topics SET last = ?, bytes = ? WHERE id = ?", ti.last, ti.bytes, ti.id); err != nil {
				return err
			}
		}
		if _, err := s.w.ExecContext(ctx, "COMMIT"); err != nil {
			// Restore the caches to what the database holds.
			for t, before := range touched {
				*s.topics[t] = before
			}
			return err
		}
		s.total.Store(total + added)
		s.umu.Lock()
		if pruned {
			clear(s.usage) // recounted: reloaded on demand
		}
		for t := range touched {
			s.cacheUsage(t, s.topics[t].bytes, true)
		}
		s.umu.Unlock()
		return nil
	}()
	if err != nil {
		s.w.ExecContext(ctx, "ROLLBACK")
		s.topics = map[keys.Topic]*topicInfo{} // reload from the database
		for i := range results {
			results[i] = appendRes{err: fmt.Errorf("relay store: %w", err)}
		}
		committed = nil
	}
	if len(committed) > 0 {
		s.mu.Lock()
		fn := s.onCommit
		s.mu.Unlock()
		if fn != nil {
			fn(committed)
		}
	}
	for i, req := range group {
		req.res <- results[i]
	}
}

// topic returns a topic's row, creating it. Writer loop only.
func (s *SQLite) topic(ctx context.Context, t keys.Topic) (*topicInfo, error) {
	if ti, ok := s.topics[t]; ok {
		return ti, nil
	}
	ti := &topicInfo{}
	err := s.w.QueryRowContext(ctx, "SELECT id, last, bytes FROM topics WHERE topic = ?", t[:]).Scan(&ti.id, &ti.last, &ti.bytes)
	if errors.Is(err, sql.ErrNoRows) {
		r, err := s.w.ExecContext(ctx, "INSERT INTO topics (topic, last, bytes) VALUES (?, 0, 0)", t[:])
		if err != nil {
			return nil, err
		}
		if ti.id, err = r.LastInsertId(); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	s.topics[t] = ti
	return ti, nil
}

// prune drops expired entries and the oldest beyond the byte bound, in the
// writer's open transaction. It returns how many it dropped, and the bytes
// of all topics once recounted (-1: not recounted).
func (s *SQLite) prune(ctx context.Context, p *pruneReq) (dropped int, total int64, err error) {
	total = -1
	if p.r.MaxAge > 0 {
		r, err := s.w.ExecContext(ctx, "DELETE FROM envelopes WHERE at < ?", p.now.Add(-p.r.MaxAge).UnixMilli())
		if err != nil {
			return 0, -1, err
		}
		n, _ := r.RowsAffected()
		dropped += int(n)
	}
	if p.r.MaxBytes > 0 || dropped > 0 {
		// Recount every topic's bytes, and drop the oldest beyond the bound.
		total = 0
		rows, err := s.w.QueryContext(ctx, "SELECT id, topic FROM topics")
		if err != nil {
			return 0, -1, err
		}
		type tid struct {
			id    int64
			topic keys.Topic
		}
		var ids []tid
		for rows.Next() {
			var t tid
			var raw []byte
			if err := rows.Scan(&t.id, &raw); err != nil {
				rows.Close()
				return 0, -1, err
			}
			copy(t.topic[:], raw)
			ids = append(ids, t)
		}
		rows.Close()
		for _, t := range ids {
			var bytes int64
			if err := s.w.QueryRowContext(ctx, "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM envelopes WHERE topic = ?", t.id).Scan(&bytes); err != nil {
				return 0, -1, err
			}
			if p.r.MaxBytes > 0 && bytes > p.r.MaxBytes {
				// Walk from the newest, keeping up to the bound.
				var cut uint64
				var kept int64
				rs, err := s.w.QueryContext(ctx, "SELECT seq, LENGTH(data) FROM envelopes WHERE topic = ? ORDER BY seq DESC", t.id)
				if err != nil {
					return 0, -1, err
				}
				for rs.Next() {
					var seq uint64
					var n int64
					if err := rs.Scan(&seq, &n); err != nil {
						rs.Close()
						return 0, -1, err
					}
					if kept+n > p.r.MaxBytes {
						cut = seq
						break
					}
					kept += n
				}
				rs.Close()
				r, err := s.w.ExecContext(ctx, "DELETE FROM envelopes WHERE topic = ? AND seq <= ?", t.id, cut)
				if err != nil {
					return 0, -1, err
				}
				n, _ := r.RowsAffected()
				dropped += int(n)
				bytes = kept
			}
			if _, err := s.w.ExecContext(ctx, "UPDATE topics SET bytes = ? WHERE id = ?", bytes, t.id); err != nil {
				return 0, -1, err
			}
			if ti, ok := s.topics[t.topic]; ok {
				ti.bytes = bytes
			}
			total += bytes
		}
	}
	return dropped, total, nil
}

// Usage implements Store. A topic's bytes come from a cache the writer
// keeps current, else from the database.
func (s *SQLite) Usage(ctx context.Context, t keys.Topic) (Usage, error) {
	u := Usage{TotalBytes: s.total.Load()}
	s.umu.Lock()
	u.TopicBytes, u.TopicExists = s.usage[t]
	s.umu.Unlock()
	if u.TopicExists {
		return u, nil
	}
	err := s.db.QueryRowContext(ctx, "SELECT bytes FROM topics WHERE topic = ?", t[:]).Scan(&u.TopicBytes)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return u, nil
	case err != nil:
		return u, fmt.Errorf("relay store: usage: %w", err)
	}
	u.TopicExists = true
	s.umu.Lock()
	s.cacheUsage(t, u.TopicBytes, false) // the writer's word, if it has one since, stands
	s.umu.Unlock()
	return u, nil
}

// cacheUsage records a topic's bytes; called with umu held. A reader's
// value (overwrite false) does not replace one already there: the writer
// may have put a newer one since the reader read.
func (s *SQLite) cacheUsage(t keys.Topic, bytes int64, overwrite bool) {
	if _, ok := s.usage[t]; ok && !overwrite {
		return
	}
	if len(s.usage) >= maxCachedTopics {
		clear(s.usage)
	}
	s.usage[t] = bytes
}

// Read implements Store.
func (s *SQLite) Read(ctx context.Context, t keys.Topic, after uint64, limit, maxBytes int) (ReadResult, error) {
	var res ReadResult
	var id int64
	err := s.db.QueryRowContext(ctx, "SELECT id, last FROM topics WHERE topic = ?", t[:]).Scan(&id, &res.Last)
	if errors.Is(err, sql.ErrNoRows) {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MIN(seq), 0) FROM envelopes WHERE topic = ?", id).Scan(&res.First); err != nil {
		return res, err
	}
	// The sizes first (SQLite's length() reads no blob), so that no
	// envelope is read only to be left out.
	rows, err := s.db.QueryContext(ctx, "SELECT seq, LENGTH(data) FROM envelopes WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ?", id, after, limit)
	if err != nil {
		return res, err
	}
	var upto uint64
	n, size := 0, 0
	for rows.Next() {
		var seq uint64
		var length int
		if err := rows.Scan(&seq, &length); err != nil {
			rows.Close()
			return res, err
		}
		if n > 0 && size+length > maxBytes {
			break
		}
		upto, size, n = seq, size+length, n+1
	}
	rows.Close()
	if err := rows.Err(); err != nil || n == 0 {
		return res, err
	}
	rows, err = s.db.QueryContext(ctx, "SELECT seq, data FROM envelopes WHERE topic = ? AND seq > ? AND seq <= ? ORDER BY seq", id, after, upto)
	if err != nil {
		return res, err
	}
	defer rows.Close()
	res.Entries = make([]Entry, 0, n)
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.Cursor, &e.Envelope); err != nil {
			return res, err
		}
		res.Entries = append(res.Entries, e)
	}
	return res, rows.Err()
}

// Close stops the writer and closes the database.
func (s *SQLite) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
	err := s.w.Close()
	return errors.Join(err, s.db.Close())
}
