package search

import (
	"context"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

func tasks() []*state.Task {
	return []*state.Task{
		{ID: event.ID{1}, Title: "Verify the memo", Body: "Check the letterhead and the date."},
		{ID: event.ID{2}, Title: "Call the source", Comments: []state.Comment{{Text: "She said the memo was leaked in May."}}},
		{ID: event.ID{3}, Title: "Café receipts", Body: "Naïve accounting"},
	}
}

// TestQuery: words are found in titles, bodies and comments, as prefixes,
// without regard to case or accents; every word must match; each task
// comes once; FTS5's syntax in a query is taken as words.
func TestQuery(t *testing.T) {
	ctx := context.Background()
	ix, err := Build(ctx, tasks())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	find := func(q string) string {
		t.Helper()
		hits, err := ix.Query(ctx, q)
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		var got []string
		for _, h := range hits {
			got = append(got, h.Title+"/"+h.Where)
		}
		return strings.Join(got, ",")
	}
	for q, want := range map[string]string{
		"letterhead":          "Verify the memo/body",
		"LEAK":                "Call the source/comment",
		"memo":                "Verify the memo/title,Call the source/comment",
		"memo may":            "Call the source/comment",
		"cafe naive":          "",
		"cafe":                "Café receipts/title",
		"naive":               "Café receipts/body",
		`"memo" OR NEAR(x y)`: "",
		"title:memo":          "",
		"":                    "",
		"nothing":             "",
	} {
		if got := find(q); got != want {
			t.Errorf("%q: %q, want %q", q, got, want)
		}
	}
	hits, _ := ix.Query(ctx, "leaked")
	if len(hits) != 1 || !strings.Contains(hits[0].Snippet, MarkStart+"leaked"+MarkEnd) {
		t.Errorf("snippet: %+v", hits)
	}
	if _, err := ix.Query(ctx, strings.Repeat("a ", MaxWords+1)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("too many words: %v", err)
	}
}

// TestIndexInMemory: the index is a database with no file (the home's
// events are encrypted at rest; an index file would hold their
// plaintext), whose temporary storage is memory too, and two indexes do
// not share one database.
func TestIndexInMemory(t *testing.T) {
	ctx := context.Background()
	a, err := Build(ctx, tasks())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Build(ctx, tasks()[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rows, err := a.db.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var seq int
		var name, file string
		if err := rows.Scan(&seq, &name, &file); err != nil {
			t.Fatal(err)
		}
		if file != "" {
			t.Errorf("database %s is the file %s", name, file)
		}
	}
	rows.Close()
	var store int
	if err := a.db.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&store); err != nil || store != 2 {
		t.Errorf("temp_store %d (%v), want 2 (memory)", store, err)
	}
	if hits, _ := b.Query(ctx, "source"); len(hits) != 0 {
		t.Errorf("the second index holds the first's tasks: %+v", hits)
	}
}
