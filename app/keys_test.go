package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/state"
)

// codeHolderOpens reports, for each event, whether eve, who holds a copy
// of an invite code and nothing else, opens its envelope in an export of
// alice's log (a relay's view) and its sealed content given the raw event
// (the strongest position a copy of the code can be in).
func codeHolderOpens(t *testing.T, alice, eve member, p event.ID, evs ...*event.Event) (envelope, content []bool) {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	if _, err := alice.Export(ctx, p, &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := eve.Import(ctx, bytes.NewReader(buf.Bytes())); err != nil && !errors.Is(err, ErrNoKey) {
		t.Fatal(err)
	}
	for _, e := range evs {
		_, err := eve.Store().Get(ctx, e.ID())
		envelope = append(envelope, err == nil)
	}
	copyAll(t, alice, eve, p)
	s, err := eve.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		got, err := eve.Store().Get(ctx, e.ID())
		if err != nil {
			t.Fatal(err)
		}
		content = append(content, tryEverything(t, eve, s, got))
	}
	return envelope, content
}

// TestUsedInviteCodeOpensNothingNew: once someone has joined with a code,
// a copy of the code opens nothing written afterwards — neither the
// envelope a relay carries nor the sealed content — while it still opens
// what was written before.
func TestUsedInviteCodeOpensNothingNew(t *testing.T) {
	ctx := context.Background()
	alice, bob, eve := newMember(t, "Alice"), newMember(t, "Bob"), newMember(t, "Eve")
	c, _ := charter.Template("desk")
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := eve.Accept(code); err != nil { // the copy
		t.Fatal(err)
	}
	before := do(t, alice, p, &state.TaskCreate{Title: "Before the join", VisibleTo: []string{"researcher"}})
	bob.Accept(code)
	copyAll(t, alice, bob, p)
	if _, err := bob.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	copyAll(t, bob, alice, p)
	after := do(t, alice, p, &state.TaskCreate{Title: "After the join", VisibleTo: []string{"researcher"}})
	env, content := codeHolderOpens(t, alice, eve, p, before, after)
	if !env[0] || !content[0] {
		t.Fatalf("the code opens what was written before the join: envelope %v, content %v; want both", env[0], content[0])
	}
	if env[1] || content[1] {
		t.Errorf("a copy of the used code opens what was written after the join: envelope %v, content %v", env[1], content[1])
	}
	// Bob, who joined with it, reads both.
	copyAll(t, alice, bob, p)
	bs, _ := bob.State(ctx, p)
	for _, e := range []*event.Event{before, after} {
		if tk, _ := bs.Task(e.ID()); tk == nil || tk.Sealed {
			t.Errorf("bob does not read %s: %+v", e.ID().Short(), tk)
		}
	}
}

