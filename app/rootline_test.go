package app

import (
	"context"
	"testing"
	"time"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// checkRotatedMember checks, in s, that member is a member with role,
// writing with key as its root device, its member ID revoked.
func checkRotatedMember(t *testing.T, s *state.State, member, key identity.PublicKey, role string) {
	t.Helper()
	m, ok := s.Member(member)
	if !ok {
		t.Fatalf("%s is no member", member.Short())
	}
	if len(m.Roles) != 1 || m.Roles[0] != role {
		t.Errorf("roles %v, want [%s]", m.Roles, role)
	}
	if m.Root != key {
		t.Errorf("root device %s, want the rotated key %s", m.Root.Short(), key.Short())
	}
	for _, d := range s.Devices(member) {
		if d.Device == member && !d.Revoked {
			t.Error("the member ID (the replaced key) is a current device")
		}
	}
}

// TestRotatedRootFounds: alice rotates her signing key, then founds a
// pursuance; its genesis carries her root line (docs/devices.md §6.1).
// Bob joins and sees alice, by her member ID, as the founder; what she
// writes with her new key is hers; her old key is nobody here.
func TestRotatedRootFounds(t *testing.T) {
	ctx := context.Background()
	alice, bob := newMember(t, "Alice"), newMember(t, "Bob")
	old := alice.id.ID()
	alice = rotateSigning(t, alice, false)
	c, err := charter.Template("desk")
	if err != nil {
		t.Fatal(err)
	}
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatalf("a rotated root founds: %v", err)
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
	tk := do(t, alice, p, &state.TaskCreate{Title: "From the new key", VisibleTo: []string{"researcher"}})
	copyAll(t, alice, bob, p)
	bs, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	checkRotatedMember(t, bs, old, alice.id.ID(), "editor")
	if got, _ := bs.Task(tk.ID()); got == nil || got.Creator != old || got.Sealed {
		t.Errorf("alice's task as bob reads it: %+v", got)
	}
	if len(bs.Members()) != 2 {
		t.Errorf("%d members, want 2", len(bs.Members()))
	}
	// A second generation of the group key: which topics are retired
	// is worked out for a founder whose member ID signed nothing here.
	if _, err := alice.Rotate(ctx, p, "", DoOptions{}); err != nil {
		t.Fatal(err)
	}
	copyAll(t, alice, bob, p)
	if bs, err = bob.State(ctx, p); err != nil {
		t.Fatal(err)
	}
	if r := bs.Retired(uint64(time.Now().UnixMilli())); len(r) != 0 {
		t.Errorf("retired %v: alice has not written since the rotation", r)
	}
}

// TestRotatedRootJoins: alice rotates her signing key, then joins bob's
// pursuance with her root line: bob sees her by her member ID, and reads
// what she writes; she reads what bob seals to the group.
func TestRotatedRootJoins(t *testing.T) {
	ctx := context.Background()
	alice, bob := newMember(t, "Alice"), newMember(t, "Bob")
	old := alice.id.ID()
	alice = rotateSigning(t, alice, false)
	c, err := charter.Template("desk")
	if err != nil {
		t.Fatal(err)
	}
	p, err := bob.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := bob.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Accept(code); err != nil {
		t.Fatal(err)
	}
	copyAll(t, bob, alice, p)
	if _, err := alice.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatalf("a rotated root joins: %v", err)
	}
	copyAll(t, alice, bob, p)
	mine := do(t, alice, p, &state.TaskCreate{Title: "Alice's", VisibleTo: []string{"researcher"}})
	copyAll(t, alice, bob, p)
	bobs := do(t, bob, p, &state.TaskCreate{Title: "Bob's", VisibleTo: []string{"researcher"}})
	copyAll(t, bob, alice, p)
	bs, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	checkRotatedMember(t, bs, old, alice.id.ID(), "researcher")
	for _, x := range []struct {
		s  *state.State
		id event.ID
	}{{bs, mine.ID()}} {
		if got, _ := x.s.Task(x.id); got == nil || got.Creator != old || got.Sealed {
			t.Errorf("alice's task as bob reads it: %+v", got)
		}
	}
	as, err := alice.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := as.Task(bobs.ID()); got == nil || got.Sealed {
		t.Errorf("bob's task as alice reads it: %+v", got)
	}
}
