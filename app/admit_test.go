package app

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// appendJunk signs count events of size bytes of body each as key, on top
// of the heads m holds, and appends them to the relay under every group
// generation m holds: what a removed member, or the holder of an old
// invite code signing with a key of its own, can do with its old keys.
func appendJunk(t *testing.T, relayURL string, m member, key *identity.SigningKey, p event.ID, count, size int) []event.ID {
	t.Helper()
	ctx := context.Background()
	s, err := m.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	ch := event.Chain{Key: key, Pursuance: p}
	if bs, err := m.Store().VersionVector(ctx, p); err == nil && bs[key.Public()] > 0 {
		last, _ := m.Store().BySeq(ctx, p, key.Public(), bs[key.Public()])
		r := last[0].Ref()
		ch.Last = &r
	}
	heads, _ := m.Store().Heads(ctx, p)
	refs, _ := m.Store().Refs(ctx, heads)
	var parents []event.Ref
	for _, h := range heads {
		parents = append(parents, refs[h])
	}
	var ids []event.ID
	var encs [][]byte
	for range count {
		body := make([]byte, size)
		rand.Read(body)
		e, err := ch.Next(event.KindTaskComment, parents, uint64(timeNow().UnixMilli()), body)
		if err != nil {
			t.Fatal(err)
		}
		r := e.Ref()
		ch.Last, parents = &r, []event.Ref{r}
		ids = append(ids, e.ID())
		encs = append(encs, e.Encode())
	}
	c := relay.NewClient(relayURL, nil)
	for _, h := range s.Held() {
		if !h.Key.Scope.IsGroup() {
			continue
		}
		envs := newEnvelopesT(t, h)
		_, tk, _ := h.Key.Topic()
		for _, b := range encs {
			sealed, err := envs.Seal(b, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Append(ctx, envs.Topic(), tk, [][]byte{sealed}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ids
}

// TestJunkNotStored: a removed member appends 20 events of 400 KB each,
// signed and sealed under the generations it holds, to a topic the members
// still read (one of them has not written since the re-key); so does the
// holder of a used invite code, signing with a key of its own. Members
// read them and store none.
func TestJunkNotStored(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, rs, p := deskOnRelay(t, "Bob", "Carol")
	bob := rs[0]
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	dave := newMember(t, "Dave")
	if _, err := dave.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	eve := newMember(t, "Eve") // holds a copy of dave's code
	if err := eve.Accept(code); err != nil {
		t.Fatal(err)
	}
	mustSync(t, eve, p) // eve reads what the code opens
	if _, _, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	before, _ := alice.Store().Count(ctx, p)
	junk := appendJunk(t, relayURL, bob, bob.id.SigningKey(), p, 20, 400<<10)
	outsider, _ := identity.NewSigningKey(rand.Reader)
	junk = append(junk, appendJunk(t, relayURL, eve, outsider, p, 3, 1000)...)
	res := mustSync(t, alice, p)
	for _, id := range junk {
		if _, err := alice.Store().Get(ctx, id); err == nil {
			t.Fatalf("alice stored junk %s", id.Short())
		}
	}
	if after, _ := alice.Store().Count(ctx, p); after != before {
		t.Errorf("alice's log grew from %d to %d events (sync %+v)", before, after, res)
	}
}

// TestRefusedEventFetchedWhenNeeded: an event of bob's, written before he
// learned of his removal, is refused by alice (bob is removed in her view)
// but stored by carol, who had not seen the removal and builds on it; when
// carol's event reaches alice, alice fetches bob's from where she refused
// it, and the two logs agree.
func TestRefusedEventFetchedWhenNeeded(t *testing.T) {
	ctx := context.Background()
	_, alice, rs, p := deskOnRelay(t, "Bob", "Carol")
	bob, carol := rs[0], rs[1]
	task := do(t, alice, p, &state.TaskCreate{Title: "Shared", VisibleTo: []string{"researcher"}})
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	mustSync(t, carol, p)
	if _, _, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	bobs := do(t, bob, p, &state.TaskComment{Task: task.ID(), Text: "written before I knew"})
	mustSync(t, bob, p)   // reads his removal, and sends what he wrote before
	mustSync(t, alice, p) // reads bob's comment: refused
	if _, err := alice.Store().Get(ctx, bobs.ID()); err == nil {
		t.Fatal("alice stored the comment of a member she knows is removed")
	}
	// Carol had got bob's comment before the removal (from bob directly)
	// and comments on top of it.
	copyAll(t, bob, carol, p)
	top := do(t, carol, p, &state.TaskComment{Task: task.ID(), Text: "answering bob"})
	mustSync(t, carol, p)
	mustSync(t, alice, p)
	for _, e := range []*event.Event{bobs, top} {
		if _, err := alice.Store().Get(ctx, e.ID()); err != nil {
			t.Errorf("alice lacks %s once carol built on bob's comment: %v", e.ID().Short(), err)
		}
	}
	if !sameLog(t, alice, carol, p) {
		t.Error("alice's log differs from carol's")
	}
}

func mustState(t *testing.T, m member, p event.ID) *state.State {
	t.Helper()
	s, err := m.State(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newEnvelopesT(t *testing.T, h HeldKey) *keys.Envelopes {
	t.Helper()
	env, err := keys.NewEnvelopes(&h.Key)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestEmbeddedRelayRefusesRemovedMembersJunk: a node's embedded relay
// (relay.Config.Admit = Admitter.Admit, as pursuance up sets it) does not
// store what a removed member appends under the generations it still
// holds, nor envelopes that do not open; what members send it is stored.
func TestEmbeddedRelayRefusesRemovedMembersJunk(t *testing.T) {
	ctx := context.Background()
	_, alice, rs, p := deskOnRelay(t, "Bob", "Carol")
	bob, carol := rs[0], rs[1]
	st, err := relay.OpenSQLite(ctx, filepath.Join(t.TempDir(), "node.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	adm := NewAdmitter()
	ts := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Admit: adm.Admit}).Handler())
	defer ts.Close()
	node := ts.URL
	round := func() {
		t.Helper()
		if _, err := alice.Sync(ctx, p, SyncOptions{Relays: []string{node}, BeforePush: func(ctx context.Context) { adm.Update(ctx, alice.Node) }}); err != nil {
			t.Fatal(err)
		}
		if err := adm.Update(ctx, alice.Node); err != nil {
			t.Fatal(err)
		}
	}
	round()
	if _, _, err := alice.Remove(ctx, p, bob.id.ID(), DoOptions{}); err != nil {
		t.Fatal(err)
	}
	round()
	mustSync(t, bob, p)
	junk := appendJunk(t, node, bob, bob.id.SigningKey(), p, 5, 1000)
	// Carol, a member, still reaches the node's relay.
	note := do(t, carol, p, &state.TaskCreate{Title: "Through the node", VisibleTo: []string{"researcher"}})
	mustSync(t, carol, p, node)
	on := readable(t, node, alice, alice.id, p)
	for _, id := range junk {
		if on[id] {
			t.Errorf("the embedded relay stored the removed member's %s", id.Short())
		}
	}
	if !on[note.ID()] {
		t.Error("the embedded relay did not store a member's event")
	}
	// Garbage under a topic the node holds is refused too.
	s := mustState(t, alice, p)
	cur, _ := s.CurrentKey("")
	h := s.Held()[cur.Update]
	topic, tk, _ := h.Key.Topic()
	res, err := relay.NewClient(node, nil).Append(ctx, topic, tk, [][]byte{make([]byte, 1024)})
	if err != nil || res.Refused != 1 || res.Stored != 0 {
		t.Errorf("garbage on a known topic: %+v %v", res, err)
	}
}

// TestGarbageCollected: a newcomer's first sync cannot judge and stores
// what is on the topics its code opens, the junk of another holder of a
// code signing with a key of its own included; the sync then drops the
// bodies of what the rules can never accept, keeping the events, and the
// newcomer's state is what it would be with the bodies.
func TestGarbageCollected(t *testing.T) {
	ctx := context.Background()
	relayURL, alice, _, p := deskOnRelay(t)
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 2, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	eve := newMember(t, "Eve")
	eve.Accept(code)
	mustSync(t, eve, p)
	outsider, _ := identity.NewSigningKey(rand.Reader)
	junk := appendJunk(t, relayURL, eve, outsider, p, 3, 300<<10)
	bob := newMember(t, "Bob")
	if _, err := bob.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	s := mustState(t, bob, p)
	for _, id := range junk {
		e, err := bob.Store().Get(ctx, id)
		if err != nil {
			t.Fatalf("the newcomer did not keep the junk event %s itself: %v", id.Short(), err)
		}
		if e.HasBody() {
			t.Errorf("the newcomer kept the body of junk %s", id.Short())
		}
		if en, _ := s.Entry(id); en.Accepted || en.Reason == "" {
			t.Errorf("junk %s: %+v", id.Short(), en)
		}
	}
	if len(s.Garbage()) != 0 {
		t.Errorf("garbage left with bodies: %d", len(s.Garbage()))
	}
}
