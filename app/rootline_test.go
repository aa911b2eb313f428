package app

import (
	"context"
	"slices"
	"strings"
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

// TestDeviceRotatesOwnKey: alice's linked phone rotates its own signing
// key (id rotate on the phone, docs/devices.md §6.2): a replace signed by
// its old key, with a new member KEM key sealed to the laptop. Bob sees
// the phone's new key write for alice and its old key's events rejected;
// the laptop learns the new member KEM key. A pursuance the laptop
// founds afterwards carries the phone with its line (its first
// certificate and the replacement): the phone takes it up and writes
// there, and bob, invited, reads it as alice's.
func TestDeviceRotatesOwnKey(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	phone := linkDevice(t, alice, "phone", p)
	oldPhone := phone.id
	phone = rotateSigning(t, phone, false)
	if phone.id.ID() == oldPhone.ID() || !phone.IsDevice() || phone.Member() != alice.id.ID() {
		t.Fatalf("after the rotation the phone signs with %s for %s", phone.id.ID().Short(), phone.Member().Short())
	}
	mustSync(t, phone, p)
	vis := []string{"researcher", "editor"}
	after := do(t, phone, p, &state.TaskCreate{Title: "From the rotated phone", VisibleTo: vis})
	mustSync(t, phone, p)
	mustSync(t, bob, p)
	bs, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	cur := map[identity.PublicKey]bool{}
	for _, d := range bs.Devices(alice.id.ID()) {
		cur[d.Device] = !d.Revoked
	}
	if !cur[phone.id.ID()] || cur[oldPhone.ID()] {
		t.Fatalf("bob's view of alice's devices: %v (new %s, old %s)", cur, phone.id.ID().Short(), oldPhone.ID().Short())
	}
	if tk, _ := bs.Task(after.ID()); tk == nil || tk.Creator != alice.id.ID() || tk.Sealed {
		t.Fatalf("the rotated phone's task as bob reads it: %+v", tk)
	}
	// The phone's old key signs after the replace: rejected, as revoked.
	thief := newMemberWith(t, oldPhone)
	copyAll(t, phone, thief, p)
	res, err := thief.Act(ctx, p, &state.TaskCreate{Title: "Stolen phone", VisibleTo: vis}, DoOptions{Unchecked: true})
	if err != nil {
		t.Fatal(err)
	}
	copyAll(t, thief, bob, p)
	bs, _ = bob.State(ctx, p)
	if en, _ := bs.Entry(res.Event.ID()); en.Accepted || !strings.Contains(en.Reason, "revoked") {
		t.Fatalf("the old phone key's event at bob: %+v", en)
	}
	// The laptop learns the member's new KEM key from its box.
	mustSync(t, alice, p)
	as, err := alice.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := as.Member(alice.id.ID())
	if k, _ := alice.memberKEMs(); !k.Public().Equal(m.KEM) {
		t.Fatal("the laptop does not hold the member KEM key the phone's rotation published")
	}

	// A pursuance founded afterwards: the phone comes with its line.
	c, _ := charter.Template("desk")
	q, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetRelays(ctx, q, []string{relayURL}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	qs, err := alice.State(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	carried := false
	for _, d := range qs.Devices(alice.id.ID()) {
		if d.Device == phone.id.ID() && !d.Revoked {
			carried = true
		}
		if d.Device == oldPhone.ID() && !d.Revoked {
			t.Error("the phone's old key is a current device in the new pursuance")
		}
	}
	if !carried {
		t.Fatalf("the rotated phone is not a device in the new pursuance: %+v", qs.Devices(alice.id.ID()))
	}
	deviceRound(t, alice)
	if r := deviceRound(t, phone); !slices.Contains(r.Added, q) {
		t.Fatalf("the phone took up %v, want %s", r.Added, q.Short())
	}
	note := do(t, phone, q, &state.TaskCreate{Title: "Phone in the new desk"})
	mustSync(t, phone, q)
	code, _, err := alice.Invite(ctx, q, "editor", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, q)
	if _, err := bob.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	readsTask(t, bob, q, note, "Phone in the new desk")
}

// TestRotatedRootCertifiesItsDevices: alice's laptop (her root) links a
// phone, then rotates its key. A pursuance the laptop founds afterwards
// knows only the new key, so the phone's certificate (by the old key)
// does not count there; the laptop certifies the phone anew through the
// device mailbox, the phone adds its proof and publishes that add where
// it lacks one: it writes in the new pursuance, and the laptop reads it.
func TestRotatedRootCertifiesItsDevices(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, _, p := deskOnRelay(t)
	phone := linkDevice(t, alice, "phone", p)
	alice = rotateSigning(t, alice, false)
	mustSync(t, alice, p)
	mustSync(t, phone, p)
	c, _ := charter.Template("desk")
	q, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetRelays(ctx, q, []string{relayURL}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	deviceRound(t, alice)
	if r := deviceRound(t, phone); !slices.Contains(r.Added, q) {
		t.Fatalf("the phone took up %v, want %s", r.Added, q.Short())
	}
	mustSync(t, phone, q)
	qs, err := phone.State(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var dev *state.DeviceInfo
	for _, d := range qs.Devices(alice.Member()) {
		if d.Device == phone.id.ID() {
			dev = &d
		}
	}
	if dev == nil || dev.Revoked || dev.Parent != alice.id.ID() {
		t.Fatalf("the phone in the pursuance founded after the rotation: %+v (all %+v)", dev, qs.Devices(alice.Member()))
	}
	note := do(t, phone, q, &state.TaskCreate{Title: "Phone after the root's rotation"})
	mustSync(t, phone, q)
	mustSync(t, alice, q)
	readsTask(t, alice, q, note, "Phone after the root's rotation")
}
