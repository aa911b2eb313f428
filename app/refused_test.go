package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/atrest"
	"github.com/pursuance/pursuance/internal/sqlitefile"
	"github.com/pursuance/pursuance/keys"
)

// TestRefusedPlacesAtRest: where a sync refused an event (relay URL,
// topic, event ID) is kept in sync.db blinded and sealed, as the rest of
// it, and read back; a home that kept it in the clear (the "refused"
// table) has its rows moved and the clear values gone from its files.
func TestRefusedPlacesAtRest(t *testing.T) {
	ctx := context.Background()
	const url = "http://127.0.0.1:47213/refusedmarker"
	topic := keys.Topic{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x17, 0x28, 0x39, 0x4a, 0x5b, 0x6c, 0x7d, 0x8e, 0x9f, 0x10}
	id := event.ID{0x51, 0x62, 0x73, 0x84, 0x95, 0xa6, 0xb7, 0xc8, 0xd9, 0xea, 0xfb, 0x0c, 0x1d, 0x2e, 0x3f, 0x40}
	clear := [][]byte{[]byte("refusedmarker"), topic[:16], id[:16], []byte(fmt.Sprintf("%x", id[:16]))}
	found := func(home string) []string {
		var out []string
		for _, f := range []string{SyncFile, SyncFile + "-wal"} {
			b, _ := os.ReadFile(filepath.Join(home, f))
			for _, c := range clear {
				if bytes.Contains(b, c) {
					out = append(out, fmt.Sprintf("%q in %s", c, f))
				}
			}
		}
		return out
	}
	want := refusedPlace{relay: url, topic: topic, cursor: 7}
	readBack := func(home string) {
		t.Helper()
		s, err := openSyncDB(ctx, home, atrest.Key{9})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.refusedPlaces(ctx, []event.ID{id, {1}})
		if err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("refusedPlaces = %+v, %v; want %+v", got, err, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("new", func(t *testing.T) {
		home := t.TempDir()
		s, err := openSyncDB(ctx, home, atrest.Key{9})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.noteRefused(ctx, url, topic, 7, id); err != nil {
			t.Fatal(err)
		}
		if got := found(home); len(got) > 0 {
			t.Errorf("while open: %v", got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got := found(home); len(got) > 0 {
			t.Errorf("closed: %v", got)
		}
		readBack(home)
	})

	t.Run("clear table moved", func(t *testing.T) {
		home := t.TempDir()
		s, err := openSyncDB(ctx, home, atrest.Key{9})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		db, err := sqlitefile.Open(filepath.Join(home, SyncFile), syncBusy, "journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			"CREATE TABLE refused (relay TEXT NOT NULL, topic BLOB NOT NULL, cursor INTEGER NOT NULL, id BLOB NOT NULL, PRIMARY KEY (relay, topic, cursor))",
			"CREATE INDEX refused_id ON refused (id)",
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Exec("INSERT INTO refused (relay, topic, cursor, id) VALUES (?, ?, ?, ?)", url, topic[:], 7, id[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if got := found(home); len(got) < 3 {
			t.Fatalf("the clear table shows only %v: the test shows nothing", got)
		}
		readBack(home)
		if got := found(home); len(got) > 0 {
			t.Errorf("after the move: %v", got)
		}
		readBack(home) // and again, from the table it was moved to
	})
}
