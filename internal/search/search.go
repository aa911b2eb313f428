// Package search is a member's full-text index of the tasks it may read:
// titles, bodies and comments, in SQLite's FTS5, held in memory only. The
// home keeps its events encrypted at rest (docs/keystore.md); an index on
// disk would hold their plaintext beside them, readable by whoever reads
// the disk, so the index is never written to a file (an in-memory
// database, temporary storage in memory too) and is rebuilt from the
// decrypted state when the process that searches starts or the state
// changes. Nothing of it leaves the machine. See docs/web.md, "Search".
package search

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"unicode"

	_ "modernc.org/sqlite" // the "sqlite" driver, with FTS5

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// Limits of a query.
const (
	MaxQuery  = 200 // bytes of a query
	MaxWords  = 16  // words of a query
	MaxHits   = 50  // results returned
	snippetOf = 12  // words of context in a snippet
)

// Marks around a matched word in a Hit's Snippet.
const (
	MarkStart = "\x02"
	MarkEnd   = "\x03"
)

// Where a hit was found.
const (
	InTitle   = "title"
	InBody    = "body"
	InComment = "comment"
)

// Index is the full-text index of one set of tasks.
type Index struct {
	db *sql.DB
}

var dbSeq atomic.Uint64

// Build indexes tasks: each one's title, body and comments.
func Build(ctx context.Context, tasks []*state.Task) (*Index, error) {
	// A named in-memory database, private to this Index (its name is
	// unique in the process) and to its one connection.
	dsn := fmt.Sprintf("file:pursuance-search-%d?mode=memory&cache=private", dbSeq.Add(1))
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	ix := &Index{db: db}
	if err := ix.fill(ctx, tasks); err != nil {
		db.Close()
		return nil, err
	}
	return ix, nil
}

func (ix *Index) fill(ctx context.Context, tasks []*state.Task) error {
	for _, q := range []string{
		"PRAGMA temp_store = MEMORY", // sorts and temporary tables never spill to a file
		"CREATE VIRTUAL TABLE docs USING fts5(task UNINDEXED, part UNINDEXED, title UNINDEXED, text, tokenize = 'unicode61 remove_diacritics 2')",
	} {
		if _, err := ix.db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, "INSERT INTO docs (task, part, title, text) VALUES (?, ?, ?, ?)")
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, t := range tasks {
		id := t.ID.String()
		add := func(part, text string) error {
			if strings.TrimSpace(text) == "" {
				return nil
			}
			_, err := ins.ExecContext(ctx, id, part, t.Title, text)
			return err
		}
		if err := errors.Join(add(InTitle, t.Title), add(InBody, t.Body)); err != nil {
			return err
		}
		for _, c := range t.Comments {
			if err := add(InComment, c.Text); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// Close frees the index.
func (ix *Index) Close() error { return ix.db.Close() }

// Hit is a task that matched.
type Hit struct {
	Task    event.ID
	Title   string
	Where   string // InTitle, InBody or InComment: the best match's
	Snippet string // the matched text around the words, each match between MarkStart and MarkEnd
}

// Query returns the tasks whose title, body or a comment holds every word
// of q (each word also as the start of a longer one: "leak" finds
// "leaked"), best match first, each task once, at most MaxHits. Words are
// taken as words: FTS5's query syntax (quotes, NEAR, column filters) is
// not offered, so no query is ever malformed.
func (ix *Index) Query(ctx context.Context, q string) ([]Hit, error) {
	if len(q) > MaxQuery {
		return nil, fmt.Errorf("a search may be at most %d bytes long; use fewer words", MaxQuery)
	}
	words := strings.FieldsFunc(q, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) == 0 {
		return []Hit{}, nil
	}
	if len(words) > MaxWords {
		return nil, fmt.Errorf("a search may have at most %d words", MaxWords)
	}
	var match strings.Builder
	for i, w := range words {
		if i > 0 {
			match.WriteString(" AND ")
		}
		match.WriteString(`"` + w + `"*`) // letters and digits only: nothing to escape
	}
	rows, err := ix.db.QueryContext(ctx, `SELECT task, title, part, snippet(docs, 3, ?, ?, '…', ?) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?`,
		MarkStart, MarkEnd, snippetOf, match.String(), MaxHits*8)
	if err != nil {
		return nil, errors.New("the search failed; try other words")
	}
	defer rows.Close()
	out := []Hit{}
	seen := map[string]bool{}
	for rows.Next() && len(out) < MaxHits {
		var h Hit
		var task string
		if err := rows.Scan(&task, &h.Title, &h.Where, &h.Snippet); err != nil {
			return nil, err
		}
		if seen[task] {
			continue
		}
		seen[task] = true
		if h.Task, err = event.ParseID(task); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
