package web

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
)

// home is a member's home with its UI served.
type home struct {
	url  string
	open func(context.Context) (*app.Node, error)
	ui   *Server
}

func newHome(t *testing.T, name string) home {
	t.Helper()
	dir := t.TempDir()
	id, err := identity.New(name, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.Create(dir, id, []byte("pw"), keystore.InsecureTestKDF, rand.Reader); err != nil {
		t.Fatal(err)
	}
	open := func(ctx context.Context) (*app.Node, error) {
		return app.Open(ctx, dir, id, app.Options{})
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Start()
	t.Cleanup(ts.Close)
	s, err := New(strings.TrimPrefix(ts.URL, "http://"), open)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s
	return home{url: ts.URL + "/", open: open, ui: s}
}

// newUI makes a home with a pursuance and serves its UI.
func newUI(t *testing.T) (*Server, string, string) {
	t.Helper()
	h := newHome(t, "Alice")
	n, err := h.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, _ := charter.Template("desk")
	c.Name = "Night Desk"
	p, err := n.Create(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return h.ui, strings.TrimSuffix(h.url, "/"), p.String()
}

func call(t *testing.T, method, url string, hdr map[string]string, body any) (int, map[string]any, []any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var obj map[string]any
	var arr []any
	if json.Unmarshal(raw, &obj) != nil {
		json.Unmarshal(raw, &arr)
	}
	return resp.StatusCode, obj, arr
}

func TestUIWorkflow(t *testing.T) {
	s, url, p := newUI(t)
	tok := loginAs(t, s, url) // as the page does: a session's cookie and token
	code, list, ps := call(t, "GET", url+"/api/pursuances", tok, nil)
	if code != 200 || len(ps) != 1 {
		t.Fatalf("pursuances: %d %v %v", code, list, ps)
	}
	code, created, _ := call(t, "POST", url+"/api/p/"+p+"/tasks", tok, map[string]any{"title": "Verify the memo", "visible_to": []string{"editor"}, "due": "2026-12-31"})
	if code != 200 {
		t.Fatalf("create: %d %v", code, created)
	}
	id := created["task"].(string)
	if code, res, _ := call(t, "POST", url+"/api/p/"+p+"/tasks/"+id+"/comments", tok, map[string]any{"text": "Dated May."}); code != 200 {
		t.Fatalf("comment: %d %v", code, res)
	}
	if code, res, _ := call(t, "POST", url+"/api/p/"+p+"/tasks/"+id+"/status", tok, map[string]any{"status": "working-on"}); code != 200 {
		t.Fatalf("status: %d %v", code, res)
	}
	if code, res, _ := call(t, "POST", url+"/api/p/"+p+"/tasks/"+id+"/status", tok, map[string]any{"status": "Sleeping"}); code != 400 || !strings.Contains(res["error"].(string), "unknown status") {
		t.Fatalf("bad status: %d %v", code, res)
	}
	_, detail, _ := call(t, "GET", url+"/api/p/"+p+"/tasks/"+id[:8], tok, nil)
	task := detail["task"].(map[string]any)
	comments := detail["comments"].([]any)
	if task["title"] != "Verify the memo" || task["status"] != "WorkingOn" || len(comments) != 1 {
		t.Fatalf("detail: %v", detail)
	}
	_, _, tasks := call(t, "GET", url+"/api/p/"+p+"/tasks?filter="+"status:WorkingOn", tok, nil)
	if len(tasks) != 1 {
		t.Fatalf("filtered tasks: %v", tasks)
	}
	_, info, _ := call(t, "GET", url+"/api/p/"+p, tok, nil)
	if info["name"] != "Night Desk" || len(info["members"].([]any)) != 1 {
		t.Fatalf("pursuance: %v", info)
	}
	_, _, log := call(t, "GET", url+"/api/p/"+p+"/log", tok, nil)
	found := false
	for _, e := range log {
		if e.(map[string]any)["kind"] == "task-comment" {
			found = true
		}
	}
	if !found {
		t.Fatalf("log: %v", log)
	}
}

func TestUIPursuanceAssignInvite(t *testing.T) {
	s, url, p := newUI(t)
	tok := bearerOf(s)
	code, res, _ := call(t, "POST", url+"/api/pursuances", tok, map[string]any{"name": "Cell Two", "template": "collective"})
	if code != 200 || res["pursuance"] == nil {
		t.Fatalf("create pursuance: %d %v", code, res)
	}
	if code, res, _ := call(t, "POST", url+"/api/pursuances", tok, map[string]any{"name": "X", "template": "nope"}); code != 400 {
		t.Fatalf("unknown template: %d %v", code, res)
	}
	own := "name: ignored\nroles:\n  - name: keeper\n    can: {create-task: true}\n"
	if code, res, _ := call(t, "POST", url+"/api/pursuances", tok, map[string]any{"name": "Own", "charter": own}); code != 200 {
		t.Fatalf("own charter: %d %v", code, res)
	}
	if code, res, _ := call(t, "POST", url+"/api/pursuances", tok, map[string]any{"name": "Bad", "charter": "roles: [\n"}); code != 400 || !strings.Contains(res["error"].(string), "line") {
		t.Fatalf("broken charter: %d %v", code, res)
	}
	_, created, _ := call(t, "POST", url+"/api/p/"+p+"/tasks", tok, map[string]any{"title": "T"})
	id := created["task"].(string)
	if code, res, _ := call(t, "POST", url+"/api/p/"+p+"/tasks/"+id+"/assign", tok, map[string]any{"who": "role:researcher"}); code != 200 {
		t.Fatalf("assign: %d %v", code, res)
	}
	_, detail, _ := call(t, "GET", url+"/api/p/"+p+"/tasks/"+id, tok, nil)
	if as := detail["task"].(map[string]any)["assignees"].([]any); len(as) != 1 || as[0] != "role:researcher" {
		t.Fatalf("assignees: %v", as)
	}
	code, inv, _ := call(t, "POST", url+"/api/p/"+p+"/invites", tok, map[string]any{"role": "researcher"})
	if code != 200 || !strings.HasPrefix(inv["code"].(string), "pi1") {
		t.Fatalf("invite: %d %v", code, inv)
	}
}

func TestUIMembersAndCharter(t *testing.T) {
	s, url, p := newUI(t)
	tok := bearerOf(s)
	_, inv, _ := call(t, "POST", url+"/api/p/"+p+"/invites", tok, map[string]any{"role": "researcher"})
	if q, _ := inv["qr"].(string); !strings.HasPrefix(q, "data:image/png;base64,") {
		t.Fatalf("no QR code: %v", inv)
	}
	_, ch, _ := call(t, "GET", url+"/api/p/"+p+"/charter", tok, nil)
	yaml := ch["yaml"].(string)
	if !strings.Contains(yaml, "name: Night Desk") {
		t.Fatalf("charter: %s", yaml)
	}
	// A broken charter: every error with its line, nothing amended.
	code, res, _ := call(t, "POST", url+"/api/p/"+p+"/charter", tok, map[string]any{"yaml": yaml + "\nrolse: []\n"})
	errs, _ := res["errors"].([]any)
	if code != 200 || len(errs) == 0 || errs[0].(map[string]any)["line"].(float64) == 0 {
		t.Fatalf("broken charter: %d %v", code, res)
	}
	code, res, _ = call(t, "POST", url+"/api/p/"+p+"/charter", tok, map[string]any{"yaml": strings.Replace(yaml, "name: Night Desk", "name: Day Desk", 1)})
	if code != 200 || len(res["errors"].([]any)) != 0 {
		t.Fatalf("amend: %d %v", code, res)
	}
	_, info, _ := call(t, "GET", url+"/api/p/"+p, tok, nil)
	if info["name"] != "Day Desk" {
		t.Fatalf("after the amendment: %v", info["name"])
	}
	// The founder may not take its own last top role.
	me := info["members"].([]any)[0].(map[string]any)["id"].(string)
	if code, res, _ := call(t, "POST", url+"/api/p/"+p+"/members/"+me+"/roles", tok, map[string]any{"role": "editor", "action": "revoke"}); code != 403 || !strings.Contains(res["error"].(string), "last") {
		t.Fatalf("revoking the last editor: %d %v", code, res)
	}
	if code, res, _ := call(t, "POST", url+"/api/p/"+p+"/members/"+me+"/roles", tok, map[string]any{"role": "researcher", "action": "assign"}); code != 200 {
		t.Fatalf("assign: %d %v", code, res)
	}
	_, info, _ = call(t, "GET", url+"/api/p/"+p, tok, nil)
	if roles := info["members"].([]any)[0].(map[string]any)["roles"].([]any); len(roles) != 2 {
		t.Fatalf("roles after assigning: %v", roles)
	}
}

func TestUIJoinErrors(t *testing.T) {
	s, url, _ := newUI(t)
	tok := bearerOf(s)
	if code, res, _ := call(t, "POST", url+"/api/join", tok, map[string]any{"code": "pi1aaaa"}); code != 400 || !strings.Contains(res["error"].(string), "not a valid invite code") {
		t.Fatalf("a malformed code: %d %v", code, res)
	}
}

// TestUILive: a page's live stream gets a "change" for every Notify and
// for every change made through the API, which also calls Changed; the
// status is answered without opening the home (a sync round holds it).
func TestUILive(t *testing.T) {
	s, url, p := newUI(t)
	tok := loginAs(t, s, url)
	changed := make(chan struct{}, 8)
	s.Changed = func() { changed <- struct{}{} }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/live", nil)
	for k, v := range tok {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(what string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("%s: the stream ended", what)
				}
				if l == "data: change" {
					return
				}
			case <-ctx.Done():
				t.Fatalf("%s: no change announced", what)
			}
		}
	}
	// The stream is open once its first line (the retry) came.
	if l := <-lines; !strings.HasPrefix(l, "retry:") {
		t.Fatalf("first line %q", l)
	}
	s.Notify()
	next("Notify")
	select {
	case <-changed:
		t.Fatal("Changed called without a change")
	default:
	}
	if code, out, _ := call(t, "POST", url+"/api/p/"+p+"/tasks", tok, map[string]any{"title": "Live"}); code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	next("a task added")
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("Changed not called after a change")
	}
	// A refused change changes nothing, and says so to nobody.
	if code, _, _ := call(t, "POST", url+"/api/p/"+p+"/tasks", tok, map[string]any{"title": ""}); code == 200 {
		t.Fatal("a task without a title was accepted")
	}
	select {
	case <-changed:
		t.Fatal("Changed called after a refused request")
	default:
	}

	// Status, while the home cannot be opened.
	s.Open = func(context.Context) (*app.Node, error) { return nil, errors.New("held by a round") }
	s.Status = func() any { return map[string]any{"working": "Desk: 1 of 2", "done": 1, "total": 2} }
	code, st, _ := call(t, "GET", url+"/api/status", tok, nil)
	if code != 200 || st["working"] != "Desk: 1 of 2" || st["total"] != float64(2) {
		t.Fatalf("status: %d %v", code, st)
	}
}

