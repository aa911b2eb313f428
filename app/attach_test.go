package app

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// randomFile writes n pseudo-random bytes to a file under dir.
func randomFile(t *testing.T, dir, name string, n int, seed byte) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, b
}

// fileIDs returns the IDs of the files of task tk that m sees.
func fileIDs(t *testing.T, m member, p event.ID, tk event.ID) map[event.ID]state.File {
	t.Helper()
	s, err := m.State(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	out := map[event.ID]state.File{}
	if task, ok := s.Task(tk); ok {
		for _, f := range task.Files {
			out[f.ID] = f
		}
	}
	return out
}

// TestAttachRemovedMember: bob, a researcher, reads a file attached to a
// researchers' task; once removed, he cannot open what alice attaches
// after, even handed the raw event, and the same content attached after
// the removal shares no blob (no chunk key) with what he could open.
func TestAttachRemovedMember(t *testing.T) {
	ctx := context.Background()
	_, alice, rs, p := deskOnRelay(t, "Bob", "Carol")
	bob := rs[0]
	tk := do(t, alice, p, &state.TaskCreate{Title: "Review", VisibleTo: []string{"researcher"}}).ID()
	mustSync(t, alice, p)
	path, content := randomFile(t, t.TempDir(), "memo.pdf", 3<<20, 1)
	before, err := alice.Attach(ctx, p, tk.String(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	out := filepath.Join(t.TempDir(), "got")
	if _, err := bob.Fetch(ctx, p, tk.String(), before.Event.ID().String(), out, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, content) {
		t.Fatal("bob's copy differs")
	}
	if _, left, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil || len(left) > 0 {
		t.Fatalf("remove: %v %v", left, err)
	}
	mustSync(t, alice, p)
	after, err := alice.Attach(ctx, p, tk.String(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.Cached != 0 || after.Sent != after.Chunks {
		t.Errorf("after the removal, %d of %d chunks were already on the relay: sealed under keys bob held", after.Cached, after.Chunks)
	}
	old := map[attach.BlobID]bool{}
	for _, c := range before.File.Chunks {
		old[c.Blob] = true
	}
	for _, c := range after.File.Chunks {
		if old[c.Blob] {
			t.Fatal("a blob attached after the removal is one bob could open")
		}
	}
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	copyAll(t, alice, bob, p) // the raw events, as a careless member would hand them over
	if _, ok := fileIDs(t, bob, p, tk)[after.Event.ID()]; ok {
		t.Fatal("bob, removed, reads the manifest of a file attached after his removal")
	}
	bs, _ := bob.State(ctx, p)
	raw, err := bob.Store().Get(ctx, after.Event.ID())
	if err != nil {
		t.Fatal(err)
	}
	if tryEverything(t, bob, bs, raw) {
		t.Fatal("one of bob's keys opens the manifest attached after his removal")
	}
	// Carol, still a researcher, reads it.
	mustSync(t, rs[1], p)
	if _, ok := fileIDs(t, rs[1], p, tk)[after.Event.ID()]; !ok {
		t.Fatal("carol, a researcher, does not read the file")
	}
}

// TestAttachTamperedBlob: a relay that answers other bytes for a blob is
// caught by the blob's hash, and one that keeps the hash but not the
// content cannot exist; nothing is written to the output, and the
// tampered blob is not cached.
func TestAttachTamperedBlob(t *testing.T) {
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "relay.db")
	st, err := relay.OpenSQLite(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	t.Cleanup(func() { ts.Close(); st.Close() })
	alice, bob := newMember(t, "Alice"), newMember(t, "Bob")
	p := deskOn(t, alice, ts.URL)
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	if _, err := bob.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	tk := do(t, alice, p, &state.TaskCreate{Title: "Review", VisibleTo: []string{"researcher"}}).ID()
	path, _ := randomFile(t, t.TempDir(), "memo.pdf", 4<<20, 2)
	res, err := alice.Attach(ctx, p, tk.String(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	// The relay's operator flips a byte of the second blob.
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	victim := res.File.Chunks[len(res.File.Chunks)/2].Blob
	if r, err := db.Exec("UPDATE blobs SET data = CAST(substr(data, 1, 100) || x'00' || substr(data, 102) AS BLOB) WHERE id = ?", victim[:]); err != nil {
		t.Fatal(err)
	} else if n, _ := r.RowsAffected(); n != 1 {
		t.Fatalf("tampered %d blobs", n)
	}
	out := filepath.Join(t.TempDir(), "got")
	_, err = bob.Fetch(ctx, p, tk.String(), res.Event.ID().String(), out, nil)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("another hash")) {
		t.Fatalf("a tampered blob: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Error("the output exists after a failed fetch")
	}
	if _, err := os.Stat(out + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Error("the partial output is left behind")
	}
	if _, err := os.Stat(bob.blobPath(victim)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the tampered blob was cached")
	}
}

// TestAttachFromPeerNode: with the relay out of reach, bob fetches a file
// from alice's node, which serves her home's blob cache (HomeBlobs) and
// takes no blob from anyone.
func TestAttachFromPeerNode(t *testing.T) {
	ctx := context.Background()
	_, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	tk := do(t, alice, p, &state.TaskCreate{Title: "Review", VisibleTo: []string{"researcher"}}).ID()
	path, content := randomFile(t, t.TempDir(), "memo.pdf", 3<<20, 3)
	res, err := alice.Attach(ctx, p, tk.String(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Alice's node: an embedded relay of its own, serving her blobs.
	st, err := relay.OpenSQLite(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	node := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Blobs: HomeBlobs(alice.home)}).Handler())
	t.Cleanup(func() { node.Close(); st.Close() })
	if _, _, err := alice.NodePeers(ctx, p, onionA); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	// From here bob reaches alice's node (its onion address, by the
	// dialer that stands for Tor) and no relay.
	bob.opts.Dial = func(ctx context.Context, network, addr, _ string) (net.Conn, error) {
		if strings.HasSuffix(strings.Split(addr, ":")[0], ".onion") {
			return (&net.Dialer{}).DialContext(ctx, "tcp", node.Listener.Addr().String())
		}
		return nil, errors.New("unreachable (the test's dialer)")
	}
	bob.clients.close()
	out := filepath.Join(t.TempDir(), "got")
	tr, err := bob.Fetch(ctx, p, tk.String(), res.Event.ID().String(), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, content) || tr.Sent != tr.Chunks {
		t.Fatalf("bob's copy differs, or %d of %d chunks fetched", tr.Sent, tr.Chunks)
	}
	// The node takes no blob.
	s, _ := alice.State(ctx, p)
	cur, _ := s.CurrentKey("")
	h := s.Held()[cur.Update]
	_, key, err := h.Key.Topic()
	if err != nil {
		t.Fatal(err)
	}
	_, err = relay.NewClient(node.URL, nil).PutBlob(ctx, key, make([]byte, attach.MinBlob))
	var se *relay.StatusError
	if !errors.As(err, &se) || se.Status != 403 || !strings.Contains(se.Message, "takes none") {
		t.Fatalf("a put to a member's node: %v", err)
	}
}

// TestHandoffCarriesFiles: a task handed off over a link carries its
// files by reference: the receiving desk's researcher lists the file and
// fetches it from the relay both desks use, and nothing is uploaded
// again (the blobs are those alice put).
func TestHandoffCarriesFiles(t *testing.T) {
	ctx := context.Background()
	relayURL, _ := testRelay(t)
	alice, _, fay, a, b, _ := linkedDesks(t, relayURL)
	task := do(t, alice, a, &state.TaskCreate{Title: "Check the leak", VisibleTo: []string{"editor"}})
	path, content := randomFile(t, t.TempDir(), "ledger.pdf", 2<<20, 4)
	att, err := alice.Attach(ctx, a, task.ID().String(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	hr, _, err := alice.Handoff(ctx, a, task.ID().String(), b, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, a)
	mustSync(t, fay, b)
	h, _ := event.ParseID(hr.Handoff)
	files, err := fay.Files(ctx, b, h.String())
	if err != nil || len(files) != 1 || files[0].Name != "ledger.pdf" || files[0].SHA256 != att.File.SHA256 || files[0].ID != state.HandoffFileID(h, 0) {
		t.Fatalf("fay's files of the received task: %v %+v", err, files)
	}
	out := filepath.Join(t.TempDir(), "got")
	tr, err := fay.Fetch(ctx, b, h.String(), files[0].ID.String(), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, content) || tr.Sent != tr.Chunks {
		t.Fatalf("fay's copy differs, or %d of %d chunks fetched", tr.Sent, tr.Chunks)
	}
}

// TestAttachLimits: a file over attach.MaxFileSize is refused before it
// is read, in words that give the limit; so is a file name with a path,
// and a pursuance with no relay.
func TestAttachLimits(t *testing.T) {
	ctx := context.Background()
	_, alice, _, p := deskOnRelay(t)
	tk := do(t, alice, p, &state.TaskCreate{Title: "Review"}).ID()
	big := filepath.Join(t.TempDir(), "huge.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(attach.MaxFileSize + 1); err != nil { // sparse: no disk taken
		t.Fatal(err)
	}
	f.Close()
	if _, err := alice.Attach(ctx, p, tk.String(), big, nil); err == nil || !strings.Contains(err.Error(), "over the limit of 104857600 (100 MiB) per attachment") {
		t.Errorf("a file over the limit: %v", err)
	}
	if _, err := alice.AttachReader(ctx, p, tk.String(), "a\nb", strings.NewReader("x"), 1, nil); err == nil || !strings.Contains(err.Error(), "line break") {
		t.Errorf("a name with a line break: %v", err)
	}
	if _, err := alice.AttachReader(ctx, p, tk.String(), "short.txt", strings.NewReader("abc"), 4, nil); err == nil || !strings.Contains(err.Error(), "changed while it was read") {
		t.Errorf("a reader shorter than its size: %v", err)
	}
	bob := newMember(t, "Bob")
	c, _ := charter.Template("desk")
	q, err := bob.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	bt := do(t, bob, q, &state.TaskCreate{Title: "Alone"}).ID()
	path, _ := randomFile(t, t.TempDir(), "memo.pdf", 1000, 5)
	if _, err := bob.Attach(ctx, q, bt.String(), path, nil); err == nil || !strings.Contains(err.Error(), "has no relay") {
		t.Errorf("no relay: %v", err)
	}
}

// TestAttachToComment: a file attached to a comment is one of the task's
// files that names the comment; bob, a reader, sees it under that comment
// and fetches it; a comment the task does not have is refused before
// anything is uploaded.
func TestAttachToComment(t *testing.T) {
	ctx := context.Background()
	_, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	tk := do(t, alice, p, &state.TaskCreate{Title: "Review", VisibleTo: []string{"researcher"}}).ID()
	other := do(t, alice, p, &state.TaskCreate{Title: "Other"}).ID()
	c := do(t, alice, p, &state.TaskComment{Task: tk, Text: "page 4, see the scan"}).ID()
	elsewhere := do(t, alice, p, &state.TaskComment{Task: other, Text: "not this task"}).ID()
	mustSync(t, alice, p)
	path, content := randomFile(t, t.TempDir(), "scan.png", 300<<10, 4)
	if _, err := alice.AttachToComment(ctx, p, tk.String(), elsewhere.String(), path, nil); err == nil || !strings.Contains(err.Error(), "no comment") {
		t.Fatalf("another task's comment: %v", err)
	}
	res, err := alice.AttachToComment(ctx, p, tk.String(), c.String()[:12], path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.File.Comment != c {
		t.Fatalf("the manifest names comment %s, want %s", res.File.Comment.Short(), c.Short())
	}
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	s, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	task, _ := s.Task(tk)
	if len(task.Files) != 1 {
		t.Fatalf("bob sees %d files", len(task.Files))
	}
	if cm, ok := task.FileComment(task.Files[0]); !ok || cm.ID != c {
		t.Fatalf("bob does not see the file under its comment: %v %v", cm.ID.Short(), ok)
	}
	if fs := task.CommentFiles(c); len(fs) != 1 || fs[0].ID != res.Event.ID() {
		t.Fatalf("comment files: %v", fs)
	}
	out := filepath.Join(t.TempDir(), "got")
	if _, err := bob.Fetch(ctx, p, tk.String(), res.Event.ID().String(), out, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, content) {
		t.Fatal("bob's copy differs")
	}
}
