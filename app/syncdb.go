package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/atrest"
	"github.com/pursuance/pursuance/internal/sqlitefile"
	"github.com/pursuance/pursuance/keys"
)

// syncDB remembers, per relay, what this home knows of it: its instance
// ID, how far each topic has been read (and the hash of the envelope at
// that cursor, the anchor that tells whether the relay still has the
// history read), which events the relay is known to hold (read from it,
// or sent to it under a topic), and the appends it acknowledged that a
// read has not yet shown; and the name in force of each pursuance, as its
// last state had it, so that lists show a renamed pursuance by its new
// name without folding its log. It lives in the home as sync.db; losing
// it costs a re-read and re-sends, which relays take as duplicates or new
// copies, never as errors, and names fall back to the founding charter's
// until the next state is built. Other processes may use it at the same
// time (SQLite's locking).
//
// Nothing in it is clear but cursors (how many envelopes of a topic were
// read from a relay) and row counts: relay URLs, topics, event IDs,
// envelope hashes and pursuance IDs are blinded (keyed hashes, for lookups
// by equality), and anchors, instance IDs, pushed envelopes' hashes and
// events, and names are sealed, under a key derived from the member's
// identity (docs/keystore.md). Whatever is added to it must be blinded or
// sealed likewise, or listed in docs/keystore.md with the reason it is not.
type syncDB struct {
	db *sql.DB
	c  *atrest.Cipher

	// shrunk, when set, is told of a relay some of whose holdings this
	// syncDB forgot (push marks, pushmark.go).
	shrunk func(relay string)

	refusedOnce sync.Once // the refusals table made (refused.go)
	refusedErr  error
}

// SyncFile is the name of sync.db in a home.
const SyncFile = "sync.db"

