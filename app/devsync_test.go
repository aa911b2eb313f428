package app

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// mailboxFetch is the fetch a device mailbox round takes up pursuances
// with: a pull from their relays.
func mailboxFetch(m member) func(context.Context, event.ID) error {
	return func(ctx context.Context, p event.ID) error {
		_, err := m.Sync(ctx, p, SyncOptions{PullOnly: true})
		return err
	}
}

// deviceRound is one round as the CLI runs it: sync every pursuance
// (which also learns a new member KEM key), read the mailbox and sync what
// it took up, post.
func deviceRound(t *testing.T, m member) DeviceSyncResult {
	t.Helper()
	ctx := context.Background()
	ps, err := m.Pursuances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		mustSync(t, m, p.ID)
	}
	res, err := m.ReadDeviceMailbox(ctx, mailboxFetch(m))
	if err != nil {
		t.Fatalf("%s reads the device mailbox: %v", m.id.Name(), err)
	}
	for _, p := range res.Added {
		mustSync(t, m, p)
	}
	posted, err := m.PostDeviceMailbox(ctx)
	if err != nil {
		t.Fatalf("%s posts to the device mailbox: %v", m.id.Name(), err)
	}
	res.Posted = posted
	return res
}

// readsTask checks that m lists q and reads the task e of it.
func readsTask(t *testing.T, m member, q event.ID, e *event.Event, title string) {
	t.Helper()
	ctx := context.Background()
	ps, err := m.Pursuances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ps, func(s Summary) bool { return s.ID == q }) {
		t.Fatalf("%s does not list %s", m.id.Name(), q.Short())
	}
	s, err := m.State(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if tk, ok := s.Task(e.ID()); !ok || tk.Title != title {
		t.Fatalf("%s reads %+v in %s, want %q", m.id.Name(), tk, q.Short(), title)
	}
}

// TestDeviceMailboxJoin: alice links her phone, then joins bob's new
// pursuance on the laptop; after a round on each, the phone lists it,
// reads it, is a device of alice there and writes in it.
// deskJoined has host found a desk on the relay, invite guest as role and
// take in its join: the pursuance both are members of.
func deskJoined(t *testing.T, relayURL string, host, guest member, role string) event.ID {
	t.Helper()
	ctx := context.Background()
	c, _ := charter.Template("desk")
	q, err := host.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.SetRelays(ctx, q, []string{relayURL}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	code, _, err := host.Invite(ctx, q, role, 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, host, q)
	if _, err := guest.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, host, q)
	return q
}

func TestDeviceMailboxJoin(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	phone := linkDevice(t, alice, "phone", p)
	deviceRound(t, alice)
	deviceRound(t, phone)

	q := deskJoined(t, relayURL, bob, alice, "editor")
	// The laptop carried the phone's certificate into q with its join.
	if bs, _ := bob.State(ctx, q); !slices.ContainsFunc(bs.Devices(alice.id.ID()), func(d state.DeviceInfo) bool { return d.Device == phone.id.ID() }) {
		t.Fatalf("bob does not see the phone as alice's device in %s (%d devices)", q.Short(), len(bs.Devices(alice.id.ID())))
	}
	note := do(t, bob, q, &state.TaskCreate{Title: "Bob's news", VisibleTo: []string{"researcher", "editor"}})
	mustSync(t, bob, q)
	if r := deviceRound(t, alice); !r.Posted {
		t.Fatal("the laptop did not post its new list")
	}
	if r := deviceRound(t, phone); !slices.Contains(r.Added, q) {
		t.Fatalf("the phone took up %v, want %s", r.Added, q.Short())
	}
	readsTask(t, phone, q, note, "Bob's news")
	s, _ := phone.State(ctx, q)
	if !slices.ContainsFunc(s.Devices(alice.id.ID()), func(d state.DeviceInfo) bool { return d.Device == phone.id.ID() && !d.Revoked }) {
		t.Fatalf("the phone is no device of alice in %s: %+v", q.Short(), s.Devices(alice.id.ID()))
	}
	mine := do(t, phone, q, &state.TaskCreate{Title: "From the phone", VisibleTo: []string{"researcher", "editor"}})
	mustSync(t, phone, q)
	mustSync(t, bob, q)
	bs, _ := bob.State(ctx, q)
	if tk, ok := bs.Task(mine.ID()); !ok || tk.Creator != alice.id.ID() {
		t.Fatalf("bob's view of the phone's task: %+v", tk)
	}
	// A second round takes up nothing again.
	if r := deviceRound(t, phone); len(r.Added) != 0 {
		t.Fatalf("the phone took up %v again", r.Added)
	}
}

