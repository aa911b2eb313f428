package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/atrest"
	"github.com/pursuance/pursuance/internal/sqlitefile"
	"github.com/pursuance/pursuance/keys"
)

// syncDB remembers, per relay, how far each topic has been read and which
// events the relay is known to hold (read from it, or sent to it under a
// topic), so that sync sends only what is new; and the name in force of
// each pursuance, as its last state had it, so that lists show a renamed
// pursuance by its new name without folding its log. It lives in the home
// as sync.db; losing it costs a re-read and re-sends, which relays take as
// duplicates or new copies, never as errors, and names fall back to the
// founding charter's until the next state is built.
//
// Nothing in it is clear but cursors (how many envelopes of a topic were
// read from a relay): relay URLs, topics, event IDs and pursuance IDs are
// blinded (keyed hashes, for lookups by equality), and names are sealed,
// under a key derived from the member's identity (docs/keystore.md).
// Whatever is added to it must be blinded or sealed likewise, or listed in
// docs/keystore.md with the reason it is not.
type syncDB struct {
	db *sql.DB
	c  *atrest.Cipher
}

// SyncFile is the name of sync.db in a home.
const SyncFile = "sync.db"

// syncVersion is the user_version of an encrypted sync.db; the clear one
// that came before it has 0.
const syncVersion = 1

// syncBlindSize is how much of a blinded value sync.db keeps: 16 bytes
// make a chance collision (a relay taken to hold an event it lacks) as
// unlikely as guessing a 128-bit key, at half the size of the table held.
const syncBlindSize = 16

// syncBusy is how long a sync.db connection waits for another's lock.
const syncBusy = 10 * time.Second

