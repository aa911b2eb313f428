package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pursuance/pursuance/internal/atrest"
)

// applicationID marks a SQLite file as a Pursuance store ("Prsu"), so that
// opening some other program's database fails plainly instead of changing
// it.
const applicationID = 0x50727375

// legacyMigrations brought the clear schema from version i to i+1 (the
// schema version is PRAGMA user_version). Stores of these versions held
// event IDs, pursuance IDs, author keys and events in the clear; version 4
// (schemaV4) encrypts them, and a store of version 1 to 3 is copied into a
// new version 4 file when it is first opened with a key (migrateLegacy).
// They are kept as the record of what such stores hold, and so that tests
// can write one.
//
// Version 1:
//
//   - pursuances: one row per pursuance seen, with a small integer pid used
//     everywhere else instead of the 32-byte ID, and n, the number of its
//     events (kept by Put, so Count does not scan).
//   - authors: one row per author key, with a small integer aid, which
//     keeps the rows and index entries of events small.
//   - ids_recent and ids: the index from event ID to the event's row n, in
//     two tiers. Event IDs are random, so one B-tree of them, once much
//     larger than a batch, has most of its pages dirtied (and written to
//     the WAL) by every batch: a 1M-event catch-up ran at 60% of the speed
//     of a 100k one. Put adds IDs to the small ids_recent, which stays in
//     the page cache; when it holds mergeThreshold IDs, Put moves them to
//     ids in one pass in key order, which writes each page of ids once.
//     Lookups read both (an ID is in exactly one).
//   - events: one row per event. id is the event ID; header and sig are the
//     exact signed bytes, from which the event is rebuilt; body is NULL when
//     this copy has none. aid, seq and lamport are copied out of the header
//     for the indexes: (pid, aid, seq) serves BySeq and VersionVector;
//     (pid, lamport) serves Iterate, which sorts each run of equal lamport
//     clocks by ID as it goes (they are few), so the index need not carry
//     the 32-byte ID.
//   - heads: the events of each pursuance that no stored event names as a
//     parent.
//   - evidence: equivocation records.
//
// Version 2 replaces ids_recent and ids with prefixes_recent and prefixes,
// the same two tiers holding only each ID's first 8 bytes, p, with the row
// n. An entry is 2.5 times smaller, so merges write a smaller main tier and
// the recent tier has fewer pages for each batch to dirty: in ingest of a
// million events, indexing, merges and commits took about a fifth less
// time. IDs can share a prefix (an author could grind for one), so the key
// is (p, n) and every lookup checks the full ID in events.
//
// Version 3 turns the main tier into sorted runs: prefixes gains a run
// column, (run, p, n) is its key, and runs lists each run's level and size.
// Merging the recent tier into one main B-tree rewrote nearly every page of
// it each time, so the cost of a merge grew with the log and ingest of a
// million events ran at 93% of the speed of 100,000. Now the recent tier
// becomes a new run, whose run number is the highest yet: its entries are
// appended at the end of the B-tree and no other page changes. When a level
// holds runsPerLevel runs, Put merges them into one run of the next level,
// so each entry is rewritten once per level (a level holds runs about
// runsPerLevel times larger than the one below). Lookups search every run.
// The migration makes the old main tier run 1, at level 0.
var legacyMigrations = []string{
	`CREATE TABLE pursuances (
		pid INTEGER PRIMARY KEY,
		id  BLOB NOT NULL UNIQUE,
		n   INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE authors (
		aid INTEGER PRIMARY KEY,
		key BLOB NOT NULL UNIQUE
	);
	CREATE TABLE events (
		n       INTEGER PRIMARY KEY,
		id      BLOB NOT NULL,
		pid     INTEGER NOT NULL,
		aid     INTEGER NOT NULL,
		seq     INTEGER NOT NULL,
		lamport INTEGER NOT NULL,
		header  BLOB NOT NULL,
		sig     BLOB NOT NULL,
		body    BLOB
	);
	CREATE TABLE ids_recent (
		id BLOB PRIMARY KEY,
		n  INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE ids (
		id BLOB PRIMARY KEY,
		n  INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE INDEX events_by_seq ON events (pid, aid, seq);
	CREATE INDEX events_causal ON events (pid, lamport);
	CREATE TABLE heads (
		pid INTEGER NOT NULL,
		id  BLOB NOT NULL,
		PRIMARY KEY (pid, id)
	) WITHOUT ROWID;
	CREATE TABLE evidence (
		pid    INTEGER NOT NULL,
		author BLOB NOT NULL,
		seq    INTEGER NOT NULL,
		a      BLOB NOT NULL,
		b      BLOB NOT NULL,
		PRIMARY KEY (pid, author, seq, a, b)
	) WITHOUT ROWID;`,
	`CREATE TABLE prefixes_recent (
		p BLOB NOT NULL,
		n INTEGER NOT NULL,
		PRIMARY KEY (p, n)
	) WITHOUT ROWID;
	CREATE TABLE prefixes (
		p BLOB NOT NULL,
		n INTEGER NOT NULL,
		PRIMARY KEY (p, n)
	) WITHOUT ROWID;
	INSERT INTO prefixes (p, n) SELECT substr(id, 1, 8), n FROM ids ORDER BY 1, 2;
	INSERT INTO prefixes_recent (p, n) SELECT substr(id, 1, 8), n FROM ids_recent;
	DROP TABLE ids;
	DROP TABLE ids_recent;`,
	`CREATE TABLE runs (
		run   INTEGER PRIMARY KEY,
		level INTEGER NOT NULL,
		size  INTEGER NOT NULL
	);
	CREATE TABLE prefix_runs (
		run INTEGER NOT NULL,
		p   BLOB NOT NULL,
		n   INTEGER NOT NULL,
		PRIMARY KEY (run, p, n)
	) WITHOUT ROWID;
	INSERT INTO runs (run, level, size) SELECT 1, 0, count(*) FROM prefixes HAVING count(*) > 0;
	INSERT INTO prefix_runs (run, p, n) SELECT 1, p, n FROM prefixes ORDER BY p, n;
	DROP TABLE prefixes;
	ALTER TABLE prefix_runs RENAME TO prefixes;`,
}