// TestUIRelays adds and removes a relay through the API; a malformed URL
// is refused with the reason.
func TestUIRelays(t *testing.T) {
	s, url, p := newUI(t)
	tok := bearerOf(s)
	tok["Origin"] = url
	relaysOf := func() []any {
		t.Helper()
		code, info, _ := call(t, "GET", url+"/api/p/"+p, tok, nil)
		if code != 200 {
			t.Fatalf("pursuance: %d %v", code, info)
		}
		rs, _ := info["relays"].([]any)
		return rs
	}
	if code, out, _ := call(t, "POST", url+"/api/p/"+p+"/relays", tok, map[string]any{"add": "https://relay.example.org"}); code != 200 {
		t.Fatalf("add: %d %v", code, out)
	}
	if rs := relaysOf(); len(rs) != 1 || rs[0] != "https://relay.example.org" {
		t.Fatalf("relays after add: %v", rs)
	}
	if code, out, _ := call(t, "POST", url+"/api/p/"+p+"/relays", tok, map[string]any{"add": "ftp://nope"}); code != 400 || out["error"] == "" {
		t.Fatalf("a malformed URL: %d %v", code, out)
	}
	if code, out, _ := call(t, "POST", url+"/api/p/"+p+"/relays", tok, map[string]any{}); code != 400 || !strings.Contains(out["error"].(string), "relay URL") {
		t.Fatalf("nothing to change: %d %v", code, out)
	}
	if code, out, _ := call(t, "POST", url+"/api/p/"+p+"/relays", tok, map[string]any{"remove": "https://relay.example.org"}); code != 200 {
		t.Fatalf("remove: %d %v", code, out)
	}
	if rs := relaysOf(); len(rs) != 0 {
		t.Fatalf("relays after remove: %v", rs)
	}
}

