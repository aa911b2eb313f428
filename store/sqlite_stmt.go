package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
)

// prepare sets up the store's statements, each to be prepared when first
// used (see stmt).
func (s *SQLite) prepare() {
	const pidOf = `(SELECT pid FROM pursuances WHERE bid = ?1)`
	const cols = `bid, blob`
	type prep struct {
		stmt  **stmt
		on    preparer
		query string
	}
	preps := []prep{
		{&s.ws.begin, s.w, `BEGIN IMMEDIATE`},
		{&s.ws.commit, s.w, `COMMIT`},
		{&s.ws.rollback, s.w, `ROLLBACK`},
		{&s.ws.findPid, s.w, `SELECT pid FROM pursuances WHERE bid = ?1`},
		{&s.ws.insertPid, s.w, `INSERT INTO pursuances (bid, box) VALUES (?1, ?2)`},
		{&s.ws.findAid, s.w, `SELECT aid FROM authors WHERE bkey = ?1`},
		{&s.ws.insertAid, s.w, `INSERT INTO authors (bkey, box) VALUES (?1, ?2)`},
		{&s.ws.insertEvent, s.w, `INSERT INTO events (n, bid, pid, aid, seq, lamport, blob)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)`},
		{&s.ws.indexIDs, s.w, `INSERT INTO prefixes_recent (p, n) SELECT substr(bid, 1, 8), n FROM events WHERE n >= ?1`},
		{&s.ws.maxSeq, s.w, `SELECT ifnull(max(seq), 0) FROM events WHERE pid = ?1 AND aid = ?2`},
		{&s.ws.setBlob, s.w, `UPDATE events SET blob = ?2 WHERE n = ?1`},
		{&s.ws.blobOf, s.w, `SELECT n, blob FROM events WHERE n IN (` + rowOf("?1") + `) AND bid = ?1`},
		{&s.ws.deleteHead, s.w, `DELETE FROM heads WHERE pid = ?1 AND bid = ?2`},
		{&s.ws.insertHead, s.w, `INSERT INTO heads (pid, bid, box) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING`},
		{&s.ws.insertEvidence, s.w, `INSERT INTO evidence (pid, k, box) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING`},
		{&s.ws.count, s.w, `UPDATE pursuances SET n = n + ?2 WHERE pid = ?1`},

		{&s.rs.get, s.db, `SELECT ` + cols + ` FROM events WHERE n IN (` + rowOf("?1") + `) AND bid = ?1`},
		{&s.rs.bySeq, s.db, `SELECT ` + cols + ` FROM events
			WHERE pid = ` + pidOf + ` AND aid = (SELECT aid FROM authors WHERE bkey = ?2) AND seq = ?3`},
		{&s.rs.heads, s.db, `SELECT bid, box FROM heads WHERE pid = ` + pidOf},
		// A skip scan of the (pid, aid, seq) index: each step finds the
		// next author, then that author's highest seq, so the cost grows
		// with the number of authors, not of events.
		{&s.rs.vv, s.db, `WITH RECURSIVE p(pid) AS (SELECT pid FROM pursuances WHERE bid = ?1),
			a(aid) AS (
				SELECT (SELECT min(aid) FROM events WHERE pid = (SELECT pid FROM p))
				UNION ALL
				SELECT (SELECT min(aid) FROM events WHERE pid = (SELECT pid FROM p) AND aid > a.aid)
				FROM a WHERE a.aid IS NOT NULL
			)
			SELECT (SELECT bkey FROM authors WHERE aid = a.aid), (SELECT box FROM authors WHERE aid = a.aid),
				(SELECT max(seq) FROM events WHERE pid = (SELECT pid FROM p) AND aid = a.aid)
			FROM a WHERE aid IS NOT NULL`},
		// Events of equal lamport clocks are few; Iterate sorts each run of
		// them by ID as it goes, since the index cannot (it holds blinded
		// IDs, whose order is not the IDs').
		{&s.rs.iterate, s.db, `SELECT lamport, ` + cols + ` FROM events WHERE pid = ` + pidOf + ` ORDER BY lamport`},
		{&s.rs.evidence, s.db, `SELECT k, box FROM evidence WHERE pid = ` + pidOf},
		{&s.rs.pursuances, s.db, `SELECT p.bid, p.box FROM pursuances p
			WHERE EXISTS (SELECT 1 FROM events e WHERE e.pid = p.pid AND e.lamport = 1 AND e.bid = p.bid)`},
		{&s.rs.count, s.db, `SELECT n FROM pursuances WHERE bid = ?1`},
	}
	for i, n := range refBatch {
		list := "?1"
		for j := 2; j <= n; j++ {
			list += fmt.Sprintf(", ?%d", j)
		}
		q := `SELECT e.bid, e.pid, p.bid, p.box, e.aid, a.bkey, a.box, e.seq, e.lamport FROM events e
			JOIN pursuances p ON p.pid = e.pid JOIN authors a ON a.aid = e.aid
			WHERE e.n IN (` + rowOf(list) + `)`
		preps = append(preps, prep{&s.rs.refs[i], s.db, q})
		q = `SELECT e.bid, e.n, e.blob FROM events e WHERE e.n IN (` + rowOf(list) + `)`
		preps = append(preps, prep{&s.ws.existing[i], s.w, q})
	}
	for _, p := range preps {
		*p.stmt = &stmt{on: p.on, query: p.query}
	}
}

// rowOf is a subquery for the rows n of the events whose blinded IDs are
// the SQL parameters in list ("?1, ?2, ..."), looked up by their 8-byte
// prefixes in both tiers of the ID index. It also yields the row of any
// other event that shares a prefix with one of them, so callers check the
// whole blinded ID.
func rowOf(list string) string {
	ps := strings.Split(list, ", ")
	for i, p := range ps {
		ps[i] = "substr(" + p + ", 1, 8)"
	}
	in := strings.Join(ps, ", ")
	return `SELECT n FROM prefixes_recent WHERE p IN (` + in + `)
		UNION ALL SELECT n FROM prefixes WHERE run IN (SELECT run FROM runs) AND p IN (` + in + `)`
}

// preparer is a connection or a pool: what a statement is prepared on.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// stmt is a statement prepared the first time it is used. A store opened
// for one command uses few of its statements, and preparing all of them
// at open took most of the time OpenSQLite took (and most of the store's
// tests' time under the race detector, which open many stores). It is
// safe for concurrent use, like sql.Stmt.
type stmt struct {
	on    preparer
	query string
	once  sync.Once
	st    *sql.Stmt
	err   error
}

// get returns the prepared statement, preparing it on first use.
func (s *stmt) get() (*sql.Stmt, error) {
	s.once.Do(func() {
		s.st, s.err = s.on.PrepareContext(context.Background(), s.query)
		if s.err != nil {
			s.err = fmt.Errorf("prepare %q: %w", strings.Fields(s.query)[:3], s.err)
		}
	})
	return s.st, s.err
}

func (s *stmt) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s *stmt) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs the query; if it cannot be prepared, it runs it
// unprepared, so that the error shows in the returned row.
func (s *stmt) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	st, err := s.get()
	if err != nil {
		return s.on.QueryRowContext(ctx, s.query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// Close closes the statement if it was prepared; afterwards it fails with
// ErrClosed.
func (s *stmt) Close() error {
	s.once.Do(func() { s.err = ErrClosed })
	if s.st != nil {
		return s.st.Close()
	}
	return nil
}
