package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/atrest"
	"github.com/pursuance/pursuance/internal/sqlitefile"
)

// SQLite is the durable Store: one SQLite database file in WAL mode with
// synchronous=FULL, so a Put that returned nil survives a process crash and
// a power loss (docs/store.md). It is safe for concurrent use.
//
// Writes go through one dedicated connection, serialized by a mutex, each
// Put one IMMEDIATE transaction with statements prepared once at open.
// Reads use a pool of other connections and, in WAL mode, neither wait for
// writes nor hold them up: each read sees the database as of the last
// commit before it began.
type SQLite struct {
	db     *sql.DB
	closed atomic.Bool

	wmu     sync.Mutex // guards w, ws, pids and authors
	w       *sql.Conn  // the one writing connection
	ws      writeStmts
	pids    keyRows // pursuance rows
	authors keyRows // author rows
	tips    chainTips
	recent  int // rows in prefixes_recent, as of the last commit
	mergeAt int // mergeThreshold, lowered by tests
	fanout  int // runsPerLevel, lowered by tests
	// moveTime is the time Put has spent moving the recent tier of the ID
	// index to the main one, merges included (for benchmarks).
	moveTime time.Duration
	next     int64 // the row number of the next event, as of the last commit
	// dataVersion is PRAGMA data_version when the caches (tips, recent,
	// next) were last known right; it changes when another connection,
	// perhaps another process, commits.
	dataVersion int64

	rs    readStmts
	ck    checkpointer
	se    sealer
	names rowNames // readers' cache of pursuance and author rows
}

var _ Store = (*SQLite)(nil)

type writeStmts struct {
	begin, commit, rollback *stmt
	findPid, insertPid      *stmt
	findAid, insertAid      *stmt
	insertEvent, setBlob    *stmt
	blobOf                  *stmt
	indexIDs, maxSeq        *stmt
	existing                [len(refBatch)]*stmt
	deleteHead, insertHead  *stmt
	insertEvidence, count   *stmt
}

type readStmts struct {
	get, bySeq, heads, vv, iterate, evidence, pursuances, count *stmt
	refs                                                        [len(refBatch)]*stmt
}

// refBatch are the numbers of IDs that Refs looks up per query, in
// ascending order. Refs splits n IDs greedily, largest first (100 is
// 64+16+16+4), so that a handful of prepared statements serve any n
// without padding.
var refBatch = [...]int{1, 4, 16, 64, 256}

// Page cache sizes in KiB (negative, as PRAGMA cache_size takes them). The
// writer's is large: inserting events with random IDs touches index pages
// all over the file, and a catch-up of a million events keeps most of the
// ID index hot in 64 MiB. Readers mostly stream in order and get less.
const (
	writerCacheKiB = 65536
	readerCacheKiB = 16384
)

// pageSize is the database page size in bytes, fixed when the file is
// created. Events are a few hundred bytes; 16 KiB pages fit dozens, so a
// batch writes fewer pages to the WAL (and then to the database) than with
// SQLite's default of 4 KiB: Put of a 100,000-event log in batches of
// 2,000 took about 10 µs per event against 14.
const pageSize = 16384

// walCapBytes bounds the WAL. Checkpoints (copying the WAL into the
// database file) run in the background (see checkpointer), but SQLite
// starts the WAL over only when a write transaction begins with every
// frame already copied, which a checkpoint trailing a busy writer may never
// see. So once the WAL is longer than walCapBytes, the next Put first
// finishes the checkpoint itself (little is usually left), and its
// transaction starts the WAL over. It is also the size the WAL file is
// cut back to when it starts over.
const walCapBytes = 64 << 20

// busyTimeout is how long a connection waits for a lock held by another
// process before it fails with SQLITE_BUSY. Within one process the writer
// mutex means the writer never waits for itself, and WAL readers never wait.
const busyTimeout = 10 * time.Second

