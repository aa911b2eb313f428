package app

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/relay/natstest"
	"github.com/pursuance/pursuance/state"
)

// A relay with two fronts over one NATS store, named in the relay list
// (and so in invite codes) by both fronts' URLs: with the first front
// gone, members go on through the second, from the cursors they had.
func TestSyncThroughFronts(t *testing.T) {
	ctx := context.Background()
	server := natstest.Start(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var fronts []*httptest.Server
	for range 2 {
		st, err := relay.OpenNATS(ctx, server, relay.NATSOptions{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: log}).Handler())
		t.Cleanup(func() { ts.Close(); st.Close() })
		fronts = append(fronts, ts)
	}
	name := fronts[0].URL + relay.FrontSeparator + fronts[1].URL
	alice, bob := newMember(t, "Alice"), newMember(t, "Bob")
	p := deskOn(t, alice, name)
	task := do(t, alice, p, &state.TaskCreate{Title: "Shared", VisibleTo: []string{"researcher"}})
	if res, err := alice.Sync(ctx, p, SyncOptions{}); err != nil || relayErrors(res) != "" || res.Sent == 0 {
		t.Fatalf("alice's first sync: %+v %v", res, err)
	}
	code, _, err := alice.Invite(ctx, p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx, p, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	code2, err := ParseInviteCode(code.String())
	if err != nil || len(code2.Relays) != 1 || !strings.Contains(code2.Relays[0], relay.FrontSeparator) {
		t.Fatalf("the code names %v (%v)", code2.Relays, err)
	}
	// The first front goes away.
	fronts[0].CloseClientConnections()
	fronts[0].Close()
	res, err := bob.Join(ctx, code2, DoOptions{})
	if err != nil || res.SyncErr != nil {
		t.Fatalf("join through the second front: %v %v", err, res.SyncErr)
	}
	do(t, bob, p, &state.TaskComment{Task: task.ID(), Text: "on it"})
	if res, err := bob.Sync(ctx, p, SyncOptions{}); err != nil || relayErrors(res) != "" {
		t.Fatalf("bob's sync: %+v %v", res, err)
	}
	if res, err := alice.Sync(ctx, p, SyncOptions{}); err != nil || relayErrors(res) != "" || res.Received < 2 {
		t.Fatalf("alice's sync through the second front: %+v %v", res, err)
	}
	as, _ := alice.State(ctx, p)
	if tk, _ := as.Task(task.ID()); len(tk.Comments) != 1 || len(as.Members()) != 2 {
		t.Fatalf("alice's view: %d members, task %+v", len(as.Members()), tk)
	}
}
