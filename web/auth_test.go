package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/state"
)

// bearerOf returns the headers of a script that read the bearer token
// from the owner's file.
func bearerOf(s *Server) map[string]string {
	return map[string]string{"Authorization": "Bearer " + s.Bearer()}
}

// loginAs logs in as the login page does, with the token of the login URL
// in force, and returns the headers the page then sends: the session's
// cookie and token, and its origin.
func loginAs(t *testing.T, s *Server, url string) map[string]string {
	t.Helper()
	_, tok, _ := strings.Cut(s.LoginURL(), "#")
	resp, body := raw(t, "POST", url+"/login", map[string]string{"Origin": url}, `{"token":"`+tok+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	var out struct{ Token string }
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
		t.Fatalf("login answered %s", body)
	}
	cs := resp.Cookies()
	if len(cs) != 1 {
		t.Fatalf("login set cookies %v", cs)
	}
	return map[string]string{"Cookie": cs[0].Name + "=" + cs[0].Value, TokenHeader: out.Token, "Origin": url}
}

// raw sends a request with the headers hdr (and "Host") and returns the
// answer and its body.
func raw(t *testing.T, method, url string, hdr map[string]string, body string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	// (A stream that opened by mistake, /api/live, ends by the timeout.)
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// routeCase is a concrete request for one of the server's routes, and
// the access the route must ask.
type routeCase struct {
	pattern string
	access  Access
	path    string // {p}, {t} and {m} are replaced by a pursuance, task and member
	body    string
}

// routeTable has a request for every route of the server;
// TestUIEveryRouteNeedsASession fails when a route is missing from it.
// The removal comes last: with a session it may change the pursuance.
var routeTable = []routeCase{
	{"GET /{$}", NeedsCookie, "/", ""},
	{"GET /static/", Public, "/static/app.js", ""},
	{"GET /login", Public, "/login", ""},
	{"POST /login", Public, "/login", `{"token":"guess"}`},
	{"GET /api/me", NeedsSession, "/api/me", ""},
	{"GET /api/pursuances", NeedsSession, "/api/pursuances", ""},
	{"GET /api/p/{p}", NeedsSession, "/api/p/{p}", ""},
	{"GET /api/p/{p}/tasks", NeedsSession, "/api/p/{p}/tasks", ""},
	{"GET /api/p/{p}/tasks/{t}", NeedsSession, "/api/p/{p}/tasks/{t}", ""},
	{"POST /api/p/{p}/tasks", NeedsSession, "/api/p/{p}/tasks", `{"title":"Planted"}`},
	{"POST /api/p/{p}/tasks/{t}/comments", NeedsSession, "/api/p/{p}/tasks/{t}/comments", `{"text":"planted"}`},
	{"POST /api/p/{p}/tasks/{t}/status", NeedsSession, "/api/p/{p}/tasks/{t}/status", `{"status":"Done"}`},
	{"GET /api/p/{p}/log", NeedsSession, "/api/p/{p}/log", ""},
	{"POST /api/pursuances", NeedsSession, "/api/pursuances", `{"name":"Planted"}`},
	{"POST /api/join", NeedsSession, "/api/join", `{"code":"pi1aaaa"}`},
	{"POST /api/p/{p}/tasks/{t}/assign", NeedsSession, "/api/p/{p}/tasks/{t}/assign", `{"who":"role:editor"}`},
	{"POST /api/p/{p}/tasks/{t}/move", NeedsSession, "/api/p/{p}/tasks/{t}/move", `{"parent":""}`},
	{"POST /api/p/{p}/tasks/{t}/edit", NeedsSession, "/api/p/{p}/tasks/{t}/edit", `{"title":"Renamed"}`},
	{"POST /api/p/{p}/tasks/{t}/archive", NeedsSession, "/api/p/{p}/tasks/{t}/archive", `{"archived":false}`},
	{"GET /api/status", NeedsSession, "/api/status", ""},
	{"GET /api/live", NeedsSession, "/api/live", ""},
	{"POST /api/p/{p}/invites", NeedsSession, "/api/p/{p}/invites", `{"role":"researcher"}`},
	{"POST /api/p/{p}/sync", NeedsSession, "/api/p/{p}/sync", `{}`},
	{"POST /api/p/{p}/relays", NeedsSession, "/api/p/{p}/relays", `{"add":"https://relay.example.org"}`},
	{"POST /api/p/{p}/members/{m}/roles", NeedsSession, "/api/p/{p}/members/{m}/roles", `{"role":"researcher","action":"assign"}`},
	{"GET /api/p/{p}/succession", NeedsSession, "/api/p/{p}/succession", ""},
	{"POST /api/p/{p}/succession/claim", NeedsSession, "/api/p/{p}/succession/claim", `{"role":"editor"}`},
	{"POST /api/p/{p}/succession/complete", NeedsSession, "/api/p/{p}/succession/complete", `{"claim":"00"}`},
	{"GET /api/p/{p}/charter", NeedsSession, "/api/p/{p}/charter", ""},
	{"POST /api/p/{p}/charter", NeedsSession, "/api/p/{p}/charter", `{"yaml":"name: Planted\n"}`},
	{"GET /api/templates", NeedsSession, "/api/templates", ""},
	{"GET /api/p/{p}/activity", NeedsSession, "/api/p/{p}/activity", ""},
	{"GET /api/p/{p}/inbox", NeedsSession, "/api/p/{p}/inbox", ""},
	{"POST /api/p/{p}/inbox/seen", NeedsSession, "/api/p/{p}/inbox/seen", "{}"},
	{"GET /api/p/{p}/search", NeedsSession, "/api/p/{p}/search?q=Source", ""},
	{"GET /api/p/{p}/links", NeedsSession, "/api/p/{p}/links", ""},
	{"POST /api/p/{p}/links", NeedsSession, "/api/p/{p}/links", `{"to":"` + strings.Repeat("ab", 32) + `","send_roles":["editor"]}`},
	{"POST /api/p/{p}/links/accept", NeedsSession, "/api/p/{p}/links/accept", `{"code":"pl1aaaa","deliver_to":"editor"}`},
	{"POST /api/p/{p}/links/{l}/end", NeedsSession, "/api/p/{p}/links/0123456789ab/end", `{}`},
	{"POST /api/p/{p}/tasks/{t}/handoff", NeedsSession, "/api/p/{p}/tasks/{t}/handoff", `{"to":"` + strings.Repeat("ab", 32) + `"}`},
	{"POST /api/p/{p}/tasks/{t}/report", NeedsSession, "/api/p/{p}/tasks/{t}/report", `{"status":"Done"}`},
	{"GET /api/p/{p}/profile", NeedsSession, "/api/p/{p}/profile", ""},
	{"POST /api/p/{p}/profile", NeedsSession, "/api/p/{p}/profile", `{"mission":"Planted","intake_role":"editor"}`},
	{"POST /api/p/{p}/profile/withdraw", NeedsSession, "/api/p/{p}/profile/withdraw", `{}`},
	{"GET /api/p/{p}/requests", NeedsSession, "/api/p/{p}/requests", ""},
	{"POST /api/p/{p}/requests/{r}/answer", NeedsSession, "/api/p/{p}/requests/0123456789ab/answer", `{"invite":true,"role":"researcher"}`},
	// Relays named here are on loopback, where nothing listens.
	{"GET /api/discover", NeedsSession, "/api/discover?relay=http%3A%2F%2F127.0.0.1%3A1&q=leak", ""},
	{"POST /api/knock", NeedsSession, "/api/knock", `{"pursuance":"` + strings.Repeat("ab", 32) + `","relay":"http://127.0.0.1:1","message":"Let me in."}`},
	{"GET /api/answers", NeedsSession, "/api/answers", ""},
	{"GET /api/devices", NeedsSession, "/api/devices", ""},
	{"POST /api/devices/approve", NeedsSession, "/api/devices/approve", `{"code":"pursuance-device-request:AA"}`},
	{"POST /api/devices/accept", NeedsSession, "/api/devices/accept", `{"code":"pursuance-device-approval:AA"}`},
	{"POST /api/devices/{d}/revoke", NeedsSession, "/api/devices/pm1aaaa/revoke", "{}"},
	{"POST /api/p/{p}/members/{m}/remove", NeedsSession, "/api/p/{p}/members/{m}/remove", `{}`},
}

// TestUIEveryRouteNeedsASession walks every route of the server (the
// table must name each one): without a session, or with half of one, or
// with guessed or misplaced tokens, each answers 401 (403 for a change
// from another origin, 421 for another host) and shows nothing of the
// pursuance, its restricted task included; the page explains how to log
// in. With a session each one serves, so the table's requests are real.
func TestUIEveryRouteNeedsASession(t *testing.T) {
	s, url, p := newUI(t)
	// Every registered route is in the table, with the access the table
	// says, and no more.
	var registered, listed []Route
	for _, c := range routeTable {
		listed = append(listed, Route{c.pattern, c.access})
	}
	slices.SortFunc(listed, func(a, b Route) int { return strings.Compare(a.Pattern, b.Pattern) })
	if registered = s.Routes(); !slices.Equal(registered, listed) {
		t.Fatalf("routes registered: %v\nroutes in routeTable: %v\n(add a request for every new route to routeTable, with its access)", registered, listed)
	}

	// What must never show without a session: the pursuance's name and
	// ID, a restricted task, the member, and every secret.
	n, err := s.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := n.Resolve(context.Background(), p)
	res, err := n.Act(context.Background(), pid, &state.TaskCreate{Title: "Source lives at 12 Elm St", VisibleTo: []string{"editor"}}, app.DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	task, me := res.Event.ID().String(), n.Me().ID.String()
	n.Close()
	first, second := loginAs(t, s, url), loginAs(t, s, url)
	_, loginTok, _ := strings.Cut(s.LoginURL(), "#")
	secrets := []string{"Night Desk", p, "Source lives at", "Alice", me, task, s.Bearer(), loginTok,
		first[TokenHeader], second[TokenHeader], strings.SplitN(first["Cookie"], "=", 2)[1]}
	concrete := func(c routeCase) string {
		return strings.NewReplacer("{p}", p, "{t}", task, "{m}", me).Replace(c.path)
	}

	cookieOnly := map[string]string{"Cookie": first["Cookie"]}
	tokenOnly := map[string]string{TokenHeader: first[TokenHeader]}
	mixed := map[string]string{"Cookie": first["Cookie"], TokenHeader: second[TokenHeader]}
	without := map[string]map[string]string{
		"nothing":                             nil,
		"a guessed bearer":                    {"Authorization": "Bearer " + strings.Repeat("A", 43)},
		"the login token as bearer":           {"Authorization": "Bearer " + loginTok},
		"the session token as bearer":         {"Authorization": "Bearer " + first[TokenHeader]},
		"basic auth":                          {"Authorization": "Basic YWxpY2U6cHc="},
		"a session's token, no cookie":        tokenOnly,
		"a guessed cookie":                    {"Cookie": s.cookieName() + "=" + strings.Repeat("A", 43), TokenHeader: first[TokenHeader]},
		"a session's cookie, another's token": mixed,
		"a session's cookie, no token":        cookieOnly,
		"the bearer in the token header":      {TokenHeader: s.Bearer()},
	}
	for _, c := range routeTable {
		method, _, _ := strings.Cut(c.pattern, " ")
		path := concrete(c)
		acc := c.access
		for what, hdr := range without {
			if acc == NeedsCookie && hdr["Cookie"] == first["Cookie"] {
				continue // the page needs only the cookie; it holds no data (below)
			}
			resp, body := raw(t, method, url+path, hdr, c.body)
			switch {
			case acc == Public && c.pattern == "POST /login":
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s %s with %s: %d, want 401", method, path, what, resp.StatusCode)
				}
			case acc == Public:
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s %s with %s: %d, want 200 (public)", method, path, what, resp.StatusCode)
				}
			case resp.StatusCode != http.StatusUnauthorized:
				t.Errorf("%s %s with %s: %d, want 401", method, path, what, resp.StatusCode)
			}
			for _, sec := range secrets {
				if strings.Contains(string(body), sec) {
					t.Errorf("%s %s with %s shows %q: %.300s", method, path, what, sec, body)
				}
			}
			if acc == NeedsCookie && !strings.Contains(string(body), "pursuance ui") {
				t.Errorf("the page without a session does not say how to log in: %.300s", body)
			}
		}
		// Another host, even with a session (DNS rebinding).
		if resp, _ := raw(t, method, url+path, map[string]string{"Host": "evil.example:80", "Cookie": first["Cookie"], TokenHeader: first[TokenHeader]}, c.body); resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("%s %s for another host: %d, want 421", method, path, resp.StatusCode)
		}
		if method == "POST" && acc != Public {
			hdr := map[string]string{"Cookie": first["Cookie"], TokenHeader: first[TokenHeader], "Origin": "http://127.0.0.1:1"}
			if resp, _ := raw(t, method, url+path, hdr, c.body); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s from another origin: %d, want 403", method, path, resp.StatusCode)
			}
		}
	}
	// The page with the cookie alone: the UI's shell, nothing of the data.
	resp, page := raw(t, "GET", url+"/", cookieOnly, "")
	if resp.StatusCode != 200 || !strings.Contains(string(page), `id="columns"`) {
		t.Errorf("the page with a session's cookie: %d %.200s", resp.StatusCode, page)
	}
	// A path that is no route needs a session too, to learn it is none.
	if resp, _ := raw(t, "GET", url+"/api/nope", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/nope without a session: %d", resp.StatusCode)
	}
	if resp, _ := raw(t, "GET", url+"/api/nope", first, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /api/nope with a session: %d", resp.StatusCode)
	}

	// With a session, or the bearer, every route serves.
	for i, c := range routeTable {
		if c.access == Public {
			continue
		}
		method, _, _ := strings.Cut(c.pattern, " ")
		hdr := second
		if i%2 == 1 {
			hdr = bearerOf(s)
		}
		if c.pattern == "GET /api/live" {
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", url+concrete(c), nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("GET /api/live with a session: %v %v", resp, err)
			}
			cancel()
			if resp != nil {
				resp.Body.Close()
			}
			continue
		}
		resp, body := raw(t, method, url+concrete(c), hdr, c.body)
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			t.Errorf("%s %s with a session: %d %.300s", method, concrete(c), resp.StatusCode, body)
		}
	}
}

