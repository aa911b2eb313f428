package app

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/relay/relaytest"
	"github.com/pursuance/pursuance/state"
)

// badRelay runs a relay behind an adversary.
func badRelay(t *testing.T) (string, *relaytest.Adversary) {
	t.Helper()
	st, err := relay.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	adv := relaytest.New(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	ts := httptest.NewServer(adv)
	t.Cleanup(func() {
		ts.Close()
		st.Close()
	})
	return ts.URL, adv
}

// twoOnRelays founds a desk with alice and bob that publishes to the given
// relays, with a task and a comment by each.
func twoOnRelays(t *testing.T, relays ...string) (alice, bob member, p event.ID, task *event.Event) {
	t.Helper()
	ctx := context.Background()
	alice, bob = newMember(t, "Alice"), newMember(t, "Bob")
	c, _ := charter.Template("desk")
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetRelays(ctx, p, relays, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	task = do(t, alice, p, &state.TaskCreate{Title: "Shared", VisibleTo: []string{"researcher"}})
	do(t, alice, p, &state.TaskComment{Task: task.ID(), Text: "first"})
	mustSync(t, alice, p)
	if _, err := bob.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	// Alice's sync sees the join and re-keys the researchers to bob.
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	do(t, bob, p, &state.TaskComment{Task: task.ID(), Text: "second"})
	mustSync(t, bob, p)
	mustSync(t, alice, p)
	return alice, bob, p, task
}

func mustSync(t *testing.T, m member, p event.ID, peers ...string) SyncResult {
	t.Helper()
	res, err := m.Sync(context.Background(), p, SyncOptions{Relays: peers})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// sameLog reports whether two members hold the same events of p.
func sameLog(t *testing.T, a, b member, p event.ID) bool {
	t.Helper()
	ids := func(m member) []event.ID {
		var out []event.ID
		m.Store().Iterate(context.Background(), p, func(e *event.Event) error {
			out = append(out, e.ID())
			return nil
		})
		return out
	}
	return slices.Equal(ids(a), ids(b))
}

func TestRelayTampersOrForges(t *testing.T) {
	for _, mode := range []relaytest.Mode{relaytest.Tamper, relaytest.Forge} {
		t.Run(map[relaytest.Mode]string{relaytest.Tamper: "tamper", relaytest.Forge: "forge"}[mode], func(t *testing.T) {
			good, _ := testRelay(t)
			bad, adv := badRelay(t)
			alice, _, p, _ := twoOnRelays(t, good, bad)
			carol := newMember(t, "Carol")
			code, _, err := alice.Invite(context.Background(), p, "researcher", 0, 1, DoOptions{})
			if err != nil {
				t.Fatal(err)
			}
			mustSync(t, alice, p)
			adv.Set(mode, nil)
			var logged []string
			carol.opts.Log = func(s string) { logged = append(logged, s) }
			if _, err := carol.Join(context.Background(), code, DoOptions{}); err != nil {
				t.Fatal(err)
			}
			res := mustSync(t, carol, p)
			_ = res
			if len(logged) == 0 || !strings.Contains(logged[0], "does not open") {
				t.Fatalf("the relay's lie was not logged: %v", logged)
			}
			mustSync(t, alice, p) // re-keys what carol's code carried
			mustSync(t, carol, p)
			if !sameLog(t, alice, carol, p) {
				t.Fatal("carol's log differs from alice's")
			}
		})
	}
}

func TestRelayReplaysAreIdempotent(t *testing.T) {
	bad, adv := badRelay(t)
	alice, bob, p, _ := twoOnRelays(t, bad)
	adv.Set(relaytest.Replay, nil)
	do(t, alice, p, &state.TaskCreate{Title: "more"})
	mustSync(t, alice, p)
	res := mustSync(t, bob, p)
	if res.Received != 1 || res.Tampered != 0 || res.Refused != 0 || relayErrors(res) != "" {
		t.Fatalf("bob's sync through a replaying relay: %+v", res)
	}
	if !sameLog(t, alice, bob, p) {
		t.Fatal("logs differ")
	}
}

// A relay that withholds an event is caught: later events name it, and
// the sync names it missing; another relay (or a peer) repairs it.
func TestRelayWithholds(t *testing.T) {
	good, _ := testRelay(t)
	bad, adv := badRelay(t)
	alice, bob, p, task := twoOnRelays(t, bad)
	// Alice writes two comments; the relay hides the first from readers.
	first := do(t, alice, p, &state.TaskComment{Task: task.ID(), Text: "hidden"})
	do(t, alice, p, &state.TaskComment{Task: task.ID(), Text: "after"})
	mustSync(t, alice, p)
	hidden := firstEntryAfter(t, bad, alice, p, first)
	adv.Set(relaytest.Withhold, func(e relay.Entry) bool { return e.Cursor == hidden })
	res := mustSync(t, bob, p)
	if !slices.Contains(res.Missing, first.ID()) {
		t.Fatalf("the withheld event is not named missing: %+v", res)
	}
	// Alice's node serves its events through another relay: the gap fills.
	mustSync(t, alice, p, good)
	res = mustSync(t, bob, p, good)
	if len(res.Missing) != 0 {
		t.Fatalf("still missing after a second source: %v", res.Missing)
	}
	if !sameLog(t, alice, bob, p) {
		t.Fatal("logs differ")
	}
}

// firstEntryAfter finds the relay cursor of the envelope that carries e,
// by reading the relay as alice would.
func firstEntryAfter(t *testing.T, url string, alice member, p event.ID, e *event.Event) uint64 {
	t.Helper()
	ctx := context.Background()
	ks, err := alice.groupKeys(ctx, &p, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := relay.NewClient(url, nil)
	for topic, k := range ks {
		res, err := c.Read(ctx, topic, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		env, _ := newEnvelopes(k)
		for _, en := range res.Entries {
			b, err := env.Open(en.Envelope)
			if err != nil {
				continue
			}
			if ev, err := event.Decode(b); err == nil && ev.ID() == e.ID() {
				return en.Cursor
			}
		}
	}
	t.Fatalf("event %s is on no topic", e.ID().Short())
	return 0
}

// A relay that acknowledges and drops appends is harmless beside one
// that does not; one that serves pages out of order is refused.
func TestRelayDropsOrReorders(t *testing.T) {
	for _, mode := range []relaytest.Mode{relaytest.DropAppends, relaytest.Reorder} {
		good, _ := testRelay(t)
		bad, adv := badRelay(t)
		alice, bob, p, _ := twoOnRelays(t, good, bad)
		adv.Set(mode, nil)
		do(t, alice, p, &state.TaskCreate{Title: "more"})
		do(t, alice, p, &state.TaskCreate{Title: "and more"})
		mustSync(t, alice, p)
		res := mustSync(t, bob, p)
		if mode == relaytest.Reorder && !strings.Contains(relayErrors(res), "cursor") {
			t.Errorf("reordering relay not refused: %+v", res)
		}
		if !sameLog(t, alice, bob, p) {
			t.Fatalf("mode %d: logs differ", mode)
		}
	}
}

// A member who signs two different events at one seq and gives each to a
// different relay (a forked view) is shown, with the evidence, to every
// member who syncs both: its events from that seq are void.
func TestEquivocationShownToAll(t *testing.T) {
	ctx := context.Background()
	r1, _ := testRelay(t)
	r2, _ := testRelay(t)
	alice, bob, p, _ := twoOnRelays(t, r1, r2)
	// Bob forks: two events at his next seq, each to one relay only.
	s, _ := bob.State(ctx, p)
	gens, err := bob.groupEnvelopes(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var fork []*event.Event
	for _, url := range []string{"https://a.example", "https://b.example"} {
		e, err := bob.sign(ctx, s, &state.Relays{Add: []string{url}})
		if err != nil {
			t.Fatal(err)
		}
		fork = append(fork, e)
	}
	if fork[0].Seq != fork[1].Seq || fork[0].ID() == fork[1].ID() {
		t.Fatal("not a fork")
	}
	for i, url := range []string{r1, r2} {
		sealed, err := gens.last.Seal(fork[i].Encode(), bob.rand())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := relay.NewClient(url, nil).Append(ctx, gens.last.Topic(), gens.last.topicKey, [][]byte{sealed}); err != nil {
			t.Fatal(err)
		}
	}
	mustSync(t, alice, p)
	as, err := alice.State(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fork {
		en, ok := as.Entry(e.ID())
		if !ok || en.Accepted || !strings.Contains(en.Reason, "signed two different events") {
			t.Errorf("alice's verdict on the fork: %+v", en)
		}
	}
	ev, err := alice.Store().Evidence(ctx, p)
	if err != nil || len(ev) != 1 {
		t.Fatalf("evidence: %v %v", ev, err)
	}
}

// A relay's retention drops old envelopes; a newcomer still gets the whole
// history, from a peer: another member's node serving the same protocol.
func TestPeerResyncAfterRetention(t *testing.T) {
	ctx := context.Background()
	r, st := testRelay(t)
	peer, _ := testRelay(t) // alice's node, serving the protocol
	alice, _, p, task := twoOnRelays(t, r)
	for i := range 5 {
		do(t, alice, p, &state.TaskComment{Task: task.ID(), Text: strings.Repeat("x", i+1)})
	}
	mustSync(t, alice, p)
	mustSync(t, alice, p, peer) // alice's node holds everything she has
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	// The relay keeps only the newest few envelopes of each topic.
	if n, err := st.Prune(ctx, timeNow(), relay.Retention{MaxBytes: 6 * 1024}); err != nil || n == 0 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	carol := newMember(t, "Carol")
	if err := carol.Accept(code); err != nil {
		t.Fatal(err)
	}
	res, err := carol.Sync(ctx, p, SyncOptions{PullOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Store().Get(ctx, p); err == nil && len(res.Missing) == 0 {
		t.Fatalf("the pruned relay gave the whole history: %+v", res)
	}
	// From the peer, everything.
	if _, err := carol.Sync(ctx, p, SyncOptions{PullOnly: true, Relays: []string{peer}}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	mustSync(t, carol, p, peer)
	if !sameLog(t, alice, carol, p) {
		t.Fatal("carol's log differs from alice's")
	}
}

func timeNow() time.Time { return time.Now() }
