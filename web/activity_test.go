package web

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// TestUIActivityInboxSearch: Bob's UI over the API — the activity feed
// reads Alice's events as sentences with their task, filtered by member
// and kind; his inbox holds her assignment and mention, unread until he
// marks his visit, after which only what came later is unread; search
// finds words of a title, a body and a comment of tasks he may read, and
// nothing of the editors' task he may not.
func TestUIActivityInboxSearch(t *testing.T) {
	ctx := context.Background()
	alice := nodeAt(t, "Alice", 0)
	c, _ := charter.Template("desk")
	c.Name = "Night Desk"
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := alice.Invite(ctx, p, "researcher", time.Hour, 1, app.DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHome(t, "Bob")
	bob, err := h.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := alice.Export(ctx, p, &log); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Join(ctx, code, app.DoOptions{Export: &log}); err != nil {
		t.Fatal(err)
	}
	carry(t, bob, alice, p)
	bobID := bob.Me().ID.String()
	do := func(op state.Op) string {
		t.Helper()
		r, err := alice.Act(ctx, p, op, app.DoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Event.ID().String()
	}
	res := []string{"researcher"}
	memo := do(&state.TaskCreate{Title: "Verify the memo", Body: "Check the letterhead.", VisibleTo: res})
	do(&state.TaskAssign{Task: mustID(t, memo), Assignee: bobID})
	do(&state.TaskComment{Task: mustID(t, memo), Text: "@Bob the memo was leaked in May."})
	do(&state.TaskStatus{Task: mustID(t, memo), Status: state.StatusWorkingOn})
	do(&state.TaskCreate{Title: "Editors only: the leaked budget", VisibleTo: []string{"editor"}})
	carry(t, alice, bob, p)
	bob.Close() // the UI opens the home itself

	url, tok, base := strings.TrimSuffix(h.url, "/"), bearerOf(h.ui), "/api/p/"+p.String()
	_, feed, _ := call(t, "GET", url+base+"/activity", tok, nil)
	lines := feed["lines"].([]any)
	if l := lines[0].(map[string]any); l["sentence"] != "Alice acted on a task sealed for roles you do not hold" || l["task"] != nil {
		t.Errorf("the editors' task, newest: %v", l)
	}
	first := lines[1].(map[string]any)
	if first["sentence"] != "Alice moved 'Verify the memo' to Working on" || first["task"] != memo || first["who"] != "Alice" || first["rejected"] != nil {
		t.Errorf("the newest line: %v", first)
	}
	_, feed, _ = call(t, "GET", url+base+"/activity?member=Bob", tok, nil)
	for _, l := range feed["lines"].([]any) {
		if l.(map[string]any)["who"] != "Bob" {
			t.Errorf("filtered by Bob: %v", l)
		}
	}
	_, feed, _ = call(t, "GET", url+base+"/activity?kind=task-comment", tok, nil)
	if ls := feed["lines"].([]any); len(ls) != 1 || ls[0].(map[string]any)["sentence"] != "Alice commented on 'Verify the memo'" {
		t.Errorf("filtered by kind: %v", ls)
	}

	_, in, _ := call(t, "GET", url+base+"/inbox", tok, nil)
	whys := func(in map[string]any) (out []string) {
		for _, n := range in["notices"].([]any) {
			n := n.(map[string]any)
			out = append(out, n["why"].(string)+":"+map[bool]string{true: "unread", false: "read"}[n["unread"] == true])
		}
		return out
	}
	if got := strings.Join(whys(in), " "); got != "reply:unread mention:unread assigned:unread" || in["unread"] != 3.0 {
		t.Errorf("Bob's inbox: %s (%v unread)", got, in["unread"])
	}
	// Marking the visit changes nothing of the pursuance: no sync.
	synced := 0
	h.ui.Changed = func() { synced++ }
	if code, r, _ := call(t, "POST", url+base+"/inbox/seen", loginAs(t, h.ui, url), map[string]any{}); code != 200 || synced != 0 {
		t.Fatalf("seen: %d %v, %d syncs asked", code, r, synced)
	}
	if _, in, _ = call(t, "GET", url+base+"/inbox", tok, nil); in["unread"] != 0.0 || len(in["notices"].([]any)) != 3 {
		t.Errorf("after the visit: %v", in)
	}
	alice2 := alice
	if _, err := alice2.Act(ctx, p, &state.TaskStatus{Task: mustID(t, memo), Status: state.StatusDone}, app.DoOptions{}); err != nil {
		t.Fatal(err)
	}
	bob, err = h.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	carry(t, alice, bob, p)
	bob.Close()
	if _, in, _ = call(t, "GET", url+base+"/inbox", tok, nil); in["unread"] != 1.0 || strings.Join(whys(in), " ") != "reply:unread reply:read mention:read assigned:read" {
		t.Errorf("a new change: %s (%v unread)", strings.Join(whys(in), " "), in["unread"])
	}

	find := func(q string) string {
		t.Helper()
		code, e, hits := call(t, "GET", url+base+"/search?q="+q, tok, nil)
		if code != 200 {
			t.Fatalf("search %q: %d %v", q, code, e)
		}
		var out []string
		for _, h := range hits {
			h := h.(map[string]any)
			out = append(out, h["title"].(string)+"/"+h["where"].(string))
		}
		return strings.Join(out, ",")
	}
	for q, want := range map[string]string{"letterhead": "Verify the memo/body", "leaked": "Verify the memo/comment", "memo": "Verify the memo/title", "budget": ""} {
		if got := find(q); got != want {
			t.Errorf("search %q: %q, want %q", q, got, want)
		}
	}
}

func mustID(t *testing.T, s string) event.ID {
	t.Helper()
	id, err := event.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