// TestUIEditArchive edits a task's fields (a bad due date refused with
// the reason), archives it (gone from the board, still shown by ID) and
// brings it back.
func TestUIEditArchive(t *testing.T) {
	s, url, p := newUI(t)
	tok := bearerOf(s)
	tok["Origin"] = url
	code, created, _ := call(t, "POST", url+"/api/p/"+p+"/tasks", tok, map[string]any{"title": "Draft"})
	if code != 200 {
		t.Fatalf("create: %d %v", code, created)
	}
	id := created["task"].(string)
	task := func() map[string]any {
		t.Helper()
		code, d, _ := call(t, "GET", url+"/api/p/"+p+"/tasks/"+id, tok, nil)
		if code != 200 {
			t.Fatalf("task: %d %v", code, d)
		}
		return d["task"].(map[string]any)
	}
	if code, out, _ := call(t, "POST", url+"/api/p/"+p+"/tasks/"+id+"/edit", tok, map[string]any{"title": "Final", "body": "**Now** with a body", "due": "2026-12-24"}); code != 200 {
		t.Fatalf("edit: %d %v", code, out)
	}
	if tk := task(); tk["title"] != "Final" || tk["body"] != "**Now** with a body" || tk["due"] != "2026-12-24" {
		t.Fatalf("after the edit: %v", tk)
	}
	for _, bad := range []map[string]any{{"due": "Christmas"}, {"title": " "}, {}} {
		if code, out, _ := call(t, "POST", url+"/api/p/"+p+"/tasks/"+id+"/edit", tok, bad); code != 400 || out["error"] == "" {
			t.Errorf("edit %v: %d %v", bad, code, out)
		}
	}
	if code, out, _ := call(t, "POST", url+"/api/p/"+p+"/tasks/"+id+"/edit", tok, map[string]any{"due": ""}); code != 200 || task()["due"] != "" {
		t.Fatalf("clearing the due date: %d %v %v", code, out, task())
	}
	board := func() int {
		t.Helper()
		_, _, list := call(t, "GET", url+"/api/p/"+p+"/tasks", tok, nil)
		return len(list)
	}
	if code, out, _ := call(t, "POST", url+"/api/p/"+p+"/tasks/"+id+"/archive", tok, map[string]any{"archived": true}); code != 200 {
		t.Fatalf("archive: %d %v", code, out)
	}
	if board() != 0 || task()["archived"] != true {
		t.Fatalf("archived: board has %d tasks, task %v", board(), task())
	}
	if code, out, _ := call(t, "POST", url+"/api/p/"+p+"/tasks/"+id+"/archive", tok, map[string]any{"archived": false}); code != 200 || board() != 1 {
		t.Fatalf("unarchive: %d %v, board %d", code, out, board())
	}
}

