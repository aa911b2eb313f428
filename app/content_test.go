package app

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// copyAll hands every event a holds of p to b directly, as if b had every
// ciphertext that ever crossed a relay opened to the envelope layer (the
// strongest position a member, or a former one, can be in).
func copyAll(t *testing.T, a, b member, p event.ID) {
	t.Helper()
	ctx := context.Background()
	var evs []*event.Event
	if err := a.Store().Iterate(ctx, p, func(e *event.Event) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.in.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
}

// desk founds a desk with alice as editor and bob as researcher.
func desk(t *testing.T) (alice, bob member, p event.ID) {
	t.Helper()
	ctx := context.Background()
	alice, bob = newMember(t, "Alice"), newMember(t, "Bob")
	c, err := charter.Template("desk")
	if err != nil {
		t.Fatal(err)
	}
	if p, err = alice.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Accept(code); err != nil {
		t.Fatal(err)
	}
	copyAll(t, alice, bob, p)
	if _, err := bob.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	copyAll(t, bob, alice, p)
	return alice, bob, p
}

// tryEverything tries every key m's state holds, and m's own KEM key, on
// every wrap and box of a sealed event: what a member with tools of its
// own (no client rules in the way) could do with its store.
func tryEverything(t *testing.T, m member, s *state.State, e *event.Event) bool {
	t.Helper()
	op, err := state.DecodeOp(e.Kind, e.Body())
	if err != nil {
		t.Fatal(err)
	}
	sealed := op.(*state.TaskSealed)
	ad := state.SealedAD(s.Pursuance(), e.Author, e.Seq)
	for _, h := range s.Held() {
		for _, w := range sealed.Wraps {
			if _, err := keys.UnwrapContentKey(&h.Key, ad, w.Key); err == nil {
				return true
			}
		}
	}
	kems := append(m.id.RetiredKEMKeys(), m.id.KEMKey())
	for _, b := range sealed.Boxes {
		for _, kem := range kems {
			if _, err := keys.OpenBox(kem, "content-key/v1/"+hex.EncodeToString(ad), b); err == nil {
				return true
			}
		}
	}
	return false
}

func TestRestrictedTaskUnreadable(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	secret := do(t, alice, p, &state.TaskCreate{Title: "Editors only", VisibleTo: []string{"editor"}})
	shared := do(t, alice, p, &state.TaskCreate{Title: "For everyone", VisibleTo: []string{"researcher"}})
	do(t, alice, p, &state.TaskComment{Task: secret.ID(), Text: "the source is in the ministry"})
	copyAll(t, alice, bob, p)

	s, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if tk, ok := s.Task(shared.ID()); !ok || tk.Title != "For everyone" {
		t.Fatalf("bob does not read the researchers' task: %+v", tk)
	}
	if tk, ok := s.Task(secret.ID()); !ok || !tk.Sealed || tk.Title != "" || len(tk.Comments) != 0 {
		t.Fatalf("bob's view of the editors' task: %+v", tk)
	}
	for _, tk := range s.Tasks() {
		if tk.ID == secret.ID() {
			t.Fatal("the editors' task is listed to bob")
		}
	}
	if s.SealedTasks() != 1 {
		t.Errorf("bob sees %d sealed tasks, want 1", s.SealedTasks())
	}
	// With every key bob holds and his own KEM key, nothing opens.
	for _, en := range s.Log() {
		if !en.Sealed {
			continue
		}
		e, err := bob.Store().Get(ctx, en.ID)
		if err != nil {
			t.Fatal(err)
		}
		opened := tryEverything(t, bob, s, e)
		if want := en.ID == shared.ID(); opened != want {
			t.Errorf("event %s (%s): opened %v, want %v", en.ID.Short(), en.Kind, opened, want)
		}
	}
	// Alice reads both.
	as, _ := alice.State(ctx, p)
	if tk, _ := as.Task(secret.ID()); tk.Title != "Editors only" || len(tk.Comments) != 1 {
		t.Fatalf("alice's view: %+v", tk)
	}
	if as.Hash() == s.Hash() {
		t.Error("bob's view equals alice's")
	}
}

func TestRemovedCannotDecryptLater(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	before := do(t, alice, p, &state.TaskCreate{Title: "Before", VisibleTo: []string{"researcher"}})
	if _, stale, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil || len(stale) > 0 {
		t.Fatalf("remove: %v %v", err, stale)
	}
	after := do(t, alice, p, &state.TaskCreate{Title: "After, for researchers", VisibleTo: []string{"researcher"}})
	everyone := do(t, alice, p, &state.TaskCreate{Title: "After, for everyone", VisibleTo: nil})
	do(t, alice, p, &state.TaskComment{Task: before.ID(), Text: "a comment after the removal"})
	copyAll(t, alice, bob, p) // every ciphertext, out of the envelopes
	s, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if tk, _ := s.Task(before.ID()); tk == nil || tk.Title != "Before" || len(tk.Comments) != 0 {
		t.Fatalf("bob's view of the task from before: %+v", tk)
	}
	for _, id := range []event.ID{after.ID(), everyone.ID()} {
		if tk, _ := s.Task(id); tk == nil || !tk.Sealed || tk.Title != "" {
			t.Errorf("bob reads %s: %+v", id.Short(), tk)
		}
	}
	for _, en := range s.Log() {
		if !en.Sealed || en.Lamport <= mustEntry(t, s, before.ID()).Lamport {
			continue
		}
		e, _ := bob.Store().Get(ctx, en.ID)
		if tryEverything(t, bob, s, e) {
			t.Errorf("bob opens %s, written after his removal", en.ID.Short())
		}
	}
}

func mustEntry(t *testing.T, s *state.State, id event.ID) state.Entry {
	t.Helper()
	en, ok := s.Entry(id)
	if !ok {
		t.Fatalf("no event %s", id.Short())
	}
	return en
}

// A member given a role later reads what was sealed to the role before:
// the role's key is re-keyed to it with the history chained.
func TestNewHolderReadsHistory(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	old := do(t, alice, p, &state.TaskCreate{Title: "Old editors' task", VisibleTo: []string{"editor"}})
	do(t, alice, p, &state.TaskComment{Task: old.ID(), Text: "old comment"})
	if _, stale, err := alice.AssignRole(ctx, p, bob.id.ID(), "editor", DoOptions{}); err != nil || len(stale) > 0 {
		t.Fatalf("assign: %v %v", err, stale)
	}
	copyAll(t, alice, bob, p)
	s, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if tk, _ := s.Task(old.ID()); tk == nil || tk.Title != "Old editors' task" || len(tk.Comments) != 1 {
		t.Fatalf("bob, now an editor, reads: %+v", tk)
	}
}

// An assignee outside the task's roles reads it from its assignment on
// (the assignment carries a brief), and writes to it sealed to the
// task's readers.
func TestAssigneeOutsideTheRoles(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	tk := do(t, alice, p, &state.TaskCreate{Title: "Check the invoices", Body: "all of them", VisibleTo: []string{"editor"}})
	do(t, alice, p, &state.TaskComment{Task: tk.ID(), Text: "before bob"})
	do(t, alice, p, &state.TaskAssign{Task: tk.ID(), Assignee: bob.id.ID().String()})
	copyAll(t, alice, bob, p)
	do(t, bob, p, &state.TaskComment{Task: tk.ID(), Text: "bob was here"})
	copyAll(t, bob, alice, p)
	bs, _ := bob.State(ctx, p)
	bt, _ := bs.Task(tk.ID())
	if bt.Title != "Check the invoices" || bt.Body != "all of them" || len(bt.Comments) != 1 || bt.Comments[0].Text != "bob was here" {
		t.Fatalf("bob's view: %+v", bt)
	}
	as, _ := alice.State(ctx, p)
	at, _ := as.Task(tk.ID())
	if len(at.Comments) != 2 || at.Comments[1].Text != "bob was here" {
		t.Fatalf("alice's view: %+v", at)
	}
	for _, en := range as.Log() {
		if !en.Accepted {
			t.Errorf("alice rejects %s %s: %s", en.Kind, en.ID.Short(), en.Reason)
		}
	}
}

// Under history: from-join, a new holder of a role reads nothing sealed to
// the role before it was given the role.
func TestFromJoinHidesHistory(t *testing.T) {
	ctx := context.Background()
	alice, bob := newMember(t, "Alice"), newMember(t, "Bob")
	c, _ := charter.Template("desk")
	c.Keys.History = charter.HistoryFromJoin
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	code, _, _ := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	bob.Accept(code)
	copyAll(t, alice, bob, p)
	if _, err := bob.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	copyAll(t, bob, alice, p)
	old := do(t, alice, p, &state.TaskCreate{Title: "Before bob", VisibleTo: []string{"editor"}})
	if _, left, err := alice.AssignRole(ctx, p, bob.id.ID(), "editor", DoOptions{}); err != nil || len(left) > 0 {
		t.Fatalf("assign: %v %v", err, left)
	}
	fresh := do(t, alice, p, &state.TaskCreate{Title: "After bob", VisibleTo: []string{"editor"}})
	copyAll(t, alice, bob, p)
	s, _ := bob.State(ctx, p)
	if tk, _ := s.Task(old.ID()); tk == nil || !tk.Sealed {
		t.Errorf("bob reads the editors' task from before his role: %+v", tk)
	}
	if tk, _ := s.Task(fresh.ID()); tk == nil || tk.Title != "After bob" {
		t.Errorf("bob does not read the editors' task from after: %+v", tk)
	}
}

// With a rotation period, the first member to act after it passes rotates
// the keys it may rotate.
func TestPeriodicRotation(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	_ = bob
	now := time.Now()
	alice.opts.Now = func() time.Time { return now }
	c, _ := charter.Template("desk")
	c.Name = "Desk"
	c.Keys.RotateEvery = 24 * 3600
	if _, err := alice.Act(ctx, p, charterAmend(t, c), DoOptions{}); err != nil {
		t.Fatal(err)
	}
	s, _ := alice.State(ctx, p)
	g0, _ := s.CurrentKey("")
	do(t, alice, p, &state.TaskCreate{Title: "a day later? no"})
	s, _ = alice.State(ctx, p)
	if g, _ := s.CurrentKey(""); g.Gen != g0.Gen {
		t.Fatalf("rotated before the period: %d -> %d", g0.Gen, g.Gen)
	}
	now = now.Add(25 * time.Hour)
	do(t, alice, p, &state.TaskCreate{Title: "a day later"})
	s, _ = alice.State(ctx, p)
	if g, _ := s.CurrentKey(""); g.Gen != g0.Gen+1 {
		t.Fatalf("not rotated after the period: %d -> %d", g0.Gen, g.Gen)
	}
	for _, role := range []string{"editor", "researcher"} {
		if s.RotationDue(role, uint64(now.UnixMilli())) {
			t.Errorf("%s still due", role)
		}
	}
}

func charterAmend(t *testing.T, c *charter.Charter) *state.CharterAmend {
	t.Helper()
	wire, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &state.CharterAmend{Charter: wire}
}

// A removal by a member who may not rotate a role's key leaves the key
// stale; the next holder to write under it rotates it first.
func TestStaleRoleRotatedBeforeWriting(t *testing.T) {
	ctx := context.Background()
	c, err := charter.Parse([]byte(`name: Cells
roles:
  - name: boss
    can: {remove-member: "*", invite: "*", assign-role: "*"}
  - name: cell
    can: {create-task: true, comment: any}
    task-visibility: [cell]
`))
	if err != nil {
		t.Fatal(err)
	}
	boss, carol, dan := newMember(t, "Boss"), newMember(t, "Carol"), newMember(t, "Dan")
	p, err := boss.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []member{carol, dan} {
		code, _, err := boss.Invite(ctx, p, "cell", 0, 1, DoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m.Accept(code)
		copyAll(t, boss, m, p)
		if _, err := m.Join(ctx, code, DoOptions{}); err != nil {
			t.Fatal(err)
		}
		copyAll(t, m, boss, p)
	}
	copyAll(t, boss, carol, p)
	copyAll(t, boss, dan, p)
	first := do(t, carol, p, &state.TaskCreate{Title: "Cell work"}) // the cell key's first generation
	copyAll(t, carol, dan, p)
	copyAll(t, carol, boss, p)
	_, left, err := boss.Remove(ctx, p, dan.id.ID(), DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || !strings.Contains(left[0], `"cell"`) {
		t.Fatalf("left stale: %v", left)
	}
	copyAll(t, boss, carol, p)
	s, _ := carol.State(ctx, p)
	st, _ := s.KeyStatus("cell")
	if len(st.Stale) != 1 || st.Stale[0] != dan.id.ID() {
		t.Fatalf("cell key status: %+v", st)
	}
	after := do(t, carol, p, &state.TaskCreate{Title: "After Dan"})
	s, _ = carol.State(ctx, p)
	if st, _ := s.KeyStatus("cell"); len(st.Stale) != 0 || st.Current.Gen != 2 {
		t.Fatalf("cell key after carol wrote: %+v", st)
	}
	copyAll(t, carol, dan, p)
	ds, _ := dan.State(ctx, p)
	if tk, _ := ds.Task(first.ID()); tk == nil || tk.Title != "Cell work" {
		t.Errorf("dan lost what he could read: %+v", tk)
	}
	if tk, _ := ds.Task(after.ID()); tk == nil || !tk.Sealed {
		t.Errorf("dan reads what the cell wrote after his removal: %+v", tk)
	}
}