const syncSchema = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (relay BLOB NOT NULL, topic BLOB NOT NULL, cursor INTEGER NOT NULL, PRIMARY KEY (relay, topic));
CREATE TABLE IF NOT EXISTS held (relay BLOB NOT NULL, id BLOB NOT NULL, topic BLOB NOT NULL, PRIMARY KEY (relay, id, topic));
CREATE TABLE IF NOT EXISTS names (pursuance BLOB PRIMARY KEY, name BLOB NOT NULL);
`

// Labels of what sync.db seals.
const (
	syncCheckLabel = "pursuance/v1/sync-db/check"
	syncNameLabel  = "pursuance/v1/sync-db/name"
)

// Blinding domains of sync.db.
const (
	syncRelay     = "relay"
	syncTopic     = "topic"
	syncID        = "id"
	syncPursuance = "pursuance"
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
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, err
	}
	// The tables, and any added since the file was made.
	if _, err := tx.ExecContext(ctx, syncSchema); err != nil {
		return nil, err
	}
	switch version {
	case 0:
		check := c.Seal(nil, nil, []byte(syncCheckLabel), []byte(syncCheckLabel))
		if _, err := tx.ExecContext(ctx, "INSERT INTO meta (k, v) VALUES ('check', ?1)", check); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", syncVersion)); err != nil {
			return nil, err
		}
	case syncVersion:
		var check []byte
		if err := tx.QueryRowContext(ctx, "SELECT v FROM meta WHERE k = 'check'").Scan(&check); err != nil {
			return nil, err
		}
		if _, err := c.Open(nil, check, []byte(syncCheckLabel)); err != nil {
			return nil, errors.New("it is encrypted under another identity's key")
		}
	default:
		return nil, fmt.Errorf("version %d is newer than this program's %d", version, syncVersion)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return &syncDB{db: db, c: c}, nil
}

func (s *syncDB) Close() error { return s.db.Close() }

// blind is what sync.db keeps of a value of domain.
func (s *syncDB) blind(domain string, v []byte) []byte {
	b := s.c.Blind(domain, v)
	return b[:syncBlindSize]
}

func (s *syncDB) relay(url string) []byte   { return s.blind(syncRelay, []byte(url)) }
func (s *syncDB) topic(t keys.Topic) []byte { return s.blind(syncTopic, t[:]) }
func (s *syncDB) id(id event.ID) []byte     { return s.blind(syncID, id[:]) }

func (s *syncDB) cursor(ctx context.Context, relay string, t keys.Topic) (uint64, error) {
	var c uint64
	err := s.db.QueryRowContext(ctx, "SELECT cursor FROM cursors WHERE relay = ? AND topic = ?", s.relay(relay), s.topic(t)).Scan(&c)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return c, err
}

func (s *syncDB) setCursor(ctx context.Context, relay string, t keys.Topic, c uint64) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO cursors (relay, topic, cursor) VALUES (?, ?, ?) ON CONFLICT (relay, topic) DO UPDATE SET cursor = excluded.cursor", s.relay(relay), s.topic(t), c)
	return err
}

// heldSet is a set of events, as sync.db keeps them: blinded.
type heldSet struct {
	s   *syncDB
	ids map[[syncBlindSize]byte]bool
}

// has reports whether id is in the set.
func (h heldSet) has(id event.ID) bool {
	return h.ids[[syncBlindSize]byte(h.s.id(id))]
}

// heldBy returns the events the relay is known to hold, and those it holds
// under topic t.
func (s *syncDB) heldBy(ctx context.Context, relay string, t keys.Topic) (any, onTopic heldSet, err error) {
	any = heldSet{s: s, ids: map[[syncBlindSize]byte]bool{}}
	onTopic = heldSet{s: s, ids: map[[syncBlindSize]byte]bool{}}
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

func (s *syncDB) markHeld(ctx context.Context, relay string, t keys.Topic, ids []event.ID) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO held (relay, id, topic) VALUES (?, ?, ?)")
	if err != nil {
		return err
	}
	br, bt := s.relay(relay), s.topic(t)
	for _, id := range ids {
		if _, err := st.ExecContext(ctx, br, s.id(id), bt); err != nil {
			return err
		}
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
	name, err := s.c.Open(nil, box, append([]byte(syncNameLabel), bp...))
	if err != nil {
		return "", err
	}
	return string(name), nil
}

// setName records the name in force of pursuance p.
func (s *syncDB) setName(ctx context.Context, p event.ID, name string) error {
	if cur, err := s.name(ctx, p); err == nil && cur == name {
		return nil // the common case: no write
	}
	bp := s.blind(syncPursuance, p[:])
	box := s.c.Seal(nil, nil, []byte(name), append([]byte(syncNameLabel), bp...))
	_, err := s.db.ExecContext(ctx, `INSERT INTO names (pursuance, name) VALUES (?1, ?2)
		ON CONFLICT (pursuance) DO UPDATE SET name = excluded.name`, bp, box)
	return err
}

// migrateSyncDB encrypts a clear sync.db (user_version 0, with its
// tables), as the event store's migration does: it copies every row,
// blinded or sealed, into a new file, which then takes the clear one's
// place, and the clear one is scrubbed (sqlitefile.Replace). A crash
// leaves the clear file or the new one; Recover sorts out which.
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
	if err := old.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = 'cursors'").Scan(&tables); err != nil {
		return err
	}
	if version != 0 || tables == 0 {
		return nil // encrypted already, or empty
	}
	for _, t := range []string{"held", "names"} {
		// Homes of some earlier versions lack a table; give them an empty one.
		if _, err := old.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+t+" (relay, topic, id, pursuance, name)"); err != nil {
			return err
		}
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

// copyClearSync copies a clear sync.db's rows into an encrypted one.
func copyClearSync(ctx context.Context, old *sql.DB, nw *syncDB) error {
	rows, err := old.QueryContext(ctx, "SELECT relay, topic, cursor FROM cursors")
	if err != nil {
		return err
	}
	type cursor struct {
		relay string
		topic keys.Topic
		c     uint64
	}
	var cursors []cursor
	for rows.Next() {
		var r cursor
		var topic []byte
		if err := rows.Scan(&r.relay, &topic, &r.c); err != nil {
			rows.Close()
			return err
		}
		if len(topic) == len(r.topic) {
			copy(r.topic[:], topic)
			cursors = append(cursors, r)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, r := range cursors {
		if err := nw.setCursor(ctx, r.relay, r.topic, r.c); err != nil {
			return err
		}
	}
	rows, err = old.QueryContext(ctx, "SELECT relay, topic, id FROM held ORDER BY relay, topic")
	if err != nil {
		return err
	}
	var relay string
	var topic keys.Topic
	var ids []event.ID
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		err := nw.markHeld(ctx, relay, topic, ids)
		ids = ids[:0]
		return err
	}
	for rows.Next() {
		var r string
		var t, id []byte
		if err := rows.Scan(&r, &t, &id); err != nil {
			rows.Close()
			return err
		}
		if len(t) != len(topic) || len(id) != event.IDSize {
			continue
		}
		if r != relay || string(t) != string(topic[:]) {
			if err := flush(); err != nil {
				rows.Close()
				return err
			}
			relay, topic = r, keys.Topic(t)
		}
		ids = append(ids, event.ID(id))
	}
	if err := errors.Join(rows.Err(), rows.Close(), flush()); err != nil {
		return err
	}
	rows, err = old.QueryContext(ctx, "SELECT pursuance, name FROM names")
	if err != nil {
		return err
	}
	type name struct {
		p    event.ID
		name string
	}
	var names []name
	for rows.Next() {
		var p []byte
		var n name
		if err := rows.Scan(&p, &n.name); err != nil {
			rows.Close()
			return err
		}
		if len(p) == event.IDSize {
			n.p = event.ID(p)
			names = append(names, n)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, n := range names {
		if err := nw.setName(ctx, n.p, n.name); err != nil {
			return err
		}
	}
	return nil
}
