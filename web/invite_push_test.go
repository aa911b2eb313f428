package web

import (
	"strings"
	"testing"
)

// TestUIInviteIsOnTheRelaysAtOnce: the invite's code is shown only once
// the invite is on the relays the code names, so a newcomer handed the
// code at once joins (no background round runs in this harness: without
// the push, the relay has nothing to give).
func TestUIInviteIsOnTheRelaysAtOnce(t *testing.T) {
	r := directoryRelay(t)
	he, hg := newHome(t, "Erin"), newHome(t, "Gus")
	b, te := deskOn(t, he, "Cell", r)
	tg := bearerOf(hg.ui)
	ue, ug := strings.TrimSuffix(he.url, "/")+"/api", strings.TrimSuffix(hg.url, "/")+"/api"
	code, out, _ := call(t, "POST", ue+"/p/"+b+"/invites", te, map[string]any{"role": "researcher"})
	inv, _ := out["code"].(string)
	if code != 200 || inv == "" || out["note"] != nil {
		t.Fatalf("invite: %d %v", code, out)
	}
	if code, out, _ := call(t, "POST", ug+"/join", tg, map[string]any{"code": inv}); code != 200 || out["pursuance"] != b {
		t.Fatalf("join at once with the code: %d %v", code, out)
	}
}
