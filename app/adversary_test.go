package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
			var logged syncBuffer
			carol.opts.Logger = slog.New(slog.NewTextHandler(&logged, nil))
			if _, err := carol.Join(context.Background(), code, DoOptions{}); err != nil {
				t.Fatal(err)
			}
			res := mustSync(t, carol, p)
			_ = res
			if got := logged.String(); !strings.Contains(got, "does not open") || !strings.Contains(got, "level=WARN") {
				t.Fatalf("the relay's lie was not logged: %q", got)
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

// forkTo makes member m fork in p: two events at its next seq (relay
// list additions), the first appended to relay r1 only, the second to r2
// only, sealed as its sync would.
func forkTo(t *testing.T, m member, p event.ID, r1, r2 string) []*event.Event {
	t.Helper()
	ctx := context.Background()
	s, _ := m.State(ctx, p)
	gens, err := m.groupEnvelopes(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var fork []*event.Event
	for _, url := range []string{"https://a.example", "https://b.example"} {
		e, err := m.sign(ctx, s, &state.Relays{Add: []string{url}})
		if err != nil {
			t.Fatal(err)
		}
		fork = append(fork, e)
	}
	if fork[0].Seq != fork[1].Seq || fork[0].ID() == fork[1].ID() {
		t.Fatal("not a fork")
	}
	for i, url := range []string{r1, r2} {
		sealed, err := gens.last.Seal(fork[i].Encode(), m.rand())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := relay.NewClient(url, nil).Append(ctx, gens.last.Topic(), gens.last.topicKey, [][]byte{sealed}); err != nil {
			t.Fatal(err)
		}
	}
	return fork
}

// A member who signs two different events at one seq and gives each to a
// different relay (a forked view) is shown, with the evidence, to every
// member who syncs both: its events from that seq are void.
func TestEquivocationShownToAll(t *testing.T) {
	ctx := context.Background()
	r1, _ := testRelay(t)
	r2, _ := testRelay(t)
	alice, bob, p, _ := twoOnRelays(t, r1, r2)
	fork := forkTo(t, bob, p, r1, r2)
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

// relayHolds returns the events of p that the relay at url serves in
// envelopes m's keys open.
func relayHolds(t *testing.T, url string, m member, p event.ID) map[event.ID]bool {
	t.Helper()
	ctx := context.Background()
	ks, err := m.groupKeys(ctx, &p, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[event.ID]bool{}
	c := relay.NewClient(url, nil)
	for topic, k := range ks {
		env, _ := newEnvelopes(k)
		for after := uint64(0); ; {
			res, err := c.Read(ctx, topic, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Entries) == 0 {
				break
			}
			for _, en := range res.Entries {
				if b, err := env.Open(en.Envelope); err == nil {
					if ev, err := event.Decode(b); err == nil {
						out[ev.ID()] = true
					}
				}
			}
			after = res.Entries[len(res.Entries)-1].Cursor
		}
	}
	return out
}

// converged reports whether the members hold the same events of p and
// compute the same state hash, and the relay serves every one of them.
func converged(t *testing.T, url string, p event.ID, ms ...member) (bool, string) {
	t.Helper()
	ctx := context.Background()
	var want [32]byte
	for i, m := range ms {
		s, err := m.State(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if h := s.Hash(); i == 0 {
			want = h
		} else if h != want {
			return false, m.id.Name() + "'s state differs from " + ms[0].id.Name() + "'s"
		}
		if i > 0 && !sameLog(t, ms[0], m, p) {
			return false, m.id.Name() + "'s log differs from " + ms[0].id.Name() + "'s"
		}
	}
	held := relayHolds(t, url, ms[0], p)
	missing := 0
	ms[0].Store().Iterate(ctx, p, func(e *event.Event) error {
		if !held[e.ID()] {
			missing++
		}
		return nil
	})
	if missing > 0 {
		return false, fmt.Sprintf("the relay lacks %d events", missing)
	}
	return true, ""
}

// A relay that lies, loses its data or hangs costs nothing once it is
// honest (or back) again at the same URL: with it as the pursuance's only
// relay, and no peer, every member and the relay hold the same events
// and the members compute the same state hash within two sync rounds
// (each member syncs once a round).
func TestLyingRelayCostsNothingOnceHonest(t *testing.T) {
	cases := []struct {
		name string
		mode relaytest.Mode
		// before runs before the members' work during the lie (a backup),
		// honest ends the lie; nil: Set(Honest).
		before func(r *relaytest.Relay) string
		honest func(r *relaytest.Relay, backup string)
		// found is what the first round after must report of the relay:
		// "lost" appends, or a Reset saying "wiped" or "rewound".
		found string
	}{
		{name: "fake-ack", mode: relaytest.DropAppends, found: "lost"},
		{name: "flip-byte", mode: relaytest.Tamper},
		{name: "forge", mode: relaytest.Forge, found: "rewound"},
		{name: "replay", mode: relaytest.Replay, found: "rewound"},
		{name: "relabel", mode: relaytest.Relabel, found: "rewound"},
		{name: "jump", mode: relaytest.Jump, found: "rewound"},
		{name: "always-more", mode: relaytest.AlwaysMore},
		{name: "hang", mode: relaytest.Hang},
		{name: "wipe", found: "wiped", honest: func(r *relaytest.Relay, _ string) { r.Wipe() }},
		{name: "restore-backup", found: "rewound", before: func(r *relaytest.Relay) string { return r.Backup() },
			honest: func(r *relaytest.Relay, backup string) { r.Restore(backup) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := relaytest.Start(t)
			alice, bob, p, task := twoOnRelays(t, r.URL)
			for _, m := range []member{alice, bob} {
				m.opts.RelayTimeout = 500 * time.Millisecond // the hanging relay
				m.opts.limits.pages = 64                     // the relay that always has more
			}
			var backup string
			if tc.before != nil {
				backup = tc.before(r)
			}
			// Work while the relay lies: each member writes and syncs.
			r.Set(tc.mode, nil)
			for i, m := range []member{alice, bob, alice, bob} {
				do(t, m, p, &state.TaskComment{Task: task.ID(), Text: fmt.Sprintf("during %d", i)})
				m.Sync(ctx, p, SyncOptions{}) // the relay's lies are its errors
			}
			if tc.honest != nil {
				tc.honest(r, backup)
			} else {
				r.Set(relaytest.Honest, nil)
			}
			do(t, alice, p, &state.TaskComment{Task: task.ID(), Text: "after"})
			why := ""
			for round := 1; round <= 2; round++ {
				var found []string
				for _, m := range []member{alice, bob} {
					res := mustSync(t, m, p)
					if e := relayErrors(res); e != "" {
						t.Fatalf("round %d, %s: %s", round, m.id.Name(), e)
					}
					if r := res.Relays[0]; r.Lost > 0 {
						found = append(found, "lost")
					} else if r.Reset != "" {
						found = append(found, r.Reset)
					}
				}
				if round == 1 && tc.found != "" && !strings.Contains(strings.Join(found, "; "), tc.found) {
					t.Errorf("the first round after reported %q, want %q", found, tc.found)
				}
				var ok bool
				if ok, why = converged(t, r.URL, p, alice, bob); ok {
					return
				}
			}
			t.Fatalf("not converged after two rounds: %s", why)
		})
	}
}

// A relay that accepts connections and never answers costs a sync one
// stall time, names itself in the result, and does not hold up the other
// relay; while the sync waits for it, the home is free: another Node (the
// web UI's request) opens it.
func TestHangingRelayHoldsNothing(t *testing.T) {
	ctx := context.Background()
	good, _ := testRelay(t)
	alice, _, p, _ := twoOnRelays(t, good)
	hanging, accepted := relaytest.Hanging(t)
	const stall = 3 * time.Second
	alice.opts.RelayTimeout = stall
	do(t, alice, p, &state.TaskCreate{Title: "while one relay hangs"})
	type out struct {
		res SyncResult
		err error
		d   time.Duration
	}
	done := make(chan out, 1)
	start := time.Now()
	go func() {
		res, err := alice.Sync(ctx, p, SyncOptions{Relays: []string{hanging}})
		done <- out{res, err, time.Since(start)}
	}()
	select {
	case <-accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("the sync never reached the hanging relay")
	}
	// The sync now waits for the hanging relay (for the stall time):
	// the home is another process's to take meanwhile.
	octx, cancel := context.WithTimeout(ctx, stall-500*time.Millisecond)
	other, err := Open(octx, alice.home, alice.id, Options{})
	cancel()
	if err != nil {
		t.Fatalf("the home is held while a relay hangs: %v", err)
	}
	if _, err := other.Pursuances(ctx); err != nil {
		t.Fatal(err)
	}
	other.Close()
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	// Bounded: a stall per call, no retries of a stall; generous for a
	// loaded machine.
	if o.d > 10*stall {
		t.Errorf("the sync took %s with a stall time of %s", o.d, stall)
	}
	for _, r := range o.res.Relays {
		switch r.URL {
		case hanging:
			if !errors.Is(r.Err, relay.ErrStalled) || !strings.Contains(RelayError(r.Err), "no answer in time") {
				t.Errorf("the hanging relay's error: %v", r.Err)
			}
		case good:
			if r.Err != nil || r.Sent == 0 {
				t.Errorf("the good relay: %+v", r)
			}
		}
	}
	// The node holds its home again and acts.
	do(t, alice, p, &state.TaskCreate{Title: "after"})
}

// A relay that withholds an author's newest events (which no later event
// names yet) is named behind by a member who got them elsewhere, and is
// sent them.
func TestWithholdingRelayNamedBehind(t *testing.T) {
	for _, age := range []time.Duration{behindGrace / 2, 2 * behindGrace} {
		t.Run(age.String(), func(t *testing.T) {
			good, _ := testRelay(t)
			bad, adv := badRelay(t)
			alice, bob, p, task := twoOnRelays(t, good, bad)
			newest := do(t, alice, p, &state.TaskComment{Task: task.ID(), Text: "newest"})
			mustSync(t, alice, p)
			hidden := firstEntryAfter(t, bad, alice, p, newest)
			adv.Set(relaytest.Withhold, func(e relay.Entry) bool { return e.Cursor == hidden })
			// Bob syncs when the comment is age old. Moments after it
			// was written, an event one relay lacks may be on its way (an
			// author may publish to one relay only, which members pass
			// on): not behind. Older than behindGrace, it is.
			bob.opts.Now = func() time.Time { return time.Now().Add(age) }
			want := 0
			if age > behindGrace {
				want = 1
			}
			res := mustSync(t, bob, p)
			for _, r := range res.Relays {
				switch {
				case r.URL == bad && r.Behind != want:
					t.Errorf("the withholding relay: behind %d, want %d: %+v", r.Behind, want, r)
				case r.URL == good && r.Behind != 0:
					t.Errorf("the good relay: behind %d: %+v", r.Behind, r)
				}
			}
			if len(res.Missing) != 0 || !sameLog(t, alice, bob, p) {
				t.Fatalf("bob's log: missing %v", res.Missing)
			}
		})
	}
}

// A relay just added to the list is filled, and is not called behind: it
// is new to the member, not withholding.
func TestNewRelayIsNotBehind(t *testing.T) {
	ctx := context.Background()
	r1, _ := testRelay(t)
	r2, _ := testRelay(t)
	alice, _, p, _ := twoOnRelays(t, r1)
	if _, err := alice.SetRelays(ctx, p, []string{r2}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	res := mustSync(t, alice, p)
	for _, r := range res.Relays {
		if r.Behind != 0 {
			t.Errorf("%s: behind %d: %+v", r.URL, r.Behind, r)
		}
		if r.URL == r2 && r.Sent == 0 {
			t.Errorf("the new relay was sent nothing: %+v", r)
		}
	}
}

// A relay's retention dropping what a member pushed is not a lie: the
// member does not send it again.
func TestPrunedPushIsNotLost(t *testing.T) {
	// 2 KiB keeps the newest entries of a topic; 512 bytes keeps none, and
	// the relay answers first cursor 0 (nothing kept): that is retention
	// too, not a loss (it once made a node refill such a relay every round).
	for _, keep := range []int64{2 * 1024, 512} {
		t.Run(fmt.Sprint(keep), func(t *testing.T) {
			ctx := context.Background()
			r, st := testRelay(t)
			alice, _, p, task := twoOnRelays(t, r)
			for i := range 4 {
				do(t, alice, p, &state.TaskComment{Task: task.ID(), Text: strings.Repeat("y", i+1)})
			}
			mustSync(t, alice, p)
			if n, err := st.Prune(ctx, timeNow(), relay.Retention{MaxBytes: keep}); err != nil || n == 0 {
				t.Fatalf("pruned %d: %v", n, err)
			}
			for range 2 {
				res := mustSync(t, alice, p)
				if res.Sent != 0 || res.Relays[0].Lost != 0 || res.Relays[0].Reset != "" {
					t.Fatalf("pruned envelopes sent again: %+v", res.Relays[0])
				}
			}
		})
	}
}

// Relays an old invite code named stop counting once the pursuance's
// own list (which dropped one of them) is in the member's log: no "1 of 2
// relays failed" for ever.
func TestCodeRelaysGiveWayToTheList(t *testing.T) {
	ctx := context.Background()
	r1, _ := testRelay(t)
	r2, _ := testRelay(t)
	alice, bob, p, _ := twoOnRelays(t, r1, r2)
	if urls, _ := bob.RelayURLs(ctx, p); len(urls) != 2 {
		t.Fatalf("bob syncs with %v", urls)
	}
	if _, err := alice.SetRelays(ctx, p, nil, []string{r2}, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	mustSync(t, bob, p)
	urls, err := bob.RelayURLs(ctx, p)
	if err != nil || !slices.Equal(urls, []string{r1}) {
		t.Fatalf("after r2's removal bob syncs with %v (%v)", urls, err)
	}
	// With every relay removed, the code's are not taken up again.
	if _, err := alice.SetRelays(ctx, p, nil, []string{r1}, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p, r1)
	mustSync(t, bob, p, r1)
	if urls, _ := bob.RelayURLs(ctx, p); len(urls) != 0 {
		t.Fatalf("with no relay left, bob syncs with %v", urls)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes (a logger's
// output).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
