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

// syncDB remembers, per relay, how far each topic has been read and which
// events the relay is known to hold (read from it, or sent to it under a
// topic), so that sync sends only what is new; and the name in force of
// each pursuance, as its last state had it, so that lists show a renamed
// pursuance by its new name without folding its log. It lives in the home
// as sync.db; losing it costs a re-read and re-sends, which relays take as
// duplicates or new copies, never as errors, and names fall back to the
// founding charter's until the next state is built.
type syncDB struct {
	db *sql.DB
}

const syncSchema = `
CREATE TABLE IF NOT EXISTS cursors (relay TEXT NOT NULL, topic BLOB NOT NULL, cursor INTEGER NOT NULL, PRIMARY KEY (relay, topic));
CREATE TABLE IF NOT EXISTS held (relay TEXT NOT NULL, id BLOB NOT NULL, topic BLOB NOT NULL, PRIMARY KEY (relay, id, topic));
CREATE TABLE IF NOT EXISTS names (pursuance BLOB PRIMARY KEY, name TEXT NOT NULL);
`

func openSyncDB(ctx context.Context, home string) (*syncDB, error) {
	db, err := sqlitefile.Open(filepath.Join(home, "sync.db"), 10*time.Second, "journal_mode(WAL)", "synchronous(NORMAL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, syncSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sync.db: %w", err)
	}
	return &syncDB{db: db}, nil
}

func (s *syncDB) Close() error { return s.db.Close() }

func (s *syncDB) cursor(ctx context.Context, relay string, t keys.Topic) (uint64, error) {
	var c uint64
	err := s.db.QueryRowContext(ctx, "SELECT cursor FROM cursors WHERE relay = ? AND topic = ?", relay, t[:]).Scan(&c)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return c, err
}

func (s *syncDB) setCursor(ctx context.Context, relay string, t keys.Topic, c uint64) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO cursors (relay, topic, cursor) VALUES (?, ?, ?) ON CONFLICT (relay, topic) DO UPDATE SET cursor = excluded.cursor", relay, t[:], c)
	return err
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
	for _, id := range ids {
		if _, err := st.ExecContext(ctx, relay, id[:], t[:]); err != nil {
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