// TestUILogin: the login link works once, and sets an HttpOnly,
// SameSite=Strict cookie for the whole UI, named by the port; the owner is
// told the new link; a cross-origin login is refused without using the
// link; sessions are bounded, the oldest ending first.
func TestUILogin(t *testing.T) {
	s, url, _ := newUI(t)
	var told []string
	s.LoginChanged = func(u string) { told = append(told, u) }
	link := s.LoginURL()
	if !strings.HasPrefix(link, url+"/login#") || len(link) < len(url)+len("/login#")+43 {
		t.Fatalf("login URL %q", link)
	}
	_, tok, _ := strings.Cut(link, "#")
	// The login page itself holds no token.
	if resp, body := raw(t, "GET", url+"/login", nil, ""); resp.StatusCode != 200 || strings.Contains(string(body), tok) || !strings.Contains(string(body), "login.js") {
		t.Fatalf("login page: %d %s", resp.StatusCode, body)
	}
	// Another origin cannot log in, and does not use up the link.
	if resp, _ := raw(t, "POST", url+"/login", map[string]string{"Origin": "http://127.0.0.1:1"}, `{"token":"`+tok+`"}`); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin login: %d", resp.StatusCode)
	}
	if s.LoginURL() != link {
		t.Fatal("a refused login changed the link")
	}
	resp, body := raw(t, "POST", url+"/login", nil, `{"token":"`+tok+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	c := resp.Cookies()[0]
	_, port, _ := strings.Cut(strings.TrimPrefix(url, "http://"), ":")
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Name != "pursuance_session_"+port || c.MaxAge <= 0 {
		t.Fatalf("session cookie %+v", c)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the login's answer may be cached: %q", cc)
	}
	if len(told) != 1 || told[0] != s.LoginURL() || told[0] == link {
		t.Fatalf("told %q; in force %q; used %q", told, s.LoginURL(), link)
	}
	// Used: it opens nothing any more.
	if resp, body := raw(t, "POST", url+"/login", nil, `{"token":"`+tok+`"}`); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "pursuance ui") {
		t.Fatalf("a used link: %d %s", resp.StatusCode, body)
	}
	for _, bad := range []string{``, `{}`, `{"token":""}`, `not json`, `{"token":"` + strings.Repeat("x", maxLoginBody) + `"}`} {
		if resp, _ := raw(t, "POST", url+"/login", nil, bad); resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("login with %.40q: %d", bad, resp.StatusCode)
		}
	}
	// Sessions are bounded: the oldest ends.
	oldest := loginAs(t, s, url)
	for range maxSessions {
		loginAs(t, s, url)
	}
	if resp, _ := raw(t, "GET", url+"/api/me", oldest, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the oldest of %d sessions: %d", maxSessions+1, resp.StatusCode)
	}
	newest := loginAs(t, s, url)
	if resp, _ := raw(t, "GET", url+"/api/me", newest, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("the newest session: %d", resp.StatusCode)
	}
}
