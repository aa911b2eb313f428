package app

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/internal/tor"
	"github.com/pursuance/pursuance/state"
)

// rotateSigning rotates m's signing key as `id rotate` does: the keystore
// first (keystore.RotateSigning), then, unless crash, the node reopened
// with the new identity publishes the replacement and the keystore drops
// the previous key. With crash it stops right after the keystore is
// written, as a process killed there would, and returns m closed.
func rotateSigning(t *testing.T, m member, crash bool) member {
	t.Helper()
	dir := m.home
	next, err := keystore.RotateSigning(dir, []byte("pw"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if crash {
		return member{m.Node, next}
	}
	return reopenFinish(t, dir)
}

// reopenFinish opens the home in dir with its keystore's identity and
// finishes a pending rotation, as the CLI does on opening a home.
func reopenFinish(t *testing.T, dir string) member {
	t.Helper()
	ctx := context.Background()
	id, err := keystore.Open(dir, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Open(ctx, dir, id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if !n.RotationPending() {
		return member{n, id}
	}
	if _, left, err := n.FinishRotation(ctx); err != nil {
		t.Fatalf("finishing the rotation: %v (left %v)", err, left)
	}
	settled, err := keystore.Settle(dir, []byte("pw"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Unlock(settled); err != nil {
		t.Fatal(err)
	}
	return member{n, settled}
}

// TestSigningKeyRotation: alice rotates her signing key (and KEM key).
// Bob sees a device replace signed by her old key; her later events,
// signed by the new key, are hers (same member, same role); an event
// signed by her old key after the replace is rejected, with the reason;
// and keys are sealed to her new KEM key.
func TestSigningKeyRotation(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	before := do(t, alice, p, &state.TaskCreate{Title: "Before the rotation", VisibleTo: []string{"researcher"}})
	copyAll(t, alice, bob, p)
	old := alice.id
	alice = rotateSigning(t, alice, false)
	if alice.id.ID() == old.ID() || alice.id.Member() != old.ID() || alice.Member() != old.ID() {
		t.Fatalf("after the rotation: key %s, member %s; want a new key for member %s", alice.id.ID().Short(), alice.Member().Short(), old.ID().Short())
	}
	if alice.RotationPending() || alice.id.PendingReplace() != nil {
		t.Fatal("the rotation is still pending after FinishRotation and Settle")
	}
	after := do(t, alice, p, &state.TaskCreate{Title: "After the rotation", VisibleTo: []string{"researcher"}})
	if after.Author != alice.id.ID() {
		t.Fatalf("alice's new event is signed by %s, want her new key", after.Author.Short())
	}
	copyAll(t, alice, bob, p)
	bs, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := bs.Member(old.ID())
	if !ok {
		t.Fatal("alice is no member after rotating")
	}
	if len(m.Roles) != 1 || m.Roles[0] != "editor" {
		t.Errorf("alice's roles after rotating: %v, want [editor]", m.Roles)
	}
	if m.Root != alice.id.ID() {
		t.Errorf("alice's root is %s, want her new key", m.Root.Short())
	}
	if !m.KEM.Equal(alice.id.KEMKey().Public()) {
		t.Error("bob does not know alice's new KEM key")
	}
	var replaced bool
	for _, d := range bs.Devices(old.ID()) {
		if d.Device == alice.id.ID() && d.Root && !d.Revoked {
			replaced = true
		}
		if d.Device == old.ID() && !d.Revoked {
			t.Error("alice's old key is still a current device")
		}
	}
	if !replaced {
		t.Fatalf("alice's new key is not her root: %+v", bs.Devices(old.ID()))
	}
	for _, e := range []*event.Event{before, after} {
		en, _ := bs.Entry(e.ID())
		tk, _ := bs.Task(e.ID())
		if !en.Accepted || tk == nil || tk.Sealed {
			t.Errorf("bob on %s: %+v, task %+v", e.ID().Short(), en, tk)
		}
	}
	if tk, _ := bs.Task(after.ID()); tk != nil && tk.Creator != old.ID() {
		t.Errorf("the task written with the new key is by %s, want alice's member ID", tk.Creator.Short())
	}
	// Alice's group key was sealed to her old KEM key: rotated since.
	if st, _ := bs.KeyStatus(""); len(st.Retired)+len(st.Stale) != 0 {
		t.Errorf("group key after alice's rotation: %+v", st)
	}

	// A thief with alice's old keystore signs after the replace: bob
	// rejects it, saying why.
	thief := newMemberWith(t, old)
	copyAll(t, alice, thief, p)
	// (A node address: it would point bob's node at the thief's.)
	forged := "http://" + tor.OnionAddress([32]byte{9})
	res, err := thief.Act(ctx, p, &state.NodeAddress{URL: forged}, DoOptions{Unchecked: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted {
		t.Fatal("the old key's own node accepted its event after the replace")
	}
	copyAll(t, thief, bob, p)
	bs, err = bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	en, ok := bs.Entry(res.Event.ID())
	if !ok || en.Accepted || !strings.Contains(en.Reason, "revoked") {
		t.Fatalf("bob on the old key's event: %+v, want rejected as revoked", en)
	}
	for _, a := range bs.NodeAddresses() {
		if a.URL == forged {
			t.Fatal("the forged node address is in force for bob")
		}
	}
}

// TestSigningKeyRotationCrash: the process stops right after the new
// keystore is written, before any replace is published. The next open of
// the home finds the pending key and publishes the replacement; bob then
// accepts what the new key signs. A second FinishRotation publishes
// nothing more.
func TestSigningKeyRotationCrash(t *testing.T) {
	ctx := context.Background()
	alice, bob, p := desk(t)
	dir := alice.home
	old := alice.id
	crashed := rotateSigning(t, alice, true)
	if crashed.id.PendingReplace() == nil {
		t.Fatal("the new keystore holds no pending key")
	}
	alice = reopenFinish(t, dir)
	if n := countKind(t, alice, p, event.KindDevice); n != 1 {
		t.Fatalf("%d device events after the restart, want 1 replace", n)
	}
	after := do(t, alice, p, &state.TaskCreate{Title: "After the restart", VisibleTo: []string{"researcher"}})
	copyAll(t, alice, bob, p)
	bs, err := bob.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if en, _ := bs.Entry(after.ID()); !en.Accepted {
		t.Fatalf("bob rejects the new key's event after the restart: %s", en.Reason)
	}
	if _, ok := bs.Member(old.ID()); !ok {
		t.Fatal("alice lost her membership")
	}
	// Idempotent: a pursuance with the replacement gets none again.
	if err := rawPending(t, alice, old); err != nil {
		t.Fatal(err)
	}
	published, _, err := alice.FinishRotation(ctx)
	if err != nil || len(published) != 0 {
		t.Fatalf("a second FinishRotation published in %d pursuances: %v", len(published), err)
	}
}

// countKind counts the events of kind k in p on m's store.
func countKind(t *testing.T, m member, p event.ID, k event.Kind) int {
	t.Helper()
	n := 0
	if err := m.Store().Iterate(context.Background(), p, func(e *event.Event) error {
		if e.Kind == k {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// rawPending makes m's node believe the rotation from old is pending
// again, as a keystore written before a crash would.
func rawPending(t *testing.T, m member, old *identity.Identity) error {
	t.Helper()
	id, err := m.id.WithHome(m.id.Member(), m.id.HomeSeed(), old.SigningKey())
	if err != nil {
		return err
	}
	m.id = id
	m.Node.id = id
	return nil
}