// TestDeviceMailboxFound: alice links her phone, then founds a pursuance
// on the laptop; the phone, after a round, lists and reads it.
func TestDeviceMailboxFound(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, _, p := deskOnRelay(t, "Bob")
	phone := linkDevice(t, alice, "phone", p)
	c, _ := charter.Template("desk")
	q, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetRelays(ctx, q, []string{relayURL}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	first := do(t, alice, q, &state.TaskCreate{Title: "Founded on the laptop", VisibleTo: []string{"editor"}})
	deviceRound(t, alice)
	if r := deviceRound(t, phone); !slices.Contains(r.Added, q) {
		t.Fatalf("the phone took up %v, want %s", r.Added, q.Short())
	}
	readsTask(t, phone, q, first, "Founded on the laptop")
}

// TestDeviceMailboxRevoked: after alice revokes her phone, what the
// laptop posts goes to a mailbox the phone neither finds nor opens: a
// pursuance alice founds afterwards never reaches it, while her tablet
// (linked from the laptop and not revoked) takes it up.
func TestDeviceMailboxRevoked(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, _, p := deskOnRelay(t, "Bob")
	phone := linkDevice(t, alice, "phone", p)
	tablet := linkDevice(t, alice, "tablet", p)
	deviceRound(t, alice)
	deviceRound(t, phone)
	deviceRound(t, tablet)
	if _, err := alice.RevokeDevice(ctx, phone.id.ID()); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	c, _ := charter.Template("desk")
	q, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetRelays(ctx, q, []string{relayURL}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	deviceRound(t, alice)
	if r := deviceRound(t, phone); len(r.Added) != 0 {
		t.Fatalf("the revoked phone took up %v", r.Added)
	}
	if ps, _ := phone.Pursuances(ctx); len(ps) != 1 {
		t.Fatalf("the revoked phone holds %d pursuances, want 1", len(ps))
	}
	// Its mailbox key is the old one: the laptop's new list is not there.
	_, old := phone.mailboxKEM()
	_, cur := alice.mailboxKEM()
	if old == cur {
		t.Fatal("the revocation left the mailbox key as it was")
	}
	if r := deviceRound(t, tablet); !slices.Contains(r.Added, q) {
		t.Fatalf("the tablet took up %v, want %s", r.Added, q.Short())
	}
	// Nor can the revoked phone ask the laptop to join anything.
	bob := newMember(t, "Bob2")
	r, err := bob.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SetRelays(ctx, r, []string{relayURL}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	code, _, err := bob.Invite(ctx, r, "editor", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, bob, r)
	if err := phone.AskJoin(ctx, code); err != nil {
		t.Fatal(err)
	}
	deviceRound(t, phone)
	deviceRound(t, alice)
	if _, err := alice.State(ctx, r); err == nil {
		t.Fatal("the laptop joined at the revoked phone's ask")
	}
}

// TestDeviceMailboxIgnoresForgeries: whoever holds the topic key of the
// phone's mailbox on the relay (the relay itself writes what it likes)
// appends an entry naming bob's pursuance, sealed under another member
// KEM key, and garbage; the phone takes up nothing and reports nothing.
func TestDeviceMailboxIgnoresForgeries(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	phone := linkDevice(t, alice, "phone", p)
	c, _ := charter.Template("desk")
	q, err := bob.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SetRelays(ctx, q, []string{relayURL}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, bob, q)
	kem, _ := phone.mailboxKEM()
	k, env, err := phone.mailbox(kem, relayURL)
	if err != nil {
		t.Fatal(err)
	}
	_, sk, _ := k.Topic()
	wrongKEM, _ := identity.NewKEMPrivateKey(rand.Reader)
	wk, _ := MailboxKey(alice.id.ID(), wrongKEM, relayURL)
	wenv, _ := keys.NewEnvelopes(&wk)
	pt, _ := cbor.Marshal(mailboxEntry{Member: alice.id.ID(), From: bob.id.ID(), Pursuances: []approvedPursuit{{ID: q, Relays: []string{relayURL}}}})
	forged, err := wenv.Seal(pt, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, keys.Buckets()[0])
	rand.Read(garbage)
	if _, err := relay.NewClient(relayURL, nil).Append(ctx, env.Topic(), sk, [][]byte{forged, garbage}); err != nil {
		t.Fatal(err)
	}
	if r := deviceRound(t, phone); len(r.Added) != 0 {
		t.Fatalf("the phone took up %v from forged entries", r.Added)
	}
	if ps, _ := phone.Pursuances(ctx); len(ps) != 1 {
		t.Fatalf("the phone holds %d pursuances, want 1", len(ps))
	}
}

// TestDeviceMailboxDeepTree: alice's tablet was linked from her phone,
// not from the laptop. The laptop joins bob's new pursuance and carries
// both certificates there, the phone's first; the tablet, whose round
// comes before the phone's, takes it up and writes as alice.
func TestDeviceMailboxDeepTree(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	phone := linkDevice(t, alice, "phone", p)
	tablet := linkDevice(t, phone, "tablet", p)
	mustSync(t, alice, p)
	q := deskJoined(t, relayURL, bob, alice, "editor") // bob has re-keyed after the join
	deviceRound(t, alice)
	if r := deviceRound(t, tablet); !slices.Contains(r.Added, q) {
		t.Fatalf("the tablet took up %v, want %s", r.Added, q.Short())
	}
	mine := do(t, tablet, q, &state.TaskCreate{Title: "From the tablet", VisibleTo: []string{"editor"}})
	mustSync(t, tablet, q)
	mustSync(t, bob, q)
	bs, _ := bob.State(ctx, q)
	if tk, ok := bs.Task(mine.ID()); !ok || tk.Creator != alice.id.ID() {
		t.Fatalf("bob's view of the tablet's task: %+v", tk)
	}
	if n := len(bs.Devices(alice.id.ID())); n != 3 {
		t.Fatalf("bob sees %d devices of alice in %s, want 3", n, q.Short())
	}
}

// TestDeviceAsksRootToJoin: the phone, a linked device, cannot join
// itself; it asks the laptop (the root) through the mailbox. The laptop
// joins at its next round and the phone takes the pursuance up at its
// next, reading bob's task; the ask is then answered and gone. An ask
// with a code that is used up comes back with the root's reason.
func TestDeviceAsksRootToJoin(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	phone := linkDevice(t, alice, "phone", p)
	c, _ := charter.Template("desk")
	q, err := bob.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SetRelays(ctx, q, []string{relayURL}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	code, _, err := bob.Invite(ctx, q, "editor", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	note := do(t, bob, q, &state.TaskCreate{Title: "Bob's news", VisibleTo: []string{"editor"}})
	mustSync(t, bob, q)
	if _, err := phone.Join(ctx, code, DoOptions{}); err == nil {
		t.Fatal("the phone joined by itself")
	}
	if err := phone.AskJoin(ctx, code); err != nil {
		t.Fatal(err)
	}
	deviceRound(t, phone)
	deviceRound(t, alice)
	if s, err := alice.State(ctx, q); err != nil {
		t.Fatalf("the laptop did not join: %v", err)
	} else if _, ok := s.Member(alice.id.ID()); !ok {
		t.Fatal("the laptop holds q but alice is no member")
	}
	mustSync(t, bob, q)
	deviceRound(t, alice)
	if r := deviceRound(t, phone); !slices.Contains(r.Added, q) {
		t.Fatalf("the phone took up %v, want %s", r.Added, q.Short())
	}
	readsTask(t, phone, q, note, "Bob's news")
	if a := phone.Asked(); len(a) != 0 {
		t.Fatalf("the phone still waits for %d joins", len(a))
	}

	// A code of another pursuance, which carol used up already.
	r, err := bob.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SetRelays(ctx, r, []string{relayURL}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	code2, _, err := bob.Invite(ctx, r, "editor", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, bob, r)
	carol := newMember(t, "Carol")
	if _, err := carol.Join(ctx, code2, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, bob, r)
	if err := phone.AskJoin(ctx, code2); err != nil {
		t.Fatal(err)
	}
	deviceRound(t, phone)
	deviceRound(t, alice)
	mustSync(t, phone, p)
	if _, err := phone.ReadDeviceMailbox(ctx, mailboxFetch(phone)); err == nil || !strings.Contains(err.Error(), "your root home could not join") {
		t.Fatalf("the phone's round says %v, want the root's reason", err)
	}
	if a := phone.Asked(); len(a) != 0 {
		t.Fatalf("the phone still waits for %d joins", len(a))
	}
}

// TestDeviceAsksRootToFound: a linked phone cannot found by itself; it
// asks the laptop (the root) through the device mailbox, which founds at
// its next round with the phone's charter and relays; the pursuance comes
// back to the phone, which reads and writes there; bob, invited by the
// laptop, reads what the phone writes as alice's. A charter the root
// cannot found with comes back as the root's reason.
func TestDeviceAsksRootToFound(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, rs, p := deskOnRelay(t, "Bob")
	bob := rs[0]
	phone := linkDevice(t, alice, "phone", p)
	c, _ := charter.Template("collective")
	c.Name = "Phone Club"
	if _, err := phone.Create(ctx, c); err == nil {
		t.Fatal("the phone founded by itself")
	}
	if err := phone.AskFound(ctx, c, nil); err == nil {
		t.Fatal("the phone asked to found with no relay to take it up from")
	}
	if err := phone.AskFound(ctx, c, []string{relayURL}); err != nil {
		t.Fatal(err)
	}
	if a := phone.Asked(); len(a) != 1 || a[0] != "found Phone Club" {
		t.Fatalf("the phone waits for %q", a)
	}
	deviceRound(t, phone)
	deviceRound(t, alice)
	var q event.ID
	ps, err := alice.Pursuances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ps {
		if s.Name == "Phone Club" {
			q = s.ID
		}
	}
	if q.IsZero() {
		t.Fatalf("the laptop founded nothing: %+v", ps)
	}
	deviceRound(t, alice) // posts the answer and its list
	if r := deviceRound(t, phone); !slices.Contains(r.Added, q) {
		t.Fatalf("the phone took up %v, want %s", r.Added, q.Short())
	}
	if a := phone.Asked(); len(a) != 0 {
		t.Fatalf("the phone still waits for %q", a)
	}
	// The root's next rounds found nothing more.
	deviceRound(t, alice)
	ps2, _ := alice.Pursuances(ctx)
	if len(ps2) != len(ps) {
		t.Fatalf("the laptop holds %d pursuances after its next round, had %d", len(ps2), len(ps))
	}
	s, err := phone.State(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := s.Member(alice.id.ID()); !ok || len(m.Roles) != 1 || m.Roles[0] != c.FounderRole() {
		t.Fatalf("alice in the phone's copy: %+v", m)
	}
	// The phone writes there, as alice; bob joins and reads it.
	mustSync(t, phone, q) // its own add, published at its round
	note := do(t, phone, q, &state.TaskCreate{Title: "From the phone"})
	mustSync(t, phone, q)
	code, _, err := alice.Invite(ctx, q, c.FounderRole(), 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, q)
	if _, err := bob.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	readsTask(t, bob, q, note, "From the phone")
	bs, _ := bob.State(ctx, q)
	if tk, _ := bs.Task(note.ID()); tk == nil || tk.Creator != alice.id.ID() {
		t.Fatalf("the phone's task as bob reads it: %+v", tk)
	}
}
