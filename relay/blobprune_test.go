package relay

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/internal/sqlitefile"
)

// TestBlobsPrunedByAge: PruneBlobs drops the blobs last put before the
// cut, and only those; a put of a blob held already counts as a fresh put;
// the quotas' counts drop with what was dropped.
func TestBlobsPrunedByAge(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	topicA, _ := testTopic(t, 1)
	topicB, _ := testTopic(t, 2)
	old, kept, again := blob(attach.MinBlob, 1), blob(2*attach.MinBlob, 2), blob(attach.MinBlob, 3)
	for _, p := range []struct {
		topic [32]byte
		b     []byte
	}{{topicA, old}, {topicA, again}, {topicB, kept}} {
		if _, err := st.PutBlob(ctx, attach.IDOf(p.b), p.topic, p.b); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond)
	cut := time.Now()
	time.Sleep(5 * time.Millisecond)
	// Put again after the cut: no longer old.
	if stored, err := st.PutBlob(ctx, attach.IDOf(again), topicA, again); err != nil || stored {
		t.Fatalf("put again: %v, %v", stored, err)
	}
	if stored, err := st.PutBlob(ctx, attach.IDOf(kept), topicB, kept); err != nil || stored {
		t.Fatalf("put again: %v, %v", stored, err)
	}
	n, bytes, err := st.PruneBlobs(ctx, cut)
	if err != nil || n != 1 || bytes != int64(len(old)) {
		t.Fatalf("pruned %d blobs, %d bytes, %v; want 1, %d", n, bytes, err, len(old))
	}
	have, err := st.HasBlobs(ctx, []attach.BlobID{attach.IDOf(old), attach.IDOf(again), attach.IDOf(kept)})
	if err != nil || have[0] || !have[1] || !have[2] {
		t.Fatalf("held after the prune: %v, %v", have, err)
	}
	ta, total, err := st.BlobUsage(ctx, topicA)
	if err != nil || ta != int64(len(again)) || total != int64(len(again)+len(kept)) {
		t.Fatalf("usage after the prune: topic %d, total %d, %v", ta, total, err)
	}
	// Nothing older left: a second prune drops nothing.
	if n, _, err := st.PruneBlobs(ctx, cut); err != nil || n != 0 {
		t.Fatalf("second prune: %d, %v", n, err)
	}
	// Everything, once it is all old: the counts go to zero.
	if n, _, err := st.PruneBlobs(ctx, time.Now().Add(time.Second)); err != nil || n != 2 {
		t.Fatalf("prune all: %d, %v", n, err)
	}
	if ta, total, err := st.BlobUsage(ctx, topicB); err != nil || ta != 0 || total != 0 {
		t.Fatalf("usage after pruning all: %d, %d, %v", ta, total, err)
	}
}

// TestBlobTableUpgradedKeepsBlobs: a blob table made before blobs kept a
// put time gets one, the upgrade's: nothing in it is old at once.
func TestBlobTableUpgradedKeepsBlobs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "relay.db")
	st, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sqlitefile.Open(path, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b := blob(attach.MinBlob, 9)
	id := attach.IDOf(b)
	topic, _ := testTopic(t, 1)
	for _, q := range []string{
		"CREATE TABLE blobs (id BLOB NOT NULL UNIQUE, topic BLOB NOT NULL, size INTEGER NOT NULL, data BLOB NOT NULL)",
		"CREATE TABLE blob_topics (topic BLOB PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, db, "INSERT INTO blobs (id, topic, size, data) VALUES (?, ?, ?, ?)", id[:], topic[:], len(b), b)
	mustExec(t, db, "INSERT INTO blob_topics (topic, bytes) VALUES (?, ?)", topic[:], len(b))
	db.Close()
	before := time.Now()
	st, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, _, err := st.PruneBlobs(ctx, before.Add(-time.Millisecond)); err != nil || n != 0 {
		t.Fatalf("pruned %d right after the upgrade, %v", n, err)
	}
	if got, err := st.Blob(ctx, id); err != nil || len(got) != len(b) {
		t.Fatalf("blob after the upgrade: %d bytes, %v", len(got), err)
	}
	if n, _, err := st.PruneBlobs(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("pruned %d once old, %v", n, err)
	}
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

// TestRelayPrunesBlobs: a relay with a retention age drops, in its prune
// loop, the blobs last put longer ago than that, as it drops envelopes.
func TestRelayPrunesBlobs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(st, Config{Retention: Retention{MaxAge: 200 * time.Millisecond}, PruneEvery: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	c := NewClient("http://"+ln.Addr().String(), nil)
	_, key := testTopic(t, 1)
	b := blob(attach.MinBlob, 4)
	if _, err := c.PutBlob(ctx, key, b); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		have, err := c.HasBlobs(ctx, []attach.BlobID{attach.IDOf(b)})
		if err != nil {
			t.Fatal(err)
		}
		if !have[0] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the blob outlived the retention age by 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