// TestExpiredInviteCodeOpensNothingNew: a code nobody used opens nothing
// written after its invite expired.
func TestExpiredInviteCodeOpensNothingNew(t *testing.T) {
	ctx := context.Background()
	alice, eve := newMember(t, "Alice"), newMember(t, "Eve")
	now := time.Now()
	alice.opts.Now = func() time.Time { return now }
	c, _ := charter.Template("desk")
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := alice.Invite(ctx, p, "researcher", time.Hour, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eve.Accept(code)
	before := do(t, alice, p, &state.TaskCreate{Title: "Before the expiry", VisibleTo: []string{"researcher"}})
	now = now.Add(2 * time.Hour)
	after := do(t, alice, p, &state.TaskCreate{Title: "After the expiry", VisibleTo: []string{"researcher"}})
	env, content := codeHolderOpens(t, alice, eve, p, before, after)
	if !env[0] || !content[0] {
		t.Fatalf("the code opens what was written before the expiry: envelope %v, content %v; want both", env[0], content[0])
	}
	if env[1] || content[1] {
		t.Errorf("the expired code opens what was written after the expiry: envelope %v, content %v", env[1], content[1])
	}
}

// TestInviteMakesTheRoleKey: an invite into a role that has no key yet
// makes its first generation and seals it to the invite, so the newcomer
// reads what is written for the role before it joined, with the inviter
// offline since.
func TestInviteMakesTheRoleKey(t *testing.T) {
	ctx := context.Background()
	alice, bob := newMember(t, "Alice"), newMember(t, "Bob")
	c, _ := charter.Template("desk")
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := alice.State(ctx, p); func() bool { _, ok := s.CurrentKey("researcher"); return ok }() {
		t.Fatal("the researchers have a key before any invite")
	}
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	task := do(t, alice, p, &state.TaskCreate{Title: "For the researchers", VisibleTo: []string{"researcher"}})
	// Alice goes offline: bob has the log up to here and the code.
	bob.Accept(code)
	copyAll(t, alice, bob, p)
	if _, err := bob.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	bs, _ := bob.State(ctx, p)
	if tk, _ := bs.Task(task.ID()); tk == nil || tk.Title != "For the researchers" {
		t.Fatalf("bob, just joined, reads: %+v", tk)
	}
}

// newMemberWith is newMember with a given identity: a second home of it
// (a thief's copy of an old keystore, say).
func newMemberWith(t *testing.T, id *identity.Identity) member {
	t.Helper()
	dir := t.TempDir()
	if err := keystore.Create(dir, id, []byte("pw"), keystore.InsecureTestKDF, rand.Reader); err != nil {
		t.Fatal(err)
	}
	n, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Unlock(id); err != nil {
		t.Fatal(err)
	}
	return member{n, id}
}

// TestIdentityRotation: bob rotates his KEM key; his pursuance learns it
// (a member-key event) and every key that was sealed to the old one is
// rotated. A thief holding bob's old keystore opens what was written
// before, nothing written after; bob opens both, and the secrets his home
// kept from the invite code still open.
func TestIdentityRotation(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	before := do(t, alice, p, &state.TaskCreate{Title: "Before the rotation", VisibleTo: []string{"researcher"}})
	// A task bob reads as its assignee only: its content keys are boxed to
	// his KEM key.
	boxed := do(t, alice, p, &state.TaskCreate{Title: "For bob, boxed", VisibleTo: []string{"editor"}, Assignees: []string{bob.id.ID().String()}})
	copyAll(t, alice, bob, p)
	old := bob.id
	next, err := old.RotateKEM(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	left, err := bob.RotatedIdentity(ctx, next)
	if err != nil || len(left[p]) != 0 {
		t.Fatalf("rotated: %v %v", left, err)
	}
	bob.id = next
	copyAll(t, bob, alice, p)
	as, _ := alice.State(ctx, p)
	if m, _ := as.Member(bob.id.ID()); m == nil || !m.KEM.Equal(next.Public().KEM) {
		t.Fatal("alice does not know bob's new KEM key")
	}
	for _, role := range []string{"", "researcher"} {
		if st, _ := as.KeyStatus(role); len(st.Retired) != 0 || len(st.Stale) != 0 {
			t.Errorf("%q after bob's rotation: %+v", role, st)
		}
	}
	after := do(t, alice, p, &state.TaskCreate{Title: "After the rotation", VisibleTo: []string{"researcher"}})
	comment := do(t, alice, p, &state.TaskComment{Task: boxed.ID(), Text: "boxed to bob"})
	copyAll(t, alice, bob, p)

	thief := newMemberWith(t, old)
	copyAll(t, alice, thief, p)
	ts, err := thief.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	get := func(m member, e *event.Event) *event.Event {
		got, err := m.Store().Get(ctx, e.ID())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, e := range []*event.Event{before, boxed} {
		if !tryEverything(t, thief, ts, get(thief, e)) {
			t.Errorf("the old keystore does not open %s, sealed to it before the rotation", e.ID().Short())
		}
	}
	for _, e := range []*event.Event{after, comment} {
		if tryEverything(t, thief, ts, get(thief, e)) {
			t.Errorf("the old keystore opens %s, written after the rotation", e.ID().Short())
		}
	}
	bs, err := bob.State(ctx, p)
	if err != nil {
		t.Fatalf("bob's state (his kept secrets must open with a retired key too): %v", err)
	}
	for _, e := range []*event.Event{before, boxed, after} {
		if tk, _ := bs.Task(e.ID()); tk == nil || tk.Sealed {
			t.Errorf("bob does not read %s after rotating: %+v", e.ID().Short(), tk)
		}
	}
	if tk, _ := bs.Task(boxed.ID()); tk == nil || len(tk.Comments) != 1 {
		t.Errorf("bob does not read the comment boxed to his new key: %+v", tk)
	}
}

// TestForeignMemberKeyReported: a member-key of this member that this
// home did not make (its signing key used elsewhere) is reported by heal,
// not answered with another.
func TestForeignMemberKeyReported(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	elsewhere, err := bob.id.RotateKEM(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := newMemberWith(t, elsewhere)
	copyAll(t, bob, other, p)
	pub := elsewhere.Public()
	if _, err := other.Do(ctx, p, &state.MemberKey{KEM: pub.KEM.Bytes(), Binding: pub.KEMBinding[:]}, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	copyAll(t, other, bob, p)
	left, err := bob.HealKeys(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) == 0 || !strings.Contains(left[0], "not one this home holds") {
		t.Fatalf("heal left %q", left)
	}
	_ = alice
}
