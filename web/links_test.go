package web

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/relay/relaytest"
)

// deskOn founds a desk named name on home h, on the relay at url, through
// the API, and returns its ID and the headers of a session.
func deskOn(t *testing.T, h home, name, url string) (string, map[string]string) {
	t.Helper()
	hdr := bearerOf(h.ui)
	n, err := h.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := charter.Template("desk")
	c.Name = name
	p, err := n.Create(context.Background(), c)
	n.Close()
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSuffix(h.url, "/")
	if code, out, _ := call(t, "POST", base+"/api/p/"+p.String()+"/relays", hdr, map[string]any{"add": url}); code != 200 {
		t.Fatalf("relay: %d %v", code, out)
	}
	return p.String(), hdr
}

// TestUILinks: through the API of two homes, each with its own pursuance
// on one relay: A offers a link (bad requests refused with what to do),
// B accepts the code; A hands a task off; B's board and task show its
// origin verified (pursuance, role, sender); B works it, reporting the
// status back; A's task shows the hand-off received and the report,
// verified; a task made in B has no one to report to; B ends the link and
// A's next hand-off is refused.
func TestUILinks(t *testing.T) {
	r := relaytest.Start(t)
	ha, hb := newHome(t, "Alice"), newHome(t, "Erin")
	a, ta := deskOn(t, ha, "Night Desk", r.URL)
	b, tb := deskOn(t, hb, "Day Desk", r.URL)
	ua, ub := strings.TrimSuffix(ha.url, "/")+"/api/p/"+a, strings.TrimSuffix(hb.url, "/")+"/api/p/"+b
	sync := func(u string, hdr map[string]string) {
		t.Helper()
		if code, out, _ := call(t, "POST", u+"/sync", hdr, map[string]any{}); code != 200 || out["errors"] != "" {
			t.Fatalf("sync %s: %d %v", u, code, out)
		}
	}
	links := func(u string, hdr map[string]string) []any {
		t.Helper()
		code, out, list := call(t, "GET", u+"/links", hdr, nil)
		if code != 200 || list == nil {
			t.Fatalf("links: %d %v", code, out)
		}
		return list
	}
	if l := links(ub, tb); len(l) != 0 {
		t.Fatalf("B's links before any: %v", l)
	}

	// A offers; what is wrong is said.
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"to": "Elsewhere", "send_roles": []string{"editor"}}, "64 hex digits"},
		{map[string]any{"to": b, "send_roles": []string{}}, "pick at least one role"},
		{map[string]any{"to": b, "send_roles": []string{"janitor"}}, `no role "janitor"`},
		{map[string]any{"to": a, "send_roles": []string{"editor"}}, "does not link with itself"},
	} {
		if code, out, _ := call(t, "POST", ua+"/links", ta, c.body); code != 400 || !strings.Contains(out["error"].(string), c.want) {
			t.Errorf("link create %v: %d %v, want %q", c.body, code, out, c.want)
		}
	}
	code, made, _ := call(t, "POST", ua+"/links", ta, map[string]any{"to": b, "send_roles": []string{"editor"}})
	if code != 200 || !strings.HasPrefix(made["code"].(string), "pl1") || made["proposed"] != false {
		t.Fatalf("link create: %d %v", code, made)
	}
	if l := links(ua, ta); len(l) != 1 || l[0].(map[string]any)["state"] != "waiting" || l[0].(map[string]any)["direction"] != "out" {
		t.Fatalf("A's links after the offer: %v", l)
	}
	sync(ua, ta)

	// B accepts.
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"code": "", "deliver_to": "editor"}, "paste the link code"},
		{map[string]any{"code": "pl1aaaa", "deliver_to": "editor"}, "not a valid link code"},
		{map[string]any{"code": made["code"], "deliver_to": ""}, "pick the role"},
		{map[string]any{"code": made["code"], "deliver_to": "janitor"}, `no role "janitor"`},
	} {
		if code, out, _ := call(t, "POST", ub+"/links/accept", tb, c.body); code != 400 || !strings.Contains(out["error"].(string), c.want) {
			t.Errorf("link accept %v: %d %v, want %q", c.body, code, out, c.want)
		}
	}
	if code, out, _ := call(t, "POST", ub+"/links/accept", tb, map[string]any{"code": made["code"], "deliver_to": "editor"}); code != 200 || out["link"] != made["link"] {
		t.Fatalf("link accept: %d %v", code, out)
	}
	sync(ub, tb)
	sync(ua, ta)
	la := links(ua, ta)[0].(map[string]any)
	if la["state"] != "open" || la["name"] != "Day Desk" || la["pursuance"] != b || la["link"] != made["link"] {
		t.Fatalf("A's link once B accepted: %v", la)
	}
	if lb := links(ub, tb)[0].(map[string]any); lb["direction"] != "in" || lb["name"] != "Night Desk" || lb["roles"].([]any)[0] != "editor" {
		t.Fatalf("B's link: %v", lb)
	}

	// A hands a task off.
	_, created, _ := call(t, "POST", ua+"/tasks", ta, map[string]any{"title": "Check the leak", "body": "the files", "visible_to": []string{"editor"}})
	task := created["task"].(string)
	if code, out, _ := call(t, "POST", ua+"/tasks/"+task+"/handoff", ta, map[string]any{"to": ""}); code != 400 || !strings.Contains(out["error"].(string), "ID") {
		t.Errorf("a hand-off to nobody: %d %v", code, out)
	}
	// The task's dialog offers the hand-off: the node's verdict, app.Node.MayHandoff.
	mayHandoff := func() map[string]any {
		t.Helper()
		_, d, _ := call(t, "GET", ua+"/tasks/"+task, ta, nil)
		m, _ := d["may_handoff"].(map[string]any)
		p, _ := m[b].(map[string]any)
		return p
	}
	if p := mayHandoff(); p["allowed"] != true {
		t.Errorf("may hand off over the open link: %v", p)
	}
	code, hr, _ := call(t, "POST", ua+"/tasks/"+task+"/handoff", ta, map[string]any{"to": b})
	if code != 200 || hr["task"] != task || hr["handoff"] == "" {
		t.Fatalf("hand-off: %d %v", code, hr)
	}
	sync(ua, ta)
	sync(ub, tb)

	// B's board and the task show where it came from, verified.
	_, _, board := call(t, "GET", ub+"/tasks", tb, nil)
	if len(board) != 1 {
		t.Fatalf("B's board: %v", board)
	}
	card := board[0].(map[string]any)
	o, _ := card["origin"].(map[string]any)
	if card["title"] != "Check the leak" || o == nil || o["verdict"] != "verified" || o["name"] != "Night Desk" || o["role"] != "editor" || o["sender_name"] != "Alice" {
		t.Fatalf("the received task on B's board: %v", card)
	}
	received := card["id"].(string)
	_, detail, _ := call(t, "GET", ub+"/tasks/"+received, tb, nil)
	if o := detail["task"].(map[string]any)["origin"].(map[string]any); o["verdict"] != "verified" || o["pursuance"] != a {
		t.Fatalf("the received task's origin: %v", o)
	}

	// B works it and reports the status back; a comment too.
	if code, out, _ := call(t, "POST", ub+"/tasks/"+received+"/status", tb, map[string]any{"status": "WorkingOn", "report": true}); code != 200 {
		t.Fatalf("status, reported: %d %v", code, out)
	}
	if code, out, _ := call(t, "POST", ub+"/tasks/"+received+"/report", tb, map[string]any{"comment": "The files are real."}); code != 200 {
		t.Fatalf("report: %d %v", code, out)
	}
	if code, out, _ := call(t, "POST", ub+"/tasks/"+received+"/report", tb, map[string]any{}); code != 400 || !strings.Contains(out["error"].(string), "a status, a comment or both") {
		t.Errorf("an empty report: %d %v", code, out)
	}
	_, own, _ := call(t, "POST", ub+"/tasks", tb, map[string]any{"title": "Made in B"})
	if code, out, _ := call(t, "POST", ub+"/tasks/"+own["task"].(string)+"/status", tb, map[string]any{"status": "Done", "report": true}); code != 400 || !strings.Contains(out["error"].(string), "done here, but not reported back") {
		t.Errorf("reporting on a task made in B: %d %v", code, out)
	}
	sync(ub, tb)
	sync(ua, ta)
	_, detail, _ = call(t, "GET", ua+"/tasks/"+task, ta, nil)
	hs := detail["handoffs"].([]any)
	if len(hs) != 1 {
		t.Fatalf("A's task's hand-offs: %v", detail)
	}
	h := hs[0].(map[string]any)
	rs := h["reports"].([]any)
	if h["received"] != true || h["verdict"] != "verified" || h["name"] != "Day Desk" || len(rs) != 2 {
		t.Fatalf("the hand-off as A sees it: %v", h)
	}
	var statuses, comments []string
	for _, r := range rs {
		r := r.(map[string]any)
		if r["verdict"] != "verified" || r["name"] != "Erin" {
			t.Errorf("report %v", r)
		}
		if s, _ := r["status"].(string); s != "" {
			statuses = append(statuses, s)
		}
		if c, _ := r["comment"].(string); c != "" {
			comments = append(comments, c)
		}
	}
	if strings.Join(statuses, ",") != "WorkingOn" || strings.Join(comments, ",") != "The files are real." {
		t.Fatalf("reports: statuses %v, comments %v", statuses, comments)
	}
	if o := detail["task"].(map[string]any)["origin"]; o != nil {
		t.Errorf("A's own task has an origin: %v", o)
	}

	// B ends the link: A's next hand-off is refused, and says why.
	if code, out, _ := call(t, "POST", ub+"/links/nolink/end", tb, map[string]any{}); code != 400 || !strings.Contains(out["error"].(string), "no link") {
		t.Errorf("ending no link: %d %v", code, out)
	}
	if code, out, _ := call(t, "POST", ub+"/links/"+made["link"].(string)[:12]+"/end", tb, map[string]any{}); code != 200 {
		t.Fatalf("link end: %d %v", code, out)
	}
	sync(ub, tb)
	sync(ua, ta)
	if la := links(ua, ta)[0].(map[string]any); la["state"] != "ended" || la["ended_by"] != "there" {
		t.Fatalf("A's link after B ended it: %v", la)
	}
	if p := mayHandoff(); p["allowed"] != false || !strings.Contains(fmt.Sprint(p["reason"]), "ended link") {
		t.Errorf("may hand off over a link the other side ended: %v", p)
	}
	if code, out, _ := call(t, "POST", ua+"/tasks/"+task+"/handoff", ta, map[string]any{"to": b}); code != 403 || !strings.Contains(out["error"].(string), "ended link") || !strings.Contains(out["error"].(string), "offer a new link in the Links view") {
		t.Fatalf("a hand-off over an ended link: %d %v", code, out)
	}
}
