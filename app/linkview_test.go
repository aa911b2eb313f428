package app

import (
	"context"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// TestLinkWatchTargets: a node follows live the channel of every open link
// of a pursuance (so that a hand-off or a report starts a round at once),
// on the relays the channel is on, with the link's own isolation; not
// once the link is ended on this side.
func TestLinkWatchTargets(t *testing.T) {
	ctx := context.Background()
	relayURL, _ := testRelay(t)
	alice, erin, _, a, b, code := linkedDesks(t, relayURL)
	ch := code.Secret.Channel()
	topic, _, err := ch.Topic()
	if err != nil {
		t.Fatal(err)
	}
	follows := func(m member, p event.ID) bool {
		t.Helper()
		ts, err := m.WatchTargets(ctx, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ts {
			if w.Topic == topic {
				if w.Relay != relayURL || w.Isolation != m.linkIsolation(p, code.Secret.ID()) {
					t.Fatalf("%s follows the channel at %s with isolation %q", m.id.Name(), w.Relay, w.Isolation)
				}
				return true
			}
		}
		return false
	}
	if !follows(alice, a) || !follows(erin, b) {
		t.Fatal("the link's channel is not followed live by both sides")
	}
	if _, err := erin.LinkEnd(ctx, b, code.Secret.ID().String(), DoOptions{}); err != nil {
		t.Fatal(err)
	}
	if follows(erin, b) {
		t.Fatal("erin still follows the channel of a link B ended")
	}
}

// TestTaskOriginsOneFold: TaskOrigins gives, for every received task of a
// list, what TaskOrigin gives for it, and nothing for tasks made here;
// ResolvePeer takes a full ID, a pursuance of the home by name, and
// explains anything else.
func TestTaskOriginsOneFold(t *testing.T) {
	ctx := context.Background()
	relayURL, _ := testRelay(t)
	alice, _, fay, a, b, _ := linkedDesks(t, relayURL)
	var sent []string
	for _, title := range []string{"First lead", "Second lead"} {
		task := do(t, alice, a, &state.TaskCreate{Title: title, VisibleTo: []string{"editor"}})
		hr, _, err := alice.Handoff(ctx, a, task.ID().String(), b, DoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, hr.Handoff)
	}
	mustSync(t, alice, a)
	mustSync(t, fay, b)
	own := do(t, fay, b, &state.TaskCreate{Title: "Made in B"})
	s, _ := fay.State(ctx, b)
	ts := VisibleTasks(s, fay.id.ID(), nil)
	got, err := fay.TaskOrigins(ctx, s, ts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[own.ID()] != nil {
		t.Fatalf("origins of %d tasks: %+v", len(ts), got)
	}
	for _, h := range sent {
		id, _ := event.ParseID(h)
		tk, _ := s.Task(id)
		one, err := fay.TaskOrigin(ctx, s, tk)
		if err != nil || got[id] == nil || *got[id] != *one || one.Verdict != state.Verified || one.Name != "Desk" {
			t.Fatalf("hand-off %s: %+v, TaskOrigin %+v (%v)", h, got[id], one, err)
		}
	}

	if id, err := fay.ResolvePeer(ctx, " "+a.String()+" "); err != nil || id != a {
		t.Fatalf("a full ID: %v %v", id, err)
	}
	if id, err := fay.ResolvePeer(ctx, "desk"); err != nil || id != b {
		t.Fatalf("a pursuance of the home by name: %v %v", id, err)
	}
	for _, bad := range []string{"", "nowhere"} {
		if _, err := fay.ResolvePeer(ctx, bad); err == nil || !strings.Contains(err.Error(), "64 hex digits") {
			t.Errorf("ResolvePeer(%q): %v", bad, err)
		}
	}
}