// legacyVersion is the last schema version that kept the store in the
// clear.
const legacyVersion = 3

// schemaVersion is the schema version this package writes: version 4,
// encrypted at rest.
const schemaVersion = 4

// schemaV4 is the encrypted schema (docs/store.md, "Encryption at rest").
// What a column held in the clear before it now holds in one of two forms:
//
//   - blinded (bid, bkey, k): a keyed hash (atrest.Cipher.Blind) of the
//     value, 32 bytes, for lookups by equality. Event IDs and pursuance IDs
//     blind in one domain ("id"), so a pursuance's row and its genesis
//     event's row carry the same bid; author keys in another ("author").
//   - sealed (blob, box): XChaCha20-Poly1305 under the store's key, with a
//     random nonce, bound to its row by associated data (see sealEvent and
//     sealBox), so that no sealed value opens in another row.
//
// The ID index is unchanged but for what it indexes: the first 8 bytes of
// each event's bid instead of its ID. Integers stay clear: row numbers, the
// pursuance and author row each event belongs to, seq, lamport, counts and
// the index's bookkeeping; docs/keystore.md lists them with the reason.
//
//   - meta: 'check', a value sealed under the store's key, which tells a
//     wrong key (another identity's home) from a damaged file at open.
//   - pursuances: pid, bid, box (the pursuance ID sealed), n (its count).
//   - authors: aid, bkey, box (the author key sealed).
//   - events: n, bid, pid, aid, seq, lamport, blob: the event's wire form
//     (header, signature and body or none), padded and sealed.
//   - heads: (pid, bid) and box, the head's ID sealed.
//   - evidence: (pid, k) and box, the record sealed; k is the record
//     blinded, which makes a second copy a no-op.
const schemaV4 = `CREATE TABLE meta (
		k TEXT PRIMARY KEY,
		v BLOB NOT NULL
	);
	CREATE TABLE pursuances (
		pid INTEGER PRIMARY KEY,
		bid BLOB NOT NULL UNIQUE,
		box BLOB NOT NULL,
		n   INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE authors (
		aid  INTEGER PRIMARY KEY,
		bkey BLOB NOT NULL UNIQUE,
		box  BLOB NOT NULL
	);
	CREATE TABLE events (
		n       INTEGER PRIMARY KEY,
		bid     BLOB NOT NULL,
		pid     INTEGER NOT NULL,
		aid     INTEGER NOT NULL,
		seq     INTEGER NOT NULL,
		lamport INTEGER NOT NULL,
		blob    BLOB NOT NULL
	);
	CREATE INDEX events_by_seq ON events (pid, aid, seq);
	CREATE INDEX events_causal ON events (pid, lamport);
	CREATE TABLE prefixes_recent (
		p BLOB NOT NULL,
		n INTEGER NOT NULL,
		PRIMARY KEY (p, n)
	) WITHOUT ROWID;
	CREATE TABLE prefixes (
		run INTEGER NOT NULL,
		p   BLOB NOT NULL,
		n   INTEGER NOT NULL,
		PRIMARY KEY (run, p, n)
	) WITHOUT ROWID;
	CREATE TABLE runs (
		run   INTEGER PRIMARY KEY,
		level INTEGER NOT NULL,
		size  INTEGER NOT NULL
	);
	CREATE TABLE heads (
		pid INTEGER NOT NULL,
		bid BLOB NOT NULL,
		box BLOB NOT NULL,
		PRIMARY KEY (pid, bid)
	) WITHOUT ROWID;
	CREATE TABLE evidence (
		pid INTEGER NOT NULL,
		k   BLOB NOT NULL,
		box BLOB NOT NULL,
		PRIMARY KEY (pid, k)
	) WITHOUT ROWID;`

