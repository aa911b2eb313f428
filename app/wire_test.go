package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/state"
)

// member is one test home, unlocked.
type member struct {
	*Node
	id *identity.Identity
}

func newMember(t *testing.T, name string) member {
	t.Helper()
	dir := t.TempDir()
	id, err := identity.New(name, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.Create(dir, id, []byte("pw"), keystore.InsecureTestKDF, rand.Reader); err != nil {
		t.Fatal(err)
	}
	n, err := Open(context.Background(), dir, id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return member{n, id}
}

// exportTo moves every event of p from a to b as an export file would, and
// returns the file's bytes.
func exportTo(t *testing.T, a, b member, p event.ID) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := a.Export(context.Background(), p, &buf); err != nil {
		t.Fatal(err)
	}
	file := buf.Bytes()
	if _, err := b.Import(context.Background(), bytes.NewReader(file)); err != nil && !errors.Is(err, ErrNoKey) {
		t.Fatal(err)
	}
	return file
}

func do(t *testing.T, m member, p event.ID, op state.Op) *event.Event {
	t.Helper()
	res, err := m.Act(context.Background(), p, op, DoOptions{})
	if err != nil {
		t.Fatalf("%s: %T: %v", m.id.Name(), op, err)
	}
	return res.Event
}

// TestWireRevealsNothing runs a whole scenario between three members and
// scans every byte that left a member's machine (every export file) for
// what a relay must never learn: titles, bodies, comments, member names,
// role names, member IDs (in every form), the pursuance ID.
func TestWireRevealsNothing(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol := newMember(t, "Alicia Quartermaine"), newMember(t, "Bartholomew Finch"), newMember(t, "Carolina Oyelaran")
	c, err := charter.Template("desk")
	if err != nil {
		t.Fatal(err)
	}
	c.Name = "Harbour Street Desk"
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var wire [][]byte
	invite := func(to member, role string) {
		code, _, err := alice.Invite(ctx, p, role, 0, 1, DoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := alice.Export(ctx, p, &buf); err != nil {
			t.Fatal(err)
		}
		wire = append(wire, buf.Bytes())
		if err := to.Accept(code); err != nil {
			t.Fatal(err)
		}
		if _, err := to.Import(ctx, bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatal(err)
		}
		if _, err := to.Join(ctx, code, DoOptions{}); err != nil {
			t.Fatal(err)
		}
		wire = append(wire, exportTo(t, to, alice, p))
	}
	invite(bob, "researcher")
	invite(carol, "researcher")
	task := do(t, alice, p, &state.TaskCreate{Title: "Quarterly ledger of the shipping firm", Body: "Cross-check the invoices against the manifests"})
	do(t, alice, p, &state.TaskComment{Task: task.ID(), Text: "The manifests arrived by courier"})
	do(t, alice, p, &state.TaskAssign{Task: task.ID(), Assignee: bob.id.ID().String()})
	wire = append(wire, exportTo(t, alice, bob, p), exportTo(t, alice, carol, p))
	do(t, bob, p, &state.TaskComment{Task: task.ID(), Text: "Invoice fourteen is forged"})
	wire = append(wire, exportTo(t, bob, alice, p))
	if _, _, err := alice.AssignRole(ctx, p, carol.id.ID(), "editor", DoOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil {
		t.Fatal(err)
	}
	wire = append(wire, exportTo(t, alice, carol, p), exportTo(t, alice, bob, p))

	s, err := carol.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Task(task.ID()); !ok || len(s.Members()) != 2 {
		t.Fatalf("carol's replica did not follow: %d members", len(s.Members()))
	}

	secrets := []string{
		"Quarterly ledger", "Cross-check the invoices", "manifests arrived", "Invoice fourteen",
		"Alicia", "Bartholomew", "Carolina", "Quartermaine", "Harbour Street",
		"researcher", "editor",
	}
	var ids [][]byte
	for _, m := range []member{alice, bob, carol} {
		pk := m.id.ID()
		ids = append(ids, pk[:], []byte(pk.String()), []byte(hex.EncodeToString(pk[:])), m.id.Public().KEM.Bytes()[:32])
	}
	tid := task.ID()
	ids = append(ids, p[:], []byte(p.String()), tid[:])
	for i, file := range wire {
		for _, leak := range leaks(file, secrets, ids) {
			t.Errorf("file %d holds %s", i, leak)
		}
	}
	if len(wire) < 8 {
		t.Fatalf("only %d files scanned", len(wire))
	}
	// The control: the same scan of the events as stored (signed, outside
	// any envelope) finds every name and raw identifier, and the task
	// texts are in alice's state (so the scan is not vacuous). The texts
	// themselves are sealed even there: the content layer.
	var clear []byte
	if err := alice.Store().Iterate(ctx, p, func(e *event.Event) error {
		clear = e.AppendEncode(clear)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	raw := [][]byte{p[:], tid[:]}
	for _, m := range []member{alice, bob, carol} {
		pk := m.id.ID()
		raw = append(raw, pk[:])
	}
	names, texts := secrets[4:], secrets[:4]
	if got := leaks(clear, names, raw); len(got) != len(names)+len(raw) {
		t.Fatalf("the scan finds only %d of %d things in the clear log: %v", len(got), len(names)+len(raw), got)
	}
	if got := leaks(clear, texts, nil); len(got) != 0 {
		t.Errorf("the stored log holds task text in clear: %v", got)
	}
	as, err := alice.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	at, _ := as.Task(task.ID())
	var all strings.Builder
	all.WriteString(at.Title + at.Body)
	for _, c := range at.Comments {
		all.WriteString(c.Text)
	}
	if got := leaks([]byte(all.String()), texts, nil); len(got) != len(texts) {
		t.Fatalf("alice reads only %v of the task's texts", got)
	}
}

// leaks returns what of texts (in any case) and ids (their first 16
// bytes) occurs in b.
func leaks(b []byte, texts []string, ids [][]byte) []string {
	var out []string
	low := bytes.ToLower(b)
	for _, s := range texts {
		if bytes.Contains(low, bytes.ToLower([]byte(s))) {
			out = append(out, fmt.Sprintf("%q", s))
		}
	}
	for _, id := range ids {
		if bytes.Contains(b, id[:16]) {
			out = append(out, fmt.Sprintf("identifier %x", id[:16]))
		}
	}
	return out
}

// TestRemovedReadsNothingNew: a removed member, handed every later
// export, opens none of what was written after the re-key; it does see
// its own removal (sealed under a key it held).
func TestRemovedReadsNothingNew(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	if _, stale, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil || len(stale) > 0 {
		t.Fatalf("remove: %v %v", err, stale)
	}
	secret := do(t, alice, p, &state.TaskCreate{Title: "After Bob"})
	var buf bytes.Buffer
	if _, err := alice.Export(ctx, p, &buf); err != nil {
		t.Fatal(err)
	}
	res, err := bob.Import(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Unreadable == 0 {
		t.Fatal("bob opened everything")
	}
	if _, err := bob.Store().Get(ctx, secret.ID()); err == nil {
		t.Fatal("bob holds the task created after his removal")
	}
	s, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Member(bob.id.ID()); ok {
		t.Error("bob did not see his removal")
	}
	// Nothing bob holds opens the new generation.
	ring, err := bob.KeyRing(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := s.CurrentKey("")
	for _, h := range ring {
		if h.Update == cur.Update {
			t.Fatal("bob holds the group key made at his removal")
		}
	}
}

// deskOn founds a desk with m that publishes to relays (none: no relay).
func deskOn(t *testing.T, m member, relays ...string) event.ID {
	t.Helper()
	ctx := context.Background()
	c, _ := charter.Template("desk")
	p, err := m.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(relays) > 0 {
		if _, err := m.SetRelays(ctx, p, relays, nil, DoOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