// OpenSQLite opens the store in the SQLite database at path, encrypted
// under key, creating it (mode 0600, and any missing directories 0700) if
// it does not exist. A store of the clear schemas (versions 1 to 3) is
// first copied into an encrypted one that replaces it (migrateLegacy),
// which needs that no other process has the file open. OpenSQLite fails
// with an error wrapping ErrWrongKey if the store was written under
// another key, and fails if the file belongs to another application or to
// a newer version of this package, or if the file system cannot hold a
// WAL-mode database. Close the store when done.
func OpenSQLite(path string, key Key) (*SQLite, error) {
	ctx := context.Background()
	s, err := openSQLite(ctx, path, key)
	if errors.Is(err, errLegacy) {
		if err = migrateLegacy(ctx, path, key); err == nil {
			s, err = openSQLite(ctx, path, key)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return s, nil
}

func openSQLite(ctx context.Context, path string, key Key) (_ *SQLite, err error) {
	// A migration a crash cut short is finished or undone first.
	if err := sqlitefile.Recover(path, path+migrateSuffix); err != nil {
		return nil, fmt.Errorf("recover an interrupted migration: %w", err)
	}
	db, err := sqlitefile.Open(path, busyTimeout, "synchronous(FULL)", fmt.Sprintf("cache_size(%d)", -readerCacheKiB))
	if err != nil {
		return nil, err
	}
	s := &SQLite{db: db, se: newSealer(key)}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	// Readers are not limited: Iterate holds a connection while its
	// callback runs, and a callback that reads the store must not wait for
	// a connection that only it could free. Idle ones are kept few, since
	// each holds its own page cache.
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(time.Minute)

	if s.w, err = db.Conn(ctx); err != nil {
		return nil, err
	}
	// The page size can be set only before the file has its first page,
	// which switching to WAL writes; on an existing file it does nothing.
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
		return nil, err
	}
	if err := sqlitefile.WAL(ctx, s.w); err != nil {
		return nil, err
	}
	for _, p := range []string{
		fmt.Sprintf("PRAGMA cache_size = %d", -writerCacheKiB),
		"PRAGMA wal_autocheckpoint = 0", // checkpoints run in the background
		fmt.Sprintf("PRAGMA journal_size_limit = %d", walCapBytes),
	} {
		if _, err := s.w.ExecContext(ctx, p); err != nil {
			return nil, err
		}
	}
	if err := prepareSchema(ctx, s.w, s.se.c); err != nil {
		return nil, err
	}
	if err := s.ck.start(ctx, db, s.w); err != nil {
		return nil, err
	}
	s.prepare()
	s.mergeAt = mergeThreshold
	s.fanout = runsPerLevel
	s.tips = chainTips{find: s.ws.maxSeq, committed: make(map[[2]int64]uint64), fresh: make(map[[2]int64]uint64)}
	s.dataVersion = -1 // load the caches at the first Put
	s.pids = newKeyRows("pursuance", s.ws.findPid, s.ws.insertPid, func(k [32]byte) (atrest.Blinded, []byte) {
		b := s.se.id(k)
		return b, s.se.sealBox(boxPursuance, b[:], k[:])
	})
	s.authors = newKeyRows("author", s.ws.findAid, s.ws.insertAid, func(k [32]byte) (atrest.Blinded, []byte) {
		b := s.se.author(k)
		return b, s.se.sealBox(boxAuthor, b[:], k[:])
	})
	return s, nil
}

// mergeThreshold is the number of entries in prefixes_recent at which Put
// moves them to a new run in prefixes (see the schema). 65,536 entries
// take about 1 MB.
const mergeThreshold = 1 << 16

// runsPerLevel is the number of runs at which a level of the ID index's
// main tier is merged into one run of the next level. More runs make
// lookups search more B-tree ranges; fewer make entries rewritten more
// often. With 16, a log of up to a million events has one level (each
// entry written once, and up to 15 runs to search), ten million two.
const runsPerLevel = 16

// closeAll closes every statement and connection, returning the first
// error.
func (s *SQLite) closeAll() error {
	var errs []error
	errs = append(errs, s.ck.stop())
	for _, st := range []*stmt{
		s.ws.begin, s.ws.commit, s.ws.rollback, s.ws.findPid, s.ws.insertPid,
		s.ws.findAid, s.ws.insertAid,
		s.ws.insertEvent, s.ws.setBlob, s.ws.blobOf, s.ws.deleteHead, s.ws.insertHead,
		s.ws.indexIDs, s.ws.maxSeq,
		s.ws.insertEvidence, s.ws.count,
		s.rs.get, s.rs.bySeq, s.rs.heads, s.rs.vv, s.rs.iterate, s.rs.evidence,
		s.rs.pursuances, s.rs.count,
	} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, st := range s.ws.existing {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, st := range s.rs.refs {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}

// Close implements Store. It waits for a Put in progress to finish; reads
// in progress either finish or fail with ErrClosed, and their connections
// are closed as they end.
func (s *SQLite) Close() error {
	if s.closed.Swap(true) {
		return ErrClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// Stop the background checkpoints, then copy what the WAL still holds
	// into the database file, without waiting for other processes. (When
	// the last connection to the file closes, SQLite checkpoints the whole
	// WAL and deletes it anyway.)
	s.ck.stop()
	s.ck.run(s.w)
	if err := s.closeAll(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// begin checks that a call named op may start.
func (s *SQLite) begin(ctx context.Context, op string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return nil
}

// fail wraps the error of a call named op, reporting ErrClosed instead if
// the store was closed under the call.
func (s *SQLite) fail(op string, err error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// Put implements Store. The batch is one IMMEDIATE transaction committed
// with a sync of the WAL, so its cost is one fsync plus a few microseconds
// per event. ctx is checked before each event and before the commit; a
// Put cancelled before its commit stores nothing. As with any database, a
// failure of the disk during the commit itself can leave the outcome
// unknown to the caller until the store is reopened.
func (s *SQLite) Put(ctx context.Context, events []*event.Event, evidence []event.Equivocation) error {
	if err := checkBatch(events, evidence); err != nil {
		return fmt.Errorf("store: put: %w", err)
	}
	if err := s.begin(ctx, "put"); err != nil {
		return err
	}
	if len(events) == 0 && len(evidence) == 0 {
		return nil
	}
	// Seal before taking the lock: the writer is one thread, sealing is
	// not.
	sealed := s.se.sealAll(events)
	records := make([]sealedRecord, len(evidence))
	for i, q := range evidence {
		rec := evidenceRecord(q)
		k := s.se.c.Blind(domainEvidence, rec)
		records[i] = sealedRecord{k: k, box: s.se.sealBox(boxEvidence, k[:], rec)}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	err := s.put(ctx, events, sealed, evidence, records)
	s.pids.end(err == nil)
	s.authors.end(err == nil)
	s.tips.end(err == nil)
	if err != nil {
		// The commit may have happened even so (a disk error on COMMIT):
		// reload the caches before the next Put.
		s.dataVersion = -1
		return s.fail("put", err)
	}
	return nil
}

// sealedRecord is an equivocation record ready for its row.
type sealedRecord struct {
	k   atrest.Blinded
	box []byte
}

// put runs the transaction. Statements run without ctx, which would cost a
// goroutine each in the driver; ctx is polled instead. sealed and records
// are events and evidence sealed, index for index.
func (s *SQLite) put(ctx context.Context, events []*event.Event, sealed []sealedEvent, evidence []event.Equivocation, records []sealedRecord) (err error) {
	bg := context.Background()
	if s.ck.full() {
		// The background checkpoints have not let the WAL start over:
		// finish one here, so that this transaction starts it over.
		s.ck.run(s.w)
	}
	if _, err := s.ws.begin.ExecContext(ctx); err != nil {
		// BEGIN runs with ctx so that waiting for another process's lock
		// can be cancelled. The driver reports a cancellation that comes
		// just after a statement succeeded as an error all the same, so
		// the transaction may have begun: end it, or the next Put could
		// not begin. (If none began, ROLLBACK fails harmlessly.)
		s.ws.rollback.ExecContext(bg)
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			if _, rerr := s.ws.rollback.ExecContext(bg); rerr != nil {
				err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
			}
		}
	}()
	if err := s.syncCaches(bg); err != nil {
		return err
	}

	// Only an event at or below its chain's highest stored seq can be
	// stored already; look those few up by ID. (In a catch-up, none are.)
	type rowKeys struct{ pid, aid int64 }
	keys := make([]rowKeys, len(events))
	var maybe []int
	for i, e := range events {
		pid, err := s.pids.get(e.PursuanceID())
		if err != nil {
			return err
		}
		aid, err := s.authors.get(e.Author)
		if err != nil {
			return err
		}
		keys[i] = rowKeys{pid, aid}
		tip, err := s.tips.get(pid, aid)
		if err != nil {
			return err
		}
		if e.Seq <= tip {
			maybe = append(maybe, i)
		}
	}
	existing, err := s.existingRows(events, sealed, maybe)
	if err != nil {
		return err
	}
	// New events are numbered from s.next. (Multi-row INSERTs, tried to
	// save the driver's per-statement cost, were slower.)
	counts := make(map[int64]int64)
	var added []*event.Event
	next := s.next
	for i, e := range events {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := e.ID()
		if row, ok := existing[id]; ok { // already stored, or earlier in events
			if row.bodyless && e.HasBody() {
				// The blob is sealed again whole, body and all.
				if _, err := s.ws.setBlob.ExecContext(bg, row.n, sealed[i].blob); err != nil {
					return fmt.Errorf("add body to event %s: %w", id.Short(), err)
				}
				existing[id] = storedRow{n: row.n}
			}
			continue
		}
		pid, aid := keys[i].pid, keys[i].aid
		s.tips.raise(pid, aid, e.Seq)
		n := next
		next++
		if _, err := s.ws.insertEvent.ExecContext(bg, n, sealed[i].bid[:], pid, aid, int64(e.Seq), int64(e.Lamport),
			sealed[i].blob); err != nil {
			return fmt.Errorf("insert event %s: %w", id.Short(), err)
		}
		existing[id] = storedRow{n: n, bodyless: !e.HasBody()}
		counts[pid]++
		added = append(added, e)
	}
	// Index the new events' IDs in one statement: they are the rows from
	// s.next on. (One INSERT per event here cost a quarter of Put.)
	if len(added) > 0 {
		if _, err := s.ws.indexIDs.ExecContext(bg, s.next); err != nil {
			return fmt.Errorf("index event IDs: %w", err)
		}
	}
	recent := s.recent + len(added)
	if recent >= s.mergeAt {
		t0 := time.Now()
		if err := s.flushRecent(bg, recent); err != nil {
			return fmt.Errorf("merge ID index: %w", err)
		}
		recent = 0
		s.moveTime += time.Since(t0)
	}

	newHeads, named := headChanges(added)
	for p, pursuance := range named {
		pid, err := s.pids.get(pursuance)
		if err != nil {
			return err
		}
		b := s.se.id(p)
		if _, err := s.ws.deleteHead.ExecContext(bg, pid, b[:]); err != nil {
			return fmt.Errorf("update heads: %w", err)
		}
	}
	for _, e := range newHeads {
		pid, err := s.pids.get(e.PursuanceID())
		if err != nil {
			return err
		}
		id := e.ID()
		b := s.se.id(id)
		if _, err := s.ws.insertHead.ExecContext(bg, pid, b[:], s.se.sealBox(boxHead, b[:], id[:])); err != nil {
			return fmt.Errorf("update heads: %w", err)
		}
	}
	for pid, n := range counts {
		if _, err := s.ws.count.ExecContext(bg, pid, n); err != nil {
			return fmt.Errorf("update count: %w", err)
		}
	}
	for i, q := range evidence {
		pid, err := s.pids.get(q.Pursuance)
		if err != nil {
			return err
		}
		if _, err := s.ws.insertEvidence.ExecContext(bg, pid, records[i].k[:], records[i].box); err != nil {
			return fmt.Errorf("insert evidence: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.ws.commit.ExecContext(bg); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.ck.committed()

	s.recent, s.next = recent, next
	return nil
}

// flushRecent moves the recent tier of the ID index, of size entries,
// into a new run of the main tier, then merges each level that has come to
// hold s.fanout runs into one run of the next level. It runs inside Put's
// transaction. A new run's number is higher than any before, so its
// entries go to the end of the B-tree; the only pages rewritten are those
// of the runs merged.
func (s *SQLite) flushRecent(ctx context.Context, size int) error {
	var run int64
	if err := s.w.QueryRowContext(ctx, `SELECT ifnull(max(run), 0) + 1 FROM runs`).Scan(&run); err != nil {
		return err
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO prefixes (run, p, n) SELECT ?1, p, n FROM prefixes_recent ORDER BY p, n`, []any{run}},
		{`DELETE FROM prefixes_recent`, nil},
		{`INSERT INTO runs (run, level, size) VALUES (?1, 0, ?2)`, []any{run, size}},
	} {
		if _, err := s.w.ExecContext(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	for level := 0; ; level++ {
		var runs int
		if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM runs WHERE level = ?1`, level).Scan(&runs); err != nil {
			return err
		}
		if runs < s.fanout {
			return nil
		}
		run++
		// Runs of a level are adjacent in no particular way, so the
		// merged run is written in key order through a sort.
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO prefixes (run, p, n) SELECT ?2, p, n FROM prefixes
				WHERE run IN (SELECT run FROM runs WHERE level = ?1) ORDER BY p, n`, []any{level, run}},
			{`DELETE FROM prefixes WHERE run IN (SELECT run FROM runs WHERE level = ?1)`, []any{level}},
			{`INSERT INTO runs (run, level, size) SELECT ?2, ?1 + 1, sum(size) FROM runs WHERE level = ?1`, []any{level, run}},
			{`DELETE FROM runs WHERE level = ?1`, []any{level}},
		} {
			if _, err := s.w.ExecContext(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
	}
}

// syncCaches reloads what Put caches about the database if another
// connection has committed since it was loaded. It runs inside Put's
// transaction, which holds the write lock, so nothing changes under it.
func (s *SQLite) syncCaches(ctx context.Context) error {
	var v int64
	if err := s.w.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return fmt.Errorf("data version: %w", err)
	}
	if v == s.dataVersion {
		return nil
	}
	if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM prefixes_recent").Scan(&s.recent); err != nil {
		return fmt.Errorf("reload caches: %w", err)
	}
	if err := s.w.QueryRowContext(ctx, "SELECT ifnull(max(n), 0) + 1 FROM events").Scan(&s.next); err != nil {
		return fmt.Errorf("reload caches: %w", err)
	}
	clear(s.tips.committed)
	s.dataVersion = v
	return nil
}

// IntegrityCheck runs SQLite's integrity check over the whole database
// file, which reads every page: it is for repair tools and tests, not for
// every open. It returns nil if SQLite reports the file sound.
func (s *SQLite) IntegrityCheck(ctx context.Context) error {
	if err := s.begin(ctx, "integrity check"); err != nil {
		return err
	}
	var problems []string
	err := func() error {
		rows, err := s.db.QueryContext(ctx, "PRAGMA integrity_check")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var msg string
			if err := rows.Scan(&msg); err != nil {
				return err
			}
			if msg != "ok" {
				problems = append(problems, msg)
			}
		}
		return rows.Err()
	}()
	if err != nil {
		return s.fail("integrity check", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: integrity check: %s", strings.Join(problems, "; "))
	}
	return nil
}
