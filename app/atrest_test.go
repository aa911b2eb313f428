package app

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/internal/atrest"
	"github.com/pursuance/pursuance/internal/sqlitefile"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// atRestCharter has role names and descriptions found nowhere else.
const atRestCharter = `name: Obsidianharbor
roles:
  - name: zephyrwarden
    description: Keeps the quillhaven gate.
    can:
      amend-charter: true
      assign-role: "*"
      revoke-role: "*"
      invite: "*"
      remove-member: "*"
      create-task: true
      assign-task: "*"
      edit-task: any
      set-status: any
      comment: any
      archive-task: any
      see-tasks: "*"
      rotate-keys: true
      manage-relays: true
  - name: marrowscribe
    description: Digs through the vellumcrypt.
    can:
      create-task: true
      comment: any
`

// TestHomeAtRest: after a session of two members through a relay (a
// charter of distinctive names, a task with a body and comments, an
// invite, syncs both ways, a removal, a renaming amendment), no file of
// either home shows a name, a role, the charter, a task's text, the relay
// URL, the invite code or an identifier: not while the nodes are open,
// with their WAL and shared memory files, and not once they are closed.
// Only the owner's own name and member ID may show, in identity.json.
func TestHomeAtRest(t *testing.T) {
	ctx := context.Background()
	r, _ := testRelay(t)
	alice, bob := newMember(t, "Quentavia Marlowe"), newMember(t, "Brandolyn Oakes")
	c, err := charter.Parse([]byte(atRestCharter))
	if err != nil {
		t.Fatal(err)
	}
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetRelays(ctx, p, []string{r}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	task := do(t, alice, p, &state.TaskCreate{Title: "Glimmerwick ledger audit", Body: "Check the thornquist receipts", VisibleTo: []string{"marrowscribe"}})
	code, _, err := alice.Invite(ctx, p, "marrowscribe", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	if res, err := bob.Join(ctx, code, DoOptions{}); err != nil || res.SyncErr != nil {
		t.Fatalf("join: %v %v", err, res.SyncErr)
	}
	do(t, bob, p, &state.TaskComment{Task: task.ID(), Text: "Saw the fennimore stamp"})
	mustSync(t, bob, p)
	mustSync(t, alice, p)
	do(t, alice, p, &state.TaskComment{Task: task.ID(), Text: "Confirmed by halvorsen"})
	renamed, err := charter.Parse([]byte(strings.Replace(atRestCharter, "Obsidianharbor", "Basaltquay", 1)))
	if err != nil {
		t.Fatal(err)
	}
	do(t, alice, p, charterAmend(t, renamed))
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	if _, _, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil {
		t.Fatal(err)
	}
	late := do(t, alice, p, &state.TaskCreate{Title: "Postremoval brindlemark", Body: "After the cut, wendelstow"})
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	// Both homes list the pursuance by its name in force (sync.db), and
	// Bob read the task before his removal.
	for _, m := range []member{alice, bob} {
		if ps, err := m.Pursuances(ctx); err != nil || len(ps) != 1 || ps[0].Name != "Basaltquay" {
			t.Fatalf("%s lists %v, %v", m.id.Name(), ps, err)
		}
	}
	bs, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if tk, ok := bs.Task(task.ID()); !ok || tk.Title != "Glimmerwick ledger audit" || len(tk.Comments) != 2 {
		t.Fatalf("bob's view of the task: %+v", tk)
	}
	// Each home keeps a checkpoint of its fold (checkpoint.go): it holds
	// role names and verdicts' reasons, sealed.
	checkpointNow(t, alice, p)
	checkpointNow(t, bob, p)

	texts := []string{
		"Obsidianharbor", "Basaltquay", "zephyrwarden", "marrowscribe", "quillhaven", "vellumcrypt",
		"Quentavia", "Marlowe", "Brandolyn", "Oakes",
		"Glimmerwick", "thornquist", "fennimore", "halvorsen", "brindlemark", "wendelstow",
		r, strings.TrimPrefix(r, "http://"), code.String(),
	}
	tid, lid := task.ID(), late.ID()
	ids := [][]byte{p[:], tid[:], lid[:]}
	for _, m := range []member{alice, bob} {
		pk := m.id.ID()
		ids = append(ids, pk[:])
	}
	homes := []member{alice, bob}
	open := scanHomes(t, homes, texts, ids)
	if !slices.ContainsFunc(open, func(f string) bool { return strings.HasSuffix(f, "events.db-wal") }) {
		t.Fatalf("no WAL was scanned while the homes were open: %v", open)
	}
	for _, m := range homes {
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	scanHomes(t, homes, texts, ids)
}

// scanHomes fails the test if any file under the members' homes shows one
// of texts (in any case, in UTF-8 or UTF-16) or of ids (raw, or in hex),
// file names included, but the owner's name and member ID in
// identity.json; it returns the files it read.
func scanHomes(t *testing.T, homes []member, texts []string, ids [][]byte) []string {
	t.Helper()
	var files []string
	for _, m := range homes {
		own := strings.Fields(m.id.Name())
		pk := m.id.ID()
		err := filepath.WalkDir(m.home, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(m.home, path)
			files = append(files, rel)
			b = append(append(b, 0), []byte(rel)...)
			for _, leak := range atRestLeaks(b, texts, ids) {
				if rel == keystore.FileName && (slices.Contains(own, strings.Trim(leak, `"`)) || leak == fmt.Sprintf("%q", pk.String())) {
					continue
				}
				t.Errorf("%s's %s holds %s", m.id.Name(), rel, leak)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// atRestLeaks returns what of texts and ids occurs in b, in the forms a
// program could have written them in.
func atRestLeaks(b []byte, texts []string, ids [][]byte) []string {
	var out []string
	low := bytes.ToLower(b)
	for _, s := range texts {
		l := strings.ToLower(s)
		var u16 []byte
		for _, c := range []byte(l) {
			u16 = append(u16, c, 0)
		}
		if bytes.Contains(low, []byte(l)) || bytes.Contains(low, u16) {
			out = append(out, fmt.Sprintf("%q", s))
		}
	}
	for _, id := range ids {
		if bytes.Contains(b, id[:16]) || bytes.Contains(low, []byte(hex.EncodeToString(id[:16]))) {
			out = append(out, fmt.Sprintf("identifier %x", id[:16]))
		}
		if pk, ok := identityText(id); ok && bytes.Contains(b, []byte(pk)) {
			out = append(out, fmt.Sprintf("%q", pk))
		}
	}
	return out
}

// identityText is the member ID text of a 32-byte key.
func identityText(id []byte) (string, bool) {
	if len(id) != identity.PublicKeySize {
		return "", false
	}
	return identity.PublicKey(id).String(), true
}

// The home in testdata/home-v3 was written by the version before the
// encryption at rest (schema version 3), by the session of
// cmd/pursuance/testdata/script/home_at_rest.txtar run with that version:
// it is Bob's ("Brandolyn"), removed from "Obsidianharbor" after
// commenting on a task. Its passphrase is "pw".
const (
	legacyPursuance = "150b25edb06f41702f0fbfc0bf4f9fdf60bcb78b8790c71250d0b3d3a402b13e"
	legacyTask      = "ef72ffa688deb85c012cb41c722a7fa31c3cf3432f4cbac8c56f8d982ba3d3b6"
	legacyAlice     = "pm1fbpmx633s5usax6gbl4qamqya4bexbxtwsj4ua6preztpidevjltttqm"
	legacyRelay     = "127.0.0.1:43295"
)

// TestLegacyHomeEncrypted opens a home written in the clear by the
// previous version: the first unlocked open encrypts events.db, sync.db
// and the names in secrets/, and everything reads as before; afterwards
// no file shows what the clear home did (the scan finds it all in the
// clear copy first), and nothing of the clear files is left beside them.
func TestLegacyHomeEncrypted(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	if err := os.CopyFS(home, os.DirFS("testdata/home-v3")); err != nil {
		t.Fatal(err)
	}
	p, _ := event.ParseID(legacyPursuance)
	tid, _ := event.ParseID(legacyTask)
	alice, err := identity.ParseMemberID(legacyAlice)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"Obsidianharbor", "zephyrwarden", "marrowscribe", "quillhaven", "vellumcrypt", "Quentavia", legacyRelay}
	ids := [][]byte{p[:], tid[:], alice[:]}
	id, err := keystore.Open(home, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	m := member{&Node{home: home}, id}
	before := scanLeaks(t, home, texts, ids)
	if len(before) < len(texts)+len(ids) {
		t.Fatalf("the clear home shows only %v", before)
	}

	n, err := Open(ctx, home, id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Node = n
	ps, err := n.Pursuances(ctx)
	if err != nil || len(ps) != 1 || ps[0].ID != p || ps[0].Name != "Obsidianharbor" {
		t.Fatalf("Pursuances = %v, %v", ps, err)
	}
	s, err := n.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	// (Its comments, sealed under the key the invite code carried, are
	// rejected by the rules since issue 11 §4: that is not this test's.)
	if tk, ok := s.Task(tid); !ok || tk.Title != "Glimmerwick ledger audit" || tk.Body != "Check the thornquist receipts." {
		t.Fatalf("the task reads %+v", tk)
	}
	if n := len(s.Log()); n != 10 {
		t.Fatalf("the log holds %d events, want the 10 of the clear home", n)
	}
	if mb, ok := s.Member(alice); !ok || mb.Name != "Quentavia" {
		t.Fatalf("alice reads %+v", mb)
	}
	urls, err := n.RelayURLs(ctx, p)
	if err != nil || len(urls) != 1 || urls[0] != "http://"+legacyRelay {
		t.Fatalf("RelayURLs = %v, %v", urls, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if leaks := scanLeaks(t, home, texts, ids); len(leaks) > 0 {
		t.Fatalf("after the first open, the home shows %v", leaks)
	}
	var names []string
	filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(home, path)
			names = append(names, rel)
		}
		return err
	})
	for _, name := range names {
		if strings.HasSuffix(name, ".new") || strings.HasSuffix(name, ".old") || strings.HasSuffix(name, "-wal") {
			t.Errorf("%s is left in the home", name)
		}
	}
	// And it opens again, encrypted, with the same view.
	n, err = Open(ctx, home, id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if ps, err := n.Pursuances(ctx); err != nil || len(ps) != 1 || ps[0].Name != "Obsidianharbor" {
		t.Fatalf("Pursuances after reopening = %v, %v", ps, err)
	}
}

// scanLeaks returns what of texts and ids any file under home shows.
func scanLeaks(t *testing.T, home string, texts []string, ids [][]byte) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(home, path)
		for _, leak := range atRestLeaks(append(append(b, 0), []byte(rel)...), texts, ids) {
			out = append(out, leak+" in "+rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestSyncDBMigrated: a clear sync.db of the last clear version (2), with
// a row in every table, opens encrypted with the same answers, and its
// file then shows none of the relay URL, topic, anchor, instance ID,
// envelope hash, event ID, pursuance ID or name.
func TestSyncDBMigrated(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	const url, instance, name = "http://127.0.0.1:47211", "inst-quarrymoss", "Tidewrack Cell"
	var topic keys.Topic
	copy(topic[:], bytes.Repeat([]byte{0x5a}, len(topic)))
	anchor := bytes.Repeat([]byte{0xa7}, 32)
	hash := [32]byte(bytes.Repeat([]byte{0xc3}, 32))
	id := event.ID(bytes.Repeat([]byte{0xe9}, 32))
	held := event.ID(bytes.Repeat([]byte{0x1f}, 32))
	p := event.ID(bytes.Repeat([]byte{0x77}, 32))
	db, err := sqlitefile.Open(filepath.Join(home, SyncFile), syncBusy)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{clearSyncSchema, nil},
		{"INSERT INTO reads VALUES (?, ?, 7, ?)", []any{url, topic[:], anchor}},
		{"INSERT INTO held VALUES (?, ?, ?)", []any{url, held[:], topic[:]}},
		{"INSERT INTO relays VALUES (?, ?)", []any{url, instance}},
		{"INSERT INTO pushed VALUES (?, ?, ?, 9, ?)", []any{url, topic[:], hash[:], id[:]}},
		{"INSERT INTO names VALUES (?, ?)", []any{p[:], name}},
		{"PRAGMA user_version = 2", nil},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	clear := [][]byte{[]byte(url), []byte("127.0.0.1:47211"), topic[:16], anchor[:16], []byte(instance), hash[:16], id[:16], held[:16], p[:16], []byte(name)}
	found := func() []string {
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
	if got := found(); len(got) != len(clear) {
		t.Fatalf("the clear file shows only %v", got)
	}
	key := atrest.Key{9}
	s, err := openSyncDB(ctx, home, key)
	if err != nil {
		t.Fatal(err)
	}
	if pos, err := s.readPos(ctx, url, topic); err != nil || pos.cursor != 7 || !bytes.Equal(pos.anchor, anchor) {
		t.Errorf("readPos = %+v, %v", pos, err)
	}
	if all, on, err := s.heldBy(ctx, url, topic); err != nil || !all.has(held) || !on.has(held) || !all.has(id) || all.len() != 2 {
		// The pushed envelope's event counts as held too.
		t.Errorf("heldBy: %v %v %v, %d", all.has(held), on.has(held), err, all.len())
	}
	if got, err := s.instance(ctx, url); err != nil || got != instance {
		t.Errorf("instance = %q, %v", got, err)
	}
	if got, err := s.pushedOn(ctx, url, topic); err != nil || len(got) != 1 || got[0] != (pushedEnv{hash: hash, cursor: 9, id: id}) {
		t.Errorf("pushedOn = %+v, %v", got, err)
	}
	if got, err := s.name(ctx, p); err != nil || got != name {
		t.Errorf("name = %q, %v", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := found(); len(got) > 0 {
		t.Fatalf("after the first open: %v", got)
	}
	if _, err := openSyncDB(ctx, home, atrest.Key{8}); err == nil {
		t.Error("sync.db opened under another key")
	}
}