// syncSchema is sync.db's schema; syncVersion its user_version, 3 since
// it is encrypted. Versions 0 to 2 were in the clear (0 had cursors
// without anchors, no relays and no pushed tables; its cursors were kept,
// without anchors); a clear file is copied into an encrypted one when
// first opened (migrateSyncDB). Columns hold blinded values unless said.
const (
	syncSchema = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS reads (relay BLOB NOT NULL, topic BLOB NOT NULL, cursor INTEGER NOT NULL, anchor BLOB, PRIMARY KEY (relay, topic)); -- anchor sealed
CREATE TABLE IF NOT EXISTS held (relay BLOB NOT NULL, id BLOB NOT NULL, topic BLOB NOT NULL, PRIMARY KEY (relay, id, topic));
CREATE TABLE IF NOT EXISTS relays (relay BLOB PRIMARY KEY, instance BLOB NOT NULL); -- instance sealed
CREATE TABLE IF NOT EXISTS pushed (relay BLOB NOT NULL, topic BLOB NOT NULL, hash BLOB NOT NULL, cursor INTEGER NOT NULL, id BLOB NOT NULL, PRIMARY KEY (relay, topic, hash)); -- id: hash and event ID sealed
CREATE TABLE IF NOT EXISTS names (pursuance BLOB PRIMARY KEY, name BLOB NOT NULL); -- name sealed
`
	syncVersion = 3
)

// clearSyncVersion is the last version of sync.db in the clear, and
// clearSyncSchema its schema.
const (
	clearSyncVersion = 2
	clearSyncSchema  = `
CREATE TABLE IF NOT EXISTS reads (relay TEXT NOT NULL, topic BLOB NOT NULL, cursor INTEGER NOT NULL, anchor BLOB, PRIMARY KEY (relay, topic));
CREATE TABLE IF NOT EXISTS held (relay TEXT NOT NULL, id BLOB NOT NULL, topic BLOB NOT NULL, PRIMARY KEY (relay, id, topic));
CREATE TABLE IF NOT EXISTS relays (relay TEXT PRIMARY KEY, instance TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pushed (relay TEXT NOT NULL, topic BLOB NOT NULL, hash BLOB NOT NULL, cursor INTEGER NOT NULL, id BLOB NOT NULL, PRIMARY KEY (relay, topic, hash));
CREATE TABLE IF NOT EXISTS names (pursuance BLOB PRIMARY KEY, name TEXT NOT NULL);
`
)

// syncBlindSize is how much of a blinded value sync.db keeps: 16 bytes
// make a chance collision (a relay taken to hold an event it lacks) as
// unlikely as guessing a 128-bit key, at half the size of the table held.
const syncBlindSize = 16

// syncBusy is how long a sync.db connection waits for another's lock.
const syncBusy = 10 * time.Second

// Labels of what sync.db seals, and its blinding domains.
const (
	syncCheckLabel    = "pursuance/v1/sync-db/check"
	syncSealLabel     = "pursuance/v1/sync-db/"
	syncRelay         = "relay"
	syncTopic         = "topic"
	syncID            = "id"
	syncHash          = "hash"
	syncPursuance     = "pursuance"
	syncAnchorTable   = "reads"
	syncInstanceTable = "relays"
	syncPushedTable   = "pushed"
	syncNameTable     = "names"
)

// openSyncDB opens the home's sync.db, encrypted under key, creating it if
// needed and encrypting a clear one first (migrateSyncDB).
func openSyncDB(ctx context.Context, home string, key atrest.Key) (*syncDB, error) {
	path := filepath.Join(home, SyncFile)
	c := atrest.NewCipher(key)
	if err := migrateSyncDB(ctx, path, c); err != nil {
		return nil, fmt.Errorf("sync.db: %w", err)
	}
	s, err := openSyncFile(ctx, path, c)
	if err != nil {
		return nil, fmt.Errorf("sync.db: %w", err)
	}
	return s, nil
}

// openSyncFile opens an encrypted sync.db, creating its schema if it is
// new and checking its key if not.
func openSyncFile(ctx context.Context, path string, c *atrest.Cipher) (_ *syncDB, err error) {
	db, err := sqlitefile.Open(path, syncBusy, "journal_mode(WAL)", "synchronous(NORMAL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	// One process creates the schema; another waits for its write lock,
	// then finds it done.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, err
	}
	// The tables, and any added since the file was made.
	if _, err := conn.ExecContext(ctx, syncSchema); err != nil {
		return nil, err
	}
	switch version {
	case 0:
		check := c.Seal(nil, nil, []byte(syncCheckLabel), []byte(syncCheckLabel))
		if _, err := conn.ExecContext(ctx, "INSERT INTO meta (k, v) VALUES ('check', ?1)", check); err != nil {
			return nil, err
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", syncVersion)); err != nil {
			return nil, err
		}
	case syncVersion:
		var check []byte
		if err := conn.QueryRowContext(ctx, "SELECT v FROM meta WHERE k = 'check'").Scan(&check); err != nil {
			return nil, err
		}
		if _, err := c.Open(nil, check, []byte(syncCheckLabel)); err != nil {
			return nil, errors.New("it is encrypted under another identity's key")
		}
	default:
		return nil, fmt.Errorf("version %d is not this program's %d", version, syncVersion)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return nil, err
	}
	return &syncDB{db: db, c: c}, nil
}

// blind is what sync.db keeps of a value of domain.
func (s *syncDB) blind(domain string, v []byte) []byte {
	b := s.c.Blind(domain, v)
	return b[:syncBlindSize]
}

func (s *syncDB) relay(url string) []byte   { return s.blind(syncRelay, []byte(url)) }
func (s *syncDB) topic(t keys.Topic) []byte { return s.blind(syncTopic, t[:]) }
func (s *syncDB) id(id event.ID) []byte     { return s.blind(syncID, id[:]) }

// sealAAD is the associated data of a value sealed in table, in the row
// keyed by the blinded values key.
func sealAAD(table string, key ...[]byte) []byte {
	b := append([]byte(syncSealLabel+table), 0)
	for _, k := range key {
		b = append(b, k...)
	}
	return b
}

// seal seals v for its row of table.
func (s *syncDB) seal(v []byte, table string, key ...[]byte) []byte {
	return s.c.Seal(nil, nil, v, sealAAD(table, key...))
}

// open opens what seal sealed for the same row.
func (s *syncDB) open(box []byte, table string, key ...[]byte) ([]byte, error) {
	v, err := s.c.Open(nil, box, sealAAD(table, key...))
	if err != nil {
		return nil, fmt.Errorf("sync.db: a row of %s %w", table, err)
	}
	return v, nil
}

// upgradeClearSync brings a clear sync.db to the last clear version, in
// place (it is to be copied and scrubbed): version 0's cursors move to
// reads.
func upgradeClearSync(ctx context.Context, db *sql.DB) (err error) {
	// One process migrates; another waits for its write lock, then finds
	// the version done.
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	var v int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v < clearSyncVersion {
		if _, err := conn.ExecContext(ctx, clearSyncSchema); err != nil {
			return err
		}
		var old int
		if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'cursors'").Scan(&old); err != nil {
			return err
		}
		if old > 0 {
			if _, err := conn.ExecContext(ctx, "INSERT OR IGNORE INTO reads (relay, topic, cursor) SELECT relay, topic, cursor FROM cursors; DROP TABLE cursors"); err != nil {
				return err
			}
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", clearSyncVersion)); err != nil {
			return err
		}
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

func (s *syncDB) Close() error { return s.db.Close() }

// readPos is how far a topic of a relay has been read: the cursor, and
// the SHA-256 of the envelope at it (nil: not known).
type readPos struct {
	cursor uint64
	anchor []byte
}

func (s *syncDB) readPos(ctx context.Context, relay string, t keys.Topic) (readPos, error) {
	var p readPos
	var box []byte
	br, bt := s.relay(relay), s.topic(t)
	err := s.db.QueryRowContext(ctx, "SELECT cursor, anchor FROM reads WHERE relay = ? AND topic = ?", br, bt).Scan(&p.cursor, &box)
	if errors.Is(err, sql.ErrNoRows) {
		return readPos{}, nil
	}
	if err != nil || box == nil {
		return p, err
	}
	p.anchor, err = s.open(box, syncAnchorTable, br, bt)
	return p, err
}

func (s *syncDB) setReadPos(ctx context.Context, relay string, t keys.Topic, p readPos) error {
	br, bt := s.relay(relay), s.topic(t)
	var box []byte
	if p.anchor != nil {
		box = s.seal(p.anchor, syncAnchorTable, br, bt)
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO reads (relay, topic, cursor, anchor) VALUES (?, ?, ?, ?) ON CONFLICT (relay, topic) DO UPDATE SET cursor = excluded.cursor, anchor = excluded.anchor", br, bt, p.cursor, box)
	return err
}

// cursor returns how far a topic of a relay has been read.
func (s *syncDB) cursor(ctx context.Context, relay string, t keys.Topic) (uint64, error) {
	p, err := s.readPos(ctx, relay, t)
	return p.cursor, err
}

// instance returns the relay's instance ID as last seen, or "".
func (s *syncDB) instance(ctx context.Context, relay string) (string, error) {
	var box []byte
	br := s.relay(relay)
	err := s.db.QueryRowContext(ctx, "SELECT instance FROM relays WHERE relay = ?", br).Scan(&box)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	v, err := s.open(box, syncInstanceTable, br)
	return string(v), err
}

// setInstance records a relay's instance ID.
func (s *syncDB) setInstance(ctx context.Context, relay, instance string) error {
	return setInstanceTx(ctx, s.db, s, relay, instance)
}

// execer is a database or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func setInstanceTx(ctx context.Context, ex execer, s *syncDB, relay, instance string) error {
	br := s.relay(relay)
	_, err := ex.ExecContext(ctx, "INSERT INTO relays (relay, instance) VALUES (?, ?) ON CONFLICT (relay) DO UPDATE SET instance = excluded.instance", br, s.seal([]byte(instance), syncInstanceTable, br))
	return err
}

// resetRelay forgets everything known of a relay (what it holds, how far
// it was read, what it acknowledged) and records its instance ID: for a
// relay that lost its data.
func (s *syncDB) resetRelay(ctx context.Context, relay, instance string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{"DELETE FROM reads WHERE relay = ?", "DELETE FROM held WHERE relay = ?", "DELETE FROM pushed WHERE relay = ?"} {
		if _, err := tx.ExecContext(ctx, q, s.relay(relay)); err != nil {
			return err
		}
	}
	if err := setInstanceTx(ctx, tx, s, relay, instance); err != nil {
		return err
	}
	s.forgot(relay)
	return tx.Commit()
}

// forgot tells shrunk that relay's holdings are being forgotten (before
// the commit: a push that plans meanwhile reads them all).
func (s *syncDB) forgot(relay string) {
	if s.shrunk != nil {
		s.shrunk(relay)
	}
}

// resetTopic forgets what is known of one topic of a relay: for a relay
// whose history of it is not the one read.
func (s *syncDB) resetTopic(ctx context.Context, relay string, t keys.Topic) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{"DELETE FROM reads WHERE relay = ? AND topic = ?", "DELETE FROM held WHERE relay = ? AND topic = ?", "DELETE FROM pushed WHERE relay = ? AND topic = ?"} {
		if _, err := tx.ExecContext(ctx, q, s.relay(relay), s.topic(t)); err != nil {
			return err
		}
	}
	s.forgot(relay)
	return tx.Commit()
}

// heldSet is a set of events as sync.db keeps them: blinded.
type heldSet struct {
	s   *syncDB
	ids map[[syncBlindSize]byte]bool
}

func (s *syncDB) newHeldSet() heldSet {
	return heldSet{s: s, ids: map[[syncBlindSize]byte]bool{}}
}

// has reports whether id is in the set.
func (h heldSet) has(id event.ID) bool {
	return h.ids[[syncBlindSize]byte(h.s.id(id))]
}

// len is the number of events in the set.
func (h heldSet) len() int { return len(h.ids) }

// heldBy returns the events the relay is known to hold, and those it holds
// under topic t.
func (s *syncDB) heldBy(ctx context.Context, relay string, t keys.Topic) (any, onTopic heldSet, err error) {
	heldReads.Add(1)
	return s.readHeld(ctx, relay, t)
}

// readHeld is heldBy, uncounted.
func (s *syncDB) readHeld(ctx context.Context, relay string, t keys.Topic) (any, onTopic heldSet, err error) {
	any, onTopic = s.newHeldSet(), s.newHeldSet()
	bt := string(s.topic(t))
	rows, err := s.db.QueryContext(ctx, "SELECT id, topic FROM held WHERE relay = ?", s.relay(relay))
	if err != nil {
		return any, onTopic, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, topic []byte
		if err := rows.Scan(&id, &topic); err != nil {
			return any, onTopic, err
		}
		if len(id) != syncBlindSize {
			continue // not a row this version wrote
		}
		k := [syncBlindSize]byte(id)
		any.ids[k] = true
		if string(topic) == bt {
			onTopic.ids[k] = true
		}
	}
	return any, onTopic, rows.Err()
}

// heldByAny returns the events any of the relays is known to hold.
func (s *syncDB) heldByAny(ctx context.Context, relays []string) (heldSet, error) {
	heldScans.Add(1)
	out := s.newHeldSet()
	for _, r := range relays {
		held, _, err := s.heldBy(ctx, r, keys.Topic{})
		if err != nil {
			return out, err
		}
		for id := range held.ids {
			out.ids[id] = true
		}
	}
	return out, nil
}

// heldScans counts heldByAny's reads of what other relays hold, and
// heldReads every read of all a relay holds (tests).
var heldScans, heldReads atomic.Int64

func (s *syncDB) markHeld(ctx context.Context, relay string, t keys.Topic, ids []event.ID) error {
	if len(ids) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.markHeldTx(ctx, tx, relay, t, ids); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *syncDB) markHeldTx(ctx context.Context, tx *sql.Tx, relay string, t keys.Topic, ids []event.ID) error {
	st, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO held (relay, id, topic) VALUES (?, ?, ?)")
	if err != nil {
		return err
	}
	defer st.Close()
	br, bt := s.relay(relay), s.topic(t)
	for _, id := range ids {
		if _, err := st.ExecContext(ctx, br, s.id(id), bt); err != nil {
			return err
		}
	}
	return nil
}

// pushedEnv is an envelope a relay acknowledged and a read has not yet
// shown: its hash, the cursor the relay answered (0: none), and the event
// it carries.
type pushedEnv struct {
	hash   [32]byte
	cursor uint64
	id     event.ID
}

// addPushed records envelopes a relay acknowledged on topic t: the events
// count as held by it, until a read shows otherwise. A row keeps the
// envelope's hash blinded (its key) and, sealed, the hash and the event ID
// again.
func (s *syncDB) addPushed(ctx context.Context, relay string, t keys.Topic, envs []pushedEnv) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ids := make([]event.ID, len(envs))
	st, err := tx.PrepareContext(ctx, "INSERT OR REPLACE INTO pushed (relay, topic, hash, cursor, id) VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	defer st.Close()
	br, bt := s.relay(relay), s.topic(t)
	for i, e := range envs {
		bh := s.blind(syncHash, e.hash[:])
		box := s.seal(append(e.hash[:], e.id[:]...), syncPushedTable, br, bt, bh)
		if _, err := st.ExecContext(ctx, br, bt, bh, e.cursor, box); err != nil {
			return err
		}
		ids[i] = e.id
	}
	if err := s.markHeldTx(ctx, tx, relay, t, ids); err != nil {
		return err
	}
	return tx.Commit()
}

// pushedOn returns the envelopes pushed to topic t of the relay that no
// read has shown yet.
func (s *syncDB) pushedOn(ctx context.Context, relay string, t keys.Topic) ([]pushedEnv, error) {
	br, bt := s.relay(relay), s.topic(t)
	rows, err := s.db.QueryContext(ctx, "SELECT hash, cursor, id FROM pushed WHERE relay = ? AND topic = ? ORDER BY cursor", br, bt)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pushedEnv
	for rows.Next() {
		var bh, box []byte
		var e pushedEnv
		if err := rows.Scan(&bh, &e.cursor, &box); err != nil {
			return nil, err
		}
		v, err := s.open(box, syncPushedTable, br, bt, bh)
		if err != nil {
			return nil, err
		}
		if len(v) != len(e.hash)+len(e.id) {
			return nil, errors.New("sync.db: a pushed row is malformed")
		}
		copy(e.hash[:], v)
		copy(e.id[:], v[len(e.hash):])
		out = append(out, e)
	}
	return out, rows.Err()
}

// settlePushed closes the checks of pushed envelopes: those shown are
// forgotten; those lost are too, and their events no longer count as held
// by the relay under t, so that the next push sends them again.
func (s *syncDB) settlePushed(ctx context.Context, relay string, t keys.Topic, shown, lost []pushedEnv) error {
	if len(shown)+len(lost) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	br, bt := s.relay(relay), s.topic(t)
	for _, e := range append(shown, lost...) {
		if _, err := tx.ExecContext(ctx, "DELETE FROM pushed WHERE relay = ? AND topic = ? AND hash = ?", br, bt, s.blind(syncHash, e.hash[:])); err != nil {
			return err
		}
	}
	for _, e := range lost {
		if _, err := tx.ExecContext(ctx, "DELETE FROM held WHERE relay = ? AND id = ? AND topic = ?", br, s.id(e.id), bt); err != nil {
			return err
		}
	}
	if len(lost) > 0 {
		s.forgot(relay)
	}
	return tx.Commit()
}

// name returns the name in force of pursuance p as last recorded, or "".
func (s *syncDB) name(ctx context.Context, p event.ID) (string, error) {
	var box []byte
	bp := s.blind(syncPursuance, p[:])
	err := s.db.QueryRowContext(ctx, `SELECT name FROM names WHERE pursuance = ?1`, bp).Scan(&box)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	name, err := s.open(box, syncNameTable, bp)
	return string(name), err
}

// setName records the name in force of pursuance p.
func (s *syncDB) setName(ctx context.Context, p event.ID, name string) error {
	if cur, err := s.name(ctx, p); err == nil && cur == name {
		return nil // the common case: no write
	}
	bp := s.blind(syncPursuance, p[:])
	_, err := s.db.ExecContext(ctx, `INSERT INTO names (pursuance, name) VALUES (?1, ?2)
		ON CONFLICT (pursuance) DO UPDATE SET name = excluded.name`, bp, s.seal([]byte(name), syncNameTable, bp))
	return err
}

// copyFrom adds every row of another sync.db (a staging one: Join) to
// this one, table by table, keeping this one's row where both have one.
// Both are encrypted under the home's key, so rows copy as they are.
func (s *syncDB) copyFrom(ctx context.Context, from *syncDB) error {
	rows, err := from.db.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		if err := copyTable(ctx, from.db, s.db, t); err != nil {
			return fmt.Errorf("sync.db: copy %s: %w", t, err)
		}
	}
	return nil
}

// copyTable inserts every row of table t of from into to (same schema),
// ignoring rows whose key to already holds.
func copyTable(ctx context.Context, from, to *sql.DB, t string) error {
	rows, err := from.QueryContext(ctx, "SELECT * FROM "+quoteIdent(t))
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	q := "INSERT OR IGNORE INTO " + quoteIdent(t) + " VALUES (?" + strings.Repeat(", ?", len(cols)-1) + ")"
	tx, err := to.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q, vals...); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return tx.Commit()
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// migrateSyncDB encrypts a clear sync.db (versions 0 to 2), as the event
// store's migration does: it copies every row, blinded or sealed, into a
// new file, which then takes the clear one's place, and the clear one is
// scrubbed (sqlitefile.Replace). A crash leaves the clear file or the new
// one; Recover sorts out which.
func migrateSyncDB(ctx context.Context, path string, c *atrest.Cipher) error {
	next := path + ".new"
	if err := sqlitefile.Recover(path, next); err != nil {
		return err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	old, err := sqlitefile.Open(path, syncBusy)
	if err != nil {
		return err
	}
	defer old.Close()
	old.SetMaxOpenConns(1)
	var version, tables int
	if err := old.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if err := old.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'").Scan(&tables); err != nil {
		return err
	}
	if version > clearSyncVersion || tables == 0 {
		return nil // encrypted already, or new
	}
	if err := upgradeClearSync(ctx, old); err != nil {
		return err
	}
	nw, err := openSyncFile(ctx, next, c)
	if err != nil {
		return err
	}
	if err := copyClearSync(ctx, old, nw); err != nil {
		nw.Close()
		return fmt.Errorf("encrypt: %w", err)
	}
	if _, err := nw.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		nw.Close()
		return err
	}
	if err := nw.Close(); err != nil {
		return err
	}
	var busy, log, done int
	if err := old.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &done); err != nil {
		return err
	}
	if busy != 0 {
		return errors.New("another process has it open; close it and try again")
	}
	var mode string
	if err := old.QueryRowContext(ctx, "PRAGMA journal_mode = DELETE").Scan(&mode); err != nil {
		return err
	}
	if err := old.Close(); err != nil {
		return err
	}
	return sqlitefile.Replace(path, next, nil)
}

// copyClearSync copies a clear sync.db's rows (of the last clear version)
// into an encrypted one, through the encrypted one's own methods.
func copyClearSync(ctx context.Context, old *sql.DB, nw *syncDB) error {
	type read struct {
		relay string
		topic keys.Topic
		pos   readPos
	}
	var reads []read
	err := eachRow(ctx, old, "SELECT relay, topic, cursor, anchor FROM reads", func(rows *sql.Rows) error {
		var r read
		var topic []byte
		if err := rows.Scan(&r.relay, &topic, &r.pos.cursor, &r.pos.anchor); err != nil {
			return err
		}
		if len(topic) == len(r.topic) {
			r.topic = keys.Topic(topic)
			reads = append(reads, r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range reads {
		if err := nw.setReadPos(ctx, r.relay, r.topic, r.pos); err != nil {
			return err
		}
	}
	type held struct {
		relay string
		topic keys.Topic
		ids   []event.ID
	}
	var helds []*held
	err = eachRow(ctx, old, "SELECT relay, topic, id FROM held ORDER BY relay, topic", func(rows *sql.Rows) error {
		var r string
		var t, id []byte
		if err := rows.Scan(&r, &t, &id); err != nil {
			return err
		}
		if len(t) != len(keys.Topic{}) || len(id) != event.IDSize {
			return nil
		}
		if n := len(helds); n == 0 || helds[n-1].relay != r || helds[n-1].topic != keys.Topic(t) {
			helds = append(helds, &held{relay: r, topic: keys.Topic(t)})
		}
		h := helds[len(helds)-1]
		h.ids = append(h.ids, event.ID(id))
		return nil
	})
	if err != nil {
		return err
	}
	for _, h := range helds {
		if err := nw.markHeld(ctx, h.relay, h.topic, h.ids); err != nil {
			return err
		}
	}
	type relay struct{ url, instance string }
	var relays []relay
	err = eachRow(ctx, old, "SELECT relay, instance FROM relays", func(rows *sql.Rows) error {
		var r relay
		if err := rows.Scan(&r.url, &r.instance); err != nil {
			return err
		}
		relays = append(relays, r)
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range relays {
		if err := nw.setInstance(ctx, r.url, r.instance); err != nil {
			return err
		}
	}
	type pushed struct {
		relay string
		topic keys.Topic
		env   pushedEnv
	}
	var pusheds []pushed
	err = eachRow(ctx, old, "SELECT relay, topic, hash, cursor, id FROM pushed", func(rows *sql.Rows) error {
		var p pushed
		var t, h, id []byte
		if err := rows.Scan(&p.relay, &t, &h, &p.env.cursor, &id); err != nil {
			return err
		}
		if len(t) != len(p.topic) || len(h) != len(p.env.hash) || len(id) != len(p.env.id) {
			return nil
		}
		p.topic, p.env.hash, p.env.id = keys.Topic(t), [32]byte(h), event.ID(id)
		pusheds = append(pusheds, p)
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range pusheds {
		if err := nw.addPushed(ctx, p.relay, p.topic, []pushedEnv{p.env}); err != nil {
			return err
		}
	}
	type name struct {
		p    event.ID
		name string
	}
	var names []name
	err = eachRow(ctx, old, "SELECT pursuance, name FROM names", func(rows *sql.Rows) error {
		var p []byte
		var n name
		if err := rows.Scan(&p, &n.name); err != nil {
			return err
		}
		if len(p) == event.IDSize {
			n.p = event.ID(p)
			names = append(names, n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := nw.setName(ctx, n.p, n.name); err != nil {
			return err
		}
	}
	return nil
}

// eachRow runs query on db and calls fn for each row.
func eachRow(ctx context.Context, db *sql.DB, query string, fn func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
