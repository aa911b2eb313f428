package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/relay/relaytest"
	"github.com/pursuance/pursuance/state"
)

// linkedDesks founds two desks on one test relay: A (alice, editor) and
// B (erin, editor; fay, researcher), and links A's editors to B's
// researchers.
func linkedDesks(t *testing.T, relayURL string) (alice, erin, fay member, a, b event.ID, code LinkCode) {
	t.Helper()
	ctx := context.Background()
	found := func(m member) event.ID {
		p := deskOn(t, m, relayURL)
		mustSync(t, m, p)
		return p
	}
	alice, erin, fay = newMember(t, "Alice"), newMember(t, "Erin"), newMember(t, "Fayette")
	a, b = found(alice), found(erin)
	inv, _, err := erin.Invite(ctx, b, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, erin, b)
	if _, err := fay.Join(ctx, inv, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, erin, b)
	mustSync(t, fay, b)
	code, res, err := alice.LinkCreate(ctx, a, b, []string{"editor"}, DoOptions{})
	if err != nil || !res.Accepted {
		t.Fatalf("link create: %v %+v", err, res)
	}
	mustSync(t, alice, a)
	parsed, err := ParseLinkCode(code.String())
	if err != nil || parsed.Pursuance != a || !parsed.Secret.Equal(code.Secret) || len(parsed.Relays) != 1 {
		t.Fatalf("the code does not read back: %v %+v", err, parsed)
	}
	if _, _, err := erin.LinkAccept(ctx, b, parsed, "researcher", DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, erin, b)
	mustSync(t, alice, a)
	mustSync(t, fay, b)
	return alice, erin, fay, a, b, code
}

// TestHandoffOverRelays: alice hands a task of A to B over a relay; B's
// members receive it as a task for researchers whose origin is verified
// (each folding A's authority history from the link's channel), work it
// and report back; alice sees the report verified. Then erin ends the
// link: alice's next hand-off is refused.
func TestHandoffOverRelays(t *testing.T) {
	ctx := context.Background()
	relayURL, _ := testRelay(t)
	alice, erin, fay, a, b, _ := linkedDesks(t, relayURL)
	links, err := alice.Links(ctx, a)
	if err != nil || len(links) != 1 || links[0].Direction != "out" || links[0].State != "open" || links[0].Name != "Desk" || links[0].Pursuance != b.String() {
		t.Fatalf("alice's links: %v %+v", err, links)
	}
	task := do(t, alice, a, &state.TaskCreate{Title: "Check the leak", Body: "the files", Due: "2026-12-31", VisibleTo: []string{"editor"}})
	hr, res, err := alice.Handoff(ctx, a, task.ID().String(), b, DoOptions{})
	if err != nil || !res.Accepted || hr.Task != task.ID().String() {
		t.Fatalf("hand-off: %v %+v %+v", err, res, hr)
	}
	mustSync(t, alice, a)
	r := mustSync(t, fay, b)
	if r.Links.Receives != 1 {
		t.Fatalf("fay received %d hand-offs, want 1 (%+v)", r.Links.Receives, r.Links)
	}
	mustSync(t, erin, b)
	h, _ := event.ParseID(hr.Handoff)
	for _, m := range []member{fay, erin} {
		s, _ := m.State(ctx, b)
		tk, ok := s.Task(h)
		if !ok || tk.Title != "Check the leak" || tk.Body != "the files" || tk.Due != "2026-12-31" {
			t.Fatalf("%s: the received task: %+v", m.id.Name(), tk)
		}
		o, err := m.TaskOrigin(ctx, s, tk)
		if err != nil || o.Verdict != state.Verified || o.Role != "editor" || o.SenderName != "Alice" || o.Pursuance != a.String() {
			t.Fatalf("%s: origin %v %+v", m.id.Name(), err, o)
		}
	}
	done := state.StatusDone
	if _, err := fay.Report(ctx, b, hr.Handoff, &done, "real", DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, fay, b)
	mustSync(t, alice, a)
	as, _ := alice.State(ctx, a)
	at, _ := as.Task(task.ID())
	hv, err := alice.TaskHandoffs(ctx, as, at)
	if err != nil || len(hv) != 1 || !hv[0].Received || hv[0].Verdict != state.Verified || len(hv[0].Reports) != 1 {
		t.Fatalf("alice's view of the hand-off: %v %+v", err, hv)
	}
	if rp := hv[0].Reports[0]; rp.Status != "Done" || rp.Comment != "real" || rp.Verdict != state.Verified || rp.Name != "Fayette" {
		t.Fatalf("the report as alice sees it: %+v", rp)
	}
	// B ends the link: a later hand-off is refused by alice's own client.
	bl, _ := erin.Links(ctx, b)
	if _, err := erin.LinkEnd(ctx, b, bl[0].Link[:8], DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, erin, b)
	mustSync(t, alice, a)
	if links, _ := alice.Links(ctx, a); links[0].State != "ended" || links[0].EndedBy != "there" {
		t.Fatalf("alice's link after erin ended it: %+v", links[0])
	}
	_, _, err = alice.Handoff(ctx, a, task.ID().String(), b, DoOptions{})
	if !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("a hand-off after B ended the link: %v, want refused", err)
	}
}

