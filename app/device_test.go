package app

import (
	"context"
	"errors"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// readableBy returns the events m opens on the relay's topics of p, with
// the group keys m's own home holds.
func readableBy(t *testing.T, relayURL string, m member, p event.ID) map[event.ID]bool {
	t.Helper()
	ctx := context.Background()
	s, err := m.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	c := relay.NewClient(relayURL, nil)
	out := map[event.ID]bool{}
	for _, h := range s.Held() {
		if !h.Key.Scope.IsGroup() {
			continue
		}
		topic, _, err := h.Key.Topic()
		if err != nil {
			t.Fatal(err)
		}
		env, err := keys.NewEnvelopes(&h.Key)
		if err != nil {
			t.Fatal(err)
		}
		for after := uint64(0); ; {
			page, err := c.Read(ctx, topic, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Entries) == 0 {
				break
			}
			for _, en := range page.Entries {
				if b, err := env.Open(en.Envelope); err == nil {
					if e, err := event.Decode(b); err == nil {
						out[e.ID()] = true
					}
				}
				after = en.Cursor
			}
		}
	}
	return out
}

// linkDevice links a new home as a device of m, named name, through the
// relay: request, approve on m, accept (which fetches and publishes the
// add), then m syncs.
func linkDevice(t *testing.T, m member, name string, p event.ID) member {
	t.Helper()
	ctx := context.Background()
	d := newMember(t, name)
	req, err := d.RequestDevice(name)
	if err != nil {
		t.Fatal(err)
	}
	code, err := m.ApproveDevice(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(ctx context.Context, p event.ID) error {
		_, err := d.Sync(ctx, p, SyncOptions{PullOnly: true})
		return err
	}
	ps, err := d.AcceptDevice(ctx, code, fetch)
	if err != nil || len(ps) != 1 || ps[0] != p {
		t.Fatalf("accept: %v %v", ps, err)
	}
	mustSync(t, d, p)
	mustSync(t, m, p)
	return d
}

// TestDeviceWritesConcurrently: alice links her phone; laptop and phone
// each write a task without seeing the other's; bob sees both, from one
// member, and no equivocation.
func TestDeviceWritesConcurrently(t *testing.T) {
	ctx := context.Background()
	_, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	phone := linkDevice(t, alice, "phone", p)
	if !phone.IsDevice() || phone.Member() != alice.id.ID() {
		t.Fatalf("the phone speaks for %s, want alice", phone.Member().Short())
	}
	vis := []string{"researcher", "editor"}
	t1 := do(t, alice, p, &state.TaskCreate{Title: "From the laptop", VisibleTo: vis})
	t2 := do(t, phone, p, &state.TaskCreate{Title: "From the phone", VisibleTo: vis})
	mustSync(t, alice, p)
	mustSync(t, phone, p)
	mustSync(t, bob, p)
	s, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*event.Event{t1, t2} {
		tk, ok := s.Task(e.ID())
		if !ok || tk.Creator != alice.id.ID() || tk.Title == "" {
			t.Fatalf("bob's view of %s: %+v", e.ID().Short(), tk)
		}
	}
	if len(s.Members()) != 2 {
		t.Fatalf("bob sees %d members, want 2", len(s.Members()))
	}
	for _, en := range s.Log() {
		if !en.Accepted {
			t.Errorf("bob rejects %s %s: %s", en.Kind, en.ID.Short(), en.Reason)
		}
	}
	if ds, _ := alice.Devices(ctx); len(ds) != 2 {
		t.Fatalf("alice's devices: %+v", ds)
	}
}

// TestDeviceLinkedLaterReads: a device linked after the history was
// written reads it, keys sealed to the member's earlier KEM key included.
func TestDeviceLinkedLaterReads(t *testing.T) {
	ctx := context.Background()
	_, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	old := do(t, bob, p, &state.TaskCreate{Title: "Written before the phone", VisibleTo: []string{"researcher", "editor"}})
	mustSync(t, bob, p)
	mustSync(t, alice, p)
	phone := linkDevice(t, alice, "phone", p)
	s, err := phone.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if tk, ok := s.Task(old.ID()); !ok || tk.Title != "Written before the phone" {
		t.Fatalf("the phone reads %+v", tk)
	}
}

// TestDeviceRevokedReadsNothingNew: alice's laptop revokes her stolen
// phone: her KEM key changes and the keys are rotated; what bob writes
// afterwards the phone cannot read, and what the phone writes afterwards
// is rejected by bob.
func TestDeviceRevokedReadsNothingNew(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	phone := linkDevice(t, alice, "phone", p)
	before := do(t, bob, p, &state.TaskCreate{Title: "Before", VisibleTo: []string{"researcher", "editor"}})
	mustSync(t, bob, p)
	mustSync(t, phone, p)
	if as, _ := alice.State(ctx, p); len(as.Devices(alice.id.ID())) != 2 {
		for _, en := range as.Log() {
			t.Logf("%s %s %v %s", en.Kind, en.ID.Short(), en.Accepted, en.Reason)
		}
		t.Fatalf("alice's laptop sees devices %+v", as.Devices(alice.id.ID()))
	}
	if _, err := alice.RevokeDevice(ctx, phone.id.ID()); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	after := do(t, bob, p, &state.TaskCreate{Title: "After", VisibleTo: []string{"researcher", "editor"}})
	mustSync(t, bob, p)
	// The phone, still running, syncs and writes.
	late, err := phone.Do(ctx, p, &state.TaskCreate{Title: "From the stolen phone"}, DoOptions{Unchecked: true})
	if err != nil {
		t.Fatal(err)
	}
	phone.Sync(ctx, p, SyncOptions{})
	got := readableBy(t, relayURL, phone, p)
	if !got[before.ID()] {
		t.Error("the phone did not read what was written before its revocation")
	}
	if got[after.ID()] {
		t.Error("the revoked phone reads what bob wrote after the revocation")
	}
	// Its own state, with everything it holds, opens nothing new either.
	ps, _ := phone.State(ctx, p)
	if tk, ok := ps.Task(after.ID()); ok && tk.Title == "After" {
		t.Error("the revoked phone's state reads the new task")
	}
	copyAll(t, phone, bob, p)
	bs, _ := bob.State(ctx, p)
	if en, ok := bs.Entry(late.Event.ID()); !ok || en.Accepted {
		t.Errorf("bob accepts the revoked phone's write: %+v", en)
	}
	if tk, ok := bs.Task(after.ID()); !ok || tk.Title != "After" {
		t.Errorf("bob reads %+v", tk)
	}
	mustSync(t, alice, p)
	as, _ := alice.State(ctx, p)
	if tk, ok := as.Task(after.ID()); !ok || tk.Title != "After" {
		t.Errorf("alice's laptop, after the revocation, reads %+v", tk)
	}
}

// TestDeviceLearnsMemberKEM: the phone (linked from the laptop) links a
// tablet and revokes it; the revocation's new member KEM key reaches the
// laptop sealed to its own device key, so the laptop reads what bob
// seals to alice afterwards.
func TestDeviceLearnsMemberKEM(t *testing.T) {
	ctx := context.Background()
	_, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	phone := linkDevice(t, alice, "phone", p)
	tablet := linkDevice(t, phone, "tablet", p)
	mustSync(t, alice, p)
	if _, err := phone.RevokeDevice(ctx, tablet.id.ID()); err != nil {
		t.Fatal(err)
	}
	mustSync(t, phone, p)
	mustSync(t, bob, p)
	after := do(t, bob, p, &state.TaskCreate{Title: "After", VisibleTo: []string{"researcher", "editor"}})
	mustSync(t, bob, p)
	mustSync(t, alice, p)
	as, _ := alice.State(ctx, p)
	if tk, ok := as.Task(after.ID()); !ok || tk.Title != "After" {
		for _, en := range as.Log() {
			t.Logf("%s %s %v %s", en.Kind, en.ID.Short(), en.Accepted, en.Reason)
		}
		t.Errorf("the laptop reads %+v", tk)
	}
	m, _ := as.Member(alice.id.ID())
	if alice.memberKEMFor(m.KEM) == nil {
		t.Error("the laptop does not hold alice's new KEM key")
	}
	mustSync(t, tablet, p)
	ts, _ := tablet.State(ctx, p)
	if tk, ok := ts.Task(after.ID()); ok && tk.Title == "After" {
		t.Error("the revoked tablet reads the new task")
	}
}

// TestApprovalOpensOnlyForItsDevice: an approval code copied on its way
// (by another home that also asked to be a device) opens nothing there:
// it is sealed to the requesting device's KEM key.
func TestApprovalOpensOnlyForItsDevice(t *testing.T) {
	ctx := context.Background()
	_, alice, _, _ := deskOnRelay(t)
	phone, eve := newMember(t, "phone"), newMember(t, "eve")
	req, err := phone.RequestDevice("phone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eve.RequestDevice("eve"); err != nil {
		t.Fatal(err)
	}
	code, err := alice.ApproveDevice(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eve.AcceptDevice(ctx, code, func(context.Context, event.ID) error { return nil }); err == nil {
		t.Fatal("another home accepted the phone's approval")
	}
	if eve.IsDevice() {
		t.Fatal("eve's home became alice's device")
	}
}

// TestAcceptAgainResumes: an accept whose fetch failed (the relay was
// down) is run again with the same code and finishes: the device holds
// the pursuance and its add is in the log.
func TestAcceptAgainResumes(t *testing.T) {
	ctx := context.Background()
	_, alice, _, p := deskOnRelay(t)
	d := newMember(t, "phone")
	req, err := d.RequestDevice("phone")
	if err != nil {
		t.Fatal(err)
	}
	code, err := alice.ApproveDevice(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	down := func(context.Context, event.ID) error { return errors.New("relay down") }
	if _, err := d.AcceptDevice(ctx, code, down); err == nil {
		t.Fatal("an accept whose fetch failed reported success")
	}
	fetch := func(ctx context.Context, p event.ID) error {
		_, err := d.Sync(ctx, p, SyncOptions{PullOnly: true})
		return err
	}
	if _, err := d.AcceptDevice(ctx, code, fetch); err != nil {
		t.Fatalf("accepting again: %v", err)
	}
	mustSync(t, d, p)
	mustSync(t, alice, p)
	if ds, _ := alice.Devices(ctx); len(ds) != 2 {
		t.Fatalf("alice's devices: %+v", ds)
	}
}
