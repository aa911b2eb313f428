package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/pursuance/pursuance/event"
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
type syncDB struct {
	db *sql.DB
}

// syncSchema is sync.db's schema; syncVersion its user_version. Version 1
// had cursors without anchors, no relays and no pushed tables; its
// cursors are kept (without anchors, checked from the next read on).
const (
	syncSchema = `
CREATE TABLE IF NOT EXISTS reads (relay TEXT NOT NULL, topic BLOB NOT NULL, cursor INTEGER NOT NULL, anchor BLOB, PRIMARY KEY (relay, topic));
CREATE TABLE IF NOT EXISTS held (relay TEXT NOT NULL, id BLOB NOT NULL, topic BLOB NOT NULL, PRIMARY KEY (relay, id, topic));
CREATE TABLE IF NOT EXISTS relays (relay TEXT PRIMARY KEY, instance TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pushed (relay TEXT NOT NULL, topic BLOB NOT NULL, hash BLOB NOT NULL, cursor INTEGER NOT NULL, id BLOB NOT NULL, PRIMARY KEY (relay, topic, hash));
CREATE TABLE IF NOT EXISTS names (pursuance BLOB PRIMARY KEY, name TEXT NOT NULL);
`
	syncVersion = 2
)

func openSyncDB(ctx context.Context, home string) (*syncDB, error) {
	db, err := sqlitefile.Open(filepath.Join(home, "sync.db"), 10*time.Second, "journal_mode(WAL)", "synchronous(NORMAL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := migrateSyncDB(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sync.db: %w", err)
	}
	return &syncDB{db: db}, nil
}

func migrateSyncDB(ctx context.Context, db *sql.DB) (err error) {
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
	if v < syncVersion {
		if _, err := conn.ExecContext(ctx, syncSchema); err != nil {
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
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", syncVersion)); err != nil {
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
	err := s.db.QueryRowContext(ctx, "SELECT cursor, anchor FROM reads WHERE relay = ? AND topic = ?", relay, t[:]).Scan(&p.cursor, &p.anchor)
	if errors.Is(err, sql.ErrNoRows) {
		return readPos{}, nil
	}
	return p, err
}

func (s *syncDB) setReadPos(ctx context.Context, relay string, t keys.Topic, p readPos) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO reads (relay, topic, cursor, anchor) VALUES (?, ?, ?, ?) ON CONFLICT (relay, topic) DO UPDATE SET cursor = excluded.cursor, anchor = excluded.anchor", relay, t[:], p.cursor, p.anchor)
	return err
}

// cursor returns how far a topic of a relay has been read.
func (s *syncDB) cursor(ctx context.Context, relay string, t keys.Topic) (uint64, error) {
	p, err := s.readPos(ctx, relay, t)
	return p.cursor, err
}

// instance returns the relay's instance ID as last seen, or "".
func (s *syncDB) instance(ctx context.Context, relay string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, "SELECT instance FROM relays WHERE relay = ?", relay).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// setInstance records a relay's instance ID.
func (s *syncDB) setInstance(ctx context.Context, relay, instance string) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO relays (relay, instance) VALUES (?, ?) ON CONFLICT (relay) DO UPDATE SET instance = excluded.instance", relay, instance)
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
		if _, err := tx.ExecContext(ctx, q, relay); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO relays (relay, instance) VALUES (?, ?) ON CONFLICT (relay) DO UPDATE SET instance = excluded.instance", relay, instance); err != nil {
		return err
	}
	return tx.Commit()
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
		if _, err := tx.ExecContext(ctx, q, relay, t[:]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// heldBy returns the events the relay is known to hold, and those it holds
// under topic t.
func (s *syncDB) heldBy(ctx context.Context, relay string, t keys.Topic) (any, onTopic map[event.ID]bool, err error) {
	any, onTopic = map[event.ID]bool{}, map[event.ID]bool{}
	rows, err := s.db.QueryContext(ctx, "SELECT id, topic FROM held WHERE relay = ?", relay)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, topic []byte
		if err := rows.Scan(&id, &topic); err != nil {
			return nil, nil, err
		}
		var e event.ID
		copy(e[:], id)
		any[e] = true
		if string(topic) == string(t[:]) {
			onTopic[e] = true
		}
	}
	return any, onTopic, rows.Err()
}

// heldByAny returns the events any of the relays is known to hold.
func (s *syncDB) heldByAny(ctx context.Context, relays []string) (map[event.ID]bool, error) {
	out := map[event.ID]bool{}
	for _, r := range relays {
		held, _, err := s.heldBy(ctx, r, keys.Topic{})
		if err != nil {
			return nil, err
		}
		for id := range held {
			out[id] = true
		}
	}
	return out, nil
}

func (s *syncDB) markHeld(ctx context.Context, relay string, t keys.Topic, ids []event.ID) error {
	if len(ids) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := markHeldTx(ctx, tx, relay, t, ids); err != nil {
		return err
	}
	return tx.Commit()
}

func markHeldTx(ctx context.Context, tx *sql.Tx, relay string, t keys.Topic, ids []event.ID) error {
	st, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO held (relay, id, topic) VALUES (?, ?, ?)")
	if err != nil {
		return err
	}
	defer st.Close()
	for _, id := range ids {
		if _, err := st.ExecContext(ctx, relay, id[:], t[:]); err != nil {
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
// count as held by it, until a read shows otherwise.
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
	for i, e := range envs {
		if _, err := st.ExecContext(ctx, relay, t[:], e.hash[:], e.cursor, e.id[:]); err != nil {
			return err
		}
		ids[i] = e.id
	}
	if err := markHeldTx(ctx, tx, relay, t, ids); err != nil {
		return err
	}
	return tx.Commit()
}

// pushedOn returns the envelopes pushed to topic t of the relay that no
// read has shown yet.
func (s *syncDB) pushedOn(ctx context.Context, relay string, t keys.Topic) ([]pushedEnv, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT hash, cursor, id FROM pushed WHERE relay = ? AND topic = ? ORDER BY cursor", relay, t[:])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pushedEnv
	for rows.Next() {
		var h, id []byte
		var e pushedEnv
		if err := rows.Scan(&h, &e.cursor, &id); err != nil {
			return nil, err
		}
		copy(e.hash[:], h)
		copy(e.id[:], id)
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
	for _, e := range append(shown, lost...) {
		if _, err := tx.ExecContext(ctx, "DELETE FROM pushed WHERE relay = ? AND topic = ? AND hash = ?", relay, t[:], e.hash[:]); err != nil {
			return err
		}
	}
	for _, e := range lost {
		if _, err := tx.ExecContext(ctx, "DELETE FROM held WHERE relay = ? AND id = ? AND topic = ?", relay, e.id[:], t[:]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// name returns the name in force of pursuance p as last recorded, or "".
func (s *syncDB) name(ctx context.Context, p event.ID) (string, error) {
	var name string
	err := s.db.QueryRowContext(ctx, `SELECT name FROM names WHERE pursuance = ?1`, p[:]).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return name, err
}

// setName records the name in force of pursuance p.
func (s *syncDB) setName(ctx context.Context, p event.ID, name string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO names (pursuance, name) VALUES (?1, ?2)
		ON CONFLICT (pursuance) DO UPDATE SET name = excluded.name WHERE name != excluded.name`, p[:], name)
	return err
}

// copyFrom adds every row of another sync.db (a staging one: Join) to
// this one, table by table, keeping this one's row where both have one.
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