// TestUIErrorsSayTheLimit: a body over the request limit and a title over
// the rules' limit are refused with what the limit is, not the decoder's
// or the HTTP library's words.
func TestUIErrorsSayTheLimit(t *testing.T) {
	s, url, p := newUI(t)
	tok := loginAs(t, s, url)
	code, res, _ := call(t, "POST", url+"/api/p/"+p+"/tasks", tok, map[string]any{"title": "Big", "body": strings.Repeat("x", maxRequestBody)})
	if msg, _ := res["error"].(string); code != 400 || !strings.Contains(msg, "a task's body or a comment may be at most 64 KiB") || strings.Contains(msg, "http:") {
		t.Errorf("an oversized request: %d %q", code, msg)
	}
	code, res, _ = call(t, "POST", url+"/api/p/"+p+"/tasks", tok, map[string]any{"title": strings.Repeat("t", 300)})
	if msg, _ := res["error"].(string); code != 400 || msg != "the title is 300 bytes long, over the limit of 200: shorten it (details go in the body)" {
		t.Errorf("a long title: %d %q", code, msg)
	}
}

// A request folds the log at most once (issue 15): GET tasks, and POST a
// task (the state it is checked against is the one it was folded for,
// and the answer is made from it); with the state kept by the process, as
// up keeps it, not at all. app.Folds counts folds in this
// process; the test is not parallel.
func TestRequestFoldsOnce(t *testing.T) {
	s, url, p := newUI(t)
	tok := bearerOf(s)
	req := func(method, path string, body any) int64 {
		t.Helper()
		before := app.Folds()
		if code, res, _ := call(t, method, url+path, tok, body); code != 200 {
			t.Fatalf("%s %s: %d %v", method, path, code, res)
		}
		return app.Folds() - before
	}
	app.ForgetStates() // as when up has just started
	if n := req("POST", "/api/p/"+p+"/tasks", map[string]any{"title": "Verify the memo"}); n != 1 {
		t.Errorf("POST a task folded the log %d times, want 1", n)
	}
	app.ForgetStates()
	if n := req("GET", "/api/p/"+p+"/tasks", nil); n != 1 {
		t.Errorf("GET tasks folded the log %d times, want 1", n)
	}
	// up keeps the states: the next requests fold nothing (docs/fold.md).
	if n := req("POST", "/api/p/"+p+"/tasks", map[string]any{"title": "Verify the memo again"}); n != 0 {
		t.Errorf("POST a task, the state kept, folded the log %d times, want 0", n)
	}
	if n := req("GET", "/api/p/"+p+"/tasks", nil); n != 0 {
		t.Errorf("GET tasks, the state kept, folded the log %d times, want 0", n)
	}
}