// TestLinkRelayWithholdsHistory: the relay carrying a link's channel hides
// from B the event of A that made bob an editor, which bob's hand-off
// follows. B receives the hand-off (it is on the channel) but shows its
// origin pending, waiting for A's history, never verified; once the relay
// serves the event, verified.
func TestLinkRelayWithholdsHistory(t *testing.T) {
	ctx := context.Background()
	url, adv := badRelay(t)
	alice, _, fay, a, b, code := linkedDesks(t, url)
	bob := newMember(t, "Bob")
	inv, _, err := alice.Invite(ctx, a, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, a)
	if _, err := bob.Join(ctx, inv, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, a)
	promote := do(t, alice, a, &state.RoleAssign{Member: bob.id.ID(), Role: "editor"})
	mustSync(t, alice, a)
	mustSync(t, bob, a)
	ch := code.Secret.Channel()
	env, err := keys.NewEnvelopes(&ch)
	if err != nil {
		t.Fatal(err)
	}
	adv.Set(relaytest.Withhold, func(e relay.Entry) bool {
		b, err := env.Open(e.Envelope)
		if err != nil {
			return false
		}
		ev, err := event.Decode(b)
		return err == nil && ev.ID() == promote.ID()
	})
	task := do(t, bob, a, &state.TaskCreate{Title: "Behind a withheld role", VisibleTo: []string{"editor"}})
	hr, _, err := bob.Handoff(ctx, a, task.ID().String(), b, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, bob, a)
	origin := func() *OriginView {
		t.Helper()
		mustSync(t, fay, b)
		s, _ := fay.State(ctx, b)
		h, _ := event.ParseID(hr.Handoff)
		tk, ok := s.Task(h)
		if !ok {
			t.Fatal("fay has not received the hand-off")
		}
		o, err := fay.TaskOrigin(ctx, s, tk)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	for range 2 {
		if o := origin(); o.Verdict != state.Pending || !strings.Contains(o.Reason, "causal past") {
			t.Fatalf("with A's history withheld: %s (%s), want pending", o.Verdict, o.Reason)
		}
	}
	adv.Set(relaytest.Honest, nil)
	if o := origin(); o.Verdict != state.Verified || o.Role != "editor" || o.SenderName != "Bob" {
		t.Fatalf("once the relay is honest: %+v, want verified", o)
	}
}

// TestHandoffConcurrentWithRemoval: alice removes bob while bob, who has
// not seen it, hands a task off. Every replica of A and B ends up holding
// the hand-off and marking it invalid: A's members store it although its
// author is no longer a member (it did not see its removal), through the
// link's channel if not from A's own topics.
func TestHandoffConcurrentWithRemoval(t *testing.T) {
	ctx := context.Background()
	relayURL, _ := testRelay(t)
	alice, erin, _, a, b, _ := linkedDesks(t, relayURL)
	bob := newMember(t, "Bob")
	inv, _, err := alice.Invite(ctx, a, "editor", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, a)
	if _, err := bob.Join(ctx, inv, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, bob, a)
	mustSync(t, alice, a)
	mustSync(t, bob, a)
	task := do(t, bob, a, &state.TaskCreate{Title: "A second lead", VisibleTo: []string{"editor"}})
	mustSync(t, bob, a)
	mustSync(t, alice, a)
	if _, _, err := alice.Remove(ctx, a, bob.id.ID(), DoOptions{}); err != nil {
		t.Fatal(err)
	}
	hr, _, err := bob.Handoff(ctx, a, task.ID().String(), b, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := event.ParseID(hr.Handoff)
	mustSync(t, bob, a)
	mustSync(t, erin, b)
	mustSync(t, alice, a)
	mustSync(t, bob, a)
	mustSync(t, erin, b)
	for _, m := range []member{alice, bob} {
		s, _ := m.State(ctx, a)
		en, ok := s.Entry(h)
		if !ok || en.Accepted || !strings.Contains(en.Reason, "invalidated by concurrent removal") {
			t.Errorf("%s: the hand-off %v: %+v", m.id.Name(), ok, en)
		}
	}
	s, _ := erin.State(ctx, b)
	tk, ok := s.Task(h)
	if !ok {
		t.Fatal("erin did not receive the hand-off")
	}
	if o, _ := erin.TaskOrigin(ctx, s, tk); o.Verdict != state.Invalid || !strings.Contains(o.Reason, "invalidated by concurrent removal") {
		t.Errorf("erin: %+v", o)
	}
}

// TestLinkChannelRevealsNoTasks: what goes over a link's channel, read
// with the link's secret (as the other side, or anyone holding the code,
// reads it), holds no task event's body: a task's title, body and
// comments never leave the pursuance unless handed off, and nothing of A
// is readable on the relay without the secret.
func TestLinkChannelRevealsNoTasks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := relay.OpenSQLite(ctx, filepath.Join(dir, "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	t.Cleanup(func() { ts.Close(); st.Close() })
	relayURL := ts.URL
	alice, _, fay, a, b, code := linkedDesks(t, relayURL)
	secret := do(t, alice, a, &state.TaskCreate{Title: "Unsent secret title", Body: "unsent secret body", VisibleTo: []string{"editor"}})
	do(t, alice, a, &state.TaskComment{Task: secret.ID(), Text: "unsent secret comment"})
	sent := do(t, alice, a, &state.TaskCreate{Title: "Sent title", VisibleTo: []string{"editor"}})
	if _, _, err := alice.Handoff(ctx, a, sent.ID().String(), b, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, a)
	mustSync(t, fay, b)
	ch := code.Secret.Channel()
	env, _ := keys.NewEnvelopes(&ch)
	topic, _, _ := ch.Topic()
	res, err := relay.NewClient(relayURL, nil).Read(ctx, topic, 0, 1000)
	if err != nil || len(res.Entries) == 0 {
		t.Fatalf("the channel: %v, %d entries", err, len(res.Entries))
	}
	kinds := map[event.Kind]int{}
	for _, en := range res.Entries {
		raw, err := env.Open(en.Envelope)
		if err != nil {
			t.Fatalf("an envelope on the channel does not open: %v", err)
		}
		for _, s := range []string{"Unsent secret", "unsent secret"} {
			if strings.Contains(string(raw), s) {
				t.Fatalf("the channel carries %q", s)
			}
		}
		e, err := event.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		kinds[e.Kind]++
		if e.HasBody() && !state.CarriedOverLinks(e.Kind) {
			t.Errorf("a %s event goes over the channel with its body", e.Kind)
		}
	}
	if kinds[event.KindTaskSealed] == 0 || kinds[event.KindHandoff] != 1 || kinds[event.KindLinkReceive] != 1 {
		t.Fatalf("the channel should carry task headers, the hand-off and the receive: %v", kinds)
	}
	// The relay, without the secret, holds nothing readable.
	var stored []byte
	files, _ := filepath.Glob(filepath.Join(dir, "relay.db*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, b...)
	}
	if len(stored) == 0 {
		t.Fatal("no relay files read")
	}
	// Names are long enough (≥ 4 bytes) not to turn up by chance in
	// random ciphertext: "Fay" did, once.
	for _, s := range []string{"Sent title", "Unsent secret", "Alice", "Fayette", "Desk", "editor", "researcher"} {
		if bytes.Contains(stored, []byte(s)) {
			t.Errorf("the relay's store holds %q in the clear", s)
		}
	}
}