// ErrWrongKey is returned (wrapped) when a store is opened with a key
// other than the one it was written with: it is another identity's.
var ErrWrongKey = errors.New("the store is encrypted under another key: it belongs to another identity's home")

// errLegacy is returned by prepareSchema for a store of a clear schema,
// which OpenSQLite then copies into an encrypted one.
var errLegacy = errors.New("a store in the clear, to be encrypted first")

// readVersion reads the file's application ID and schema version, and
// refuses a file of another application or of a newer schema.
func readVersion(ctx context.Context, c *sql.Conn) (int, error) {
	var app, version int
	if err := c.QueryRowContext(ctx, "PRAGMA application_id").Scan(&app); err != nil {
		return 0, fmt.Errorf("read application id: %w", err)
	}
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case app != 0 && app != applicationID:
		return 0, fmt.Errorf("not a pursuance store (application id %#x)", app)
	case version > schemaVersion:
		return 0, fmt.Errorf("schema version %d is newer than this program's %d", version, schemaVersion)
	}
	return version, nil
}

// prepareSchema makes the database on c a store of the current schema
// under the key ci stands for, in one transaction: it creates the schema in
// a new file and checks the key of an existing one. For a store in a clear
// schema it returns errLegacy, changing nothing.
func prepareSchema(ctx context.Context, c *sql.Conn, ci *atrest.Cipher) (err error) {
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			c.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	version, err := readVersion(ctx, c)
	if err != nil {
		return err
	}
	switch version {
	case schemaVersion:
		var check []byte
		if err := c.QueryRowContext(ctx, "SELECT v FROM meta WHERE k = 'check'").Scan(&check); err != nil {
			return fmt.Errorf("read key check: %w", err)
		}
		if _, err := ci.Open(nil, check, []byte(checkLabel)); err != nil {
			return ErrWrongKey
		}
		_, err := c.ExecContext(ctx, "COMMIT")
		return err
	case 0:
	default:
		return errLegacy
	}
	if _, err := c.ExecContext(ctx, schemaV4); err != nil {
		return fmt.Errorf("create schema version %d: %w", schemaVersion, err)
	}
	check := ci.Seal(nil, nil, []byte(checkLabel), []byte(checkLabel))
	if _, err := c.ExecContext(ctx, "INSERT INTO meta (k, v) VALUES ('check', ?1)", check); err != nil {
		return fmt.Errorf("record key check: %w", err)
	}
	// PRAGMA arguments cannot be bound parameters.
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, schemaVersion)); err != nil {
		return fmt.Errorf("record schema version: %w", err)
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
