package web

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/relay"
)

// directoryRelay is a relay on loopback that lists public profiles and
// asks little work of a knock.
func directoryRelay(t *testing.T) string {
	t.Helper()
	st, err := relay.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(relay.NewServer(st, relay.Config{Directory: true, KnockWork: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	t.Cleanup(func() {
		ts.Close()
		st.Close()
	})
	return ts.URL
}

// TestUIProfilesAndKnocks: through the API of two homes and a relay with a
// directory. Erin publishes Cell's profile (a missing mission and an
// unknown role refused with what to do); Gus, whose home holds no
// pursuance, finds Cell in the relay's directory, knocks (a knock without
// a message or to a malformed ID refused), and waits; Erin reads the
// request and invites him as a researcher (the code is not handed to the
// page: it went to Gus); Gus reads the invite and joins with it, through
// the UI's join. As a researcher he may not publish (the rules' refusal
// shown) nor read requests. An unreachable relay is named, without the
// dialer's text. Erin withdraws the profile and the directory lists it no
// more.
func TestUIProfilesAndKnocks(t *testing.T) {
	r := directoryRelay(t)
	he, hg := newHome(t, "Erin"), newHome(t, "Gus")
	b, te := deskOn(t, he, "Cell", r)
	tg := bearerOf(hg.ui)
	ue, ug := strings.TrimSuffix(he.url, "/")+"/api", strings.TrimSuffix(hg.url, "/")+"/api"
	errOf := func(out map[string]any) string { s, _ := out["error"].(string); return s }

	code, out, _ := call(t, "GET", ue+"/p/"+b+"/profile", te, nil)
	if code != 200 || out["profile"] != nil || out["may_publish"] != true || out["refusal"] != "" {
		t.Fatalf("the profile before one: %d %v", code, out)
	}
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"mission": "  ", "intake_role": "editor"}, "needs a mission"},
		{map[string]any{"mission": "x", "intake_role": "nobody"}, `no role "nobody"`},
		{map[string]any{"mission": strings.Repeat("m", 1001)}, "at most 1000 bytes"},
	} {
		if code, out, _ := call(t, "POST", ue+"/p/"+b+"/profile", te, c.body); code != 400 || !strings.Contains(errOf(out), c.want) {
			t.Errorf("publish %v: %d %v, want %q", c.body, code, out, c.want)
		}
	}
	code, out, _ = call(t, "POST", ue+"/p/"+b+"/profile", te, map[string]any{"mission": "We verify leaked documents.", "seeking": "Farsi translators", "intake_role": "editor"})
	pr, _ := out["profile"].(map[string]any)
	if code != 200 || pr == nil || pr["version"] != 1.0 || pr["intake_role"] != "editor" || out["proposed"] != false || out["sync_error"] != "" {
		t.Fatalf("publish: %d %v", code, out)
	}
	if code, out, _ = call(t, "GET", ue+"/p/"+b+"/profile", te, nil); code != 200 || out["profile"].(map[string]any)["mission"] != "We verify leaked documents." {
		t.Fatalf("the profile: %d %v", code, out)
	}
	if code, out, list := call(t, "GET", ue+"/p/"+b+"/requests", te, nil); code != 200 || list == nil || len(list) != 0 {
		t.Fatalf("requests before any: %d %v %v", code, out, list)
	}

	// Gus, outside, finds Cell.
	if code, out, _ := call(t, "GET", ug+"/discover?q=leak", tg, nil); code != 400 || !strings.Contains(errOf(out), "address of a relay") {
		t.Errorf("discover without a relay: %d %v", code, out)
	}
	dead := "http://127.0.0.1:1"
	if code, out, _ := call(t, "GET", ug+"/discover?q=leak&relay="+url.QueryEscape(dead), tg, nil); code != 400 || !strings.Contains(errOf(out), "check the address") || strings.Contains(errOf(out), "dial tcp") {
		t.Errorf("discover on a relay that is not there: %d %v", code, out)
	}
	find := func(q string) []any {
		t.Helper()
		code, out, list := call(t, "GET", ug+"/discover?q="+url.QueryEscape(q)+"&relay="+url.QueryEscape(r), tg, nil)
		if code != 200 || list == nil {
			t.Fatalf("discover %q: %d %v", q, code, out)
		}
		return list
	}
	if l := find("sanctions"); len(l) != 0 {
		t.Errorf("discover sanctions: %v", l)
	}
	l := find("leak farsi")
	if len(l) != 1 {
		t.Fatalf("discover leak farsi: %v", l)
	}
	ent := l[0].(map[string]any)
	if ent["pursuance"] != b || ent["name"] != "Cell" || ent["seeking"] != "Farsi translators" || ent["relays"].([]any)[0] != r || ent["profile"] != pr["profile"] {
		t.Fatalf("the entry: %v (profile %v)", ent, pr)
	}
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"pursuance": b, "relay": r, "message": " "}, "who you are"},
		{map[string]any{"pursuance": "Cell", "relay": r, "message": "hi"}, "64 hex digits"},
		{map[string]any{"pursuance": b, "relay": "", "message": "hi"}, "address of the relay"},
		{map[string]any{"pursuance": b, "relay": r, "message": strings.Repeat("x", 1001)}, "at most 1000 bytes"},
	} {
		if code, out, _ := call(t, "POST", ug+"/knock", tg, c.body); code != 400 || !strings.Contains(errOf(out), c.want) {
			t.Errorf("knock %v: %d %v, want %q", c.body, code, out, c.want)
		}
	}
	code, out, _ = call(t, "POST", ug+"/knock", tg, map[string]any{"pursuance": b, "relay": r, "profile": ent["profile"], "message": "I translate Farsi; Dana sent me."})
	req, _ := out["request"].(string)
	if code != 200 || len(req) != 64 || out["name"] != "Cell" {
		t.Fatalf("knock: %d %v", code, out)
	}
	answers := func() map[string]any {
		t.Helper()
		code, out, list := call(t, "GET", ug+"/answers", tg, nil)
		if code != 200 || len(list) != 1 {
			t.Fatalf("answers: %d %v %v", code, out, list)
		}
		return list[0].(map[string]any)
	}
	if a := answers(); a["request"] != req || a["pursuance"] != b || a["status"] != "waiting" || a["code"] != "" {
		t.Fatalf("the answer before one: %v", a)
	}

	// Erin reads the request and invites Gus.
	code, out, list := call(t, "GET", ue+"/p/"+b+"/requests", te, nil)
	if code != 200 || len(list) != 1 {
		t.Fatalf("requests: %d %v %v", code, out, list)
	}
	q := list[0].(map[string]any)
	if q["request"] != req || q["name"] != "Gus" || q["message"] != "I translate Farsi; Dana sent me." || q["status"] != "waiting" || q["at"] == "" {
		t.Fatalf("the request: %v", q)
	}
	ans := ue + "/p/" + b + "/requests/" + req + "/answer"
	if code, out, _ := call(t, "POST", ans, te, map[string]any{"invite": true, "role": ""}); code != 400 || !strings.Contains(errOf(out), "pick the role") {
		t.Errorf("an invite without a role: %d %v", code, out)
	}
	if code, out, _ := call(t, "POST", ue+"/p/"+b+"/requests/abc/answer", te, map[string]any{"invite": false}); code != 400 || !strings.Contains(errOf(out), "no join request") {
		t.Errorf("an answer to no request: %d %v", code, out)
	}
	code, out, _ = call(t, "POST", ans, te, map[string]any{"invite": true, "role": "researcher", "message": "Welcome."})
	if code != 200 || out["status"] != "invited" || out["request"] != req || out["code"] != nil || out["sync_error"] != "" {
		t.Fatalf("invite: %d %v", code, out)
	}
	if _, _, list := call(t, "GET", ue+"/p/"+b+"/requests", te, nil); len(list) != 1 || list[0].(map[string]any)["status"] != "invited" {
		t.Fatalf("requests once answered: %v", list)
	}

	// Gus reads the invite and joins with it.
	a := answers()
	inv, _ := a["code"].(string)
	if a["status"] != "invited" || !strings.HasPrefix(inv, "pi1") || a["message"] != "Welcome." || a["from"] != "Erin" {
		t.Fatalf("the answer: %v", a)
	}
	if code, out, _ := call(t, "POST", ug+"/join", tg, map[string]any{"code": inv}); code != 200 || out["pursuance"] != b {
		t.Fatalf("join: %d %v", code, out)
	}
	code, out, _ = call(t, "GET", ug+"/p/"+b, tg, nil)
	if code != 200 || out["name"] != "Cell" || out["my_roles"].([]any)[0] != "researcher" {
		t.Fatalf("Cell, for Gus: %d %v", code, out)
	}
	code, out, _ = call(t, "GET", ug+"/p/"+b+"/profile", tg, nil)
	if code != 200 || out["may_publish"] != false || !strings.Contains(out["refusal"].(string), `role "researcher" may not publish-profile`) {
		t.Fatalf("the profile, for a researcher: %d %v", code, out)
	}
	if code, out, _ := call(t, "POST", ug+"/p/"+b+"/profile", tg, map[string]any{"mission": "Mine now."}); code != 403 || !strings.Contains(errOf(out), "publish-profile") {
		t.Errorf("a researcher publishes: %d %v", code, out)
	}
	if code, out, _ := call(t, "POST", ug+"/p/"+b+"/profile/withdraw", tg, map[string]any{}); code != 403 {
		t.Errorf("a researcher withdraws: %d %v", code, out)
	}
	if code, out, _ := call(t, "GET", ug+"/p/"+b+"/requests", tg, nil); code != 403 || !strings.Contains(errOf(out), "only its holders read join requests") {
		t.Errorf("a researcher reads requests: %d %v", code, out)
	}

	// Erin withdraws it: the directory lists it no more.
	if code, out, _ := call(t, "POST", ue+"/p/"+b+"/profile/withdraw", te, map[string]any{}); code != 200 || out["sync_error"] != "" {
		t.Fatalf("withdraw: %d %v", code, out)
	}
	if code, out, _ := call(t, "GET", ue+"/p/"+b+"/profile", te, nil); code != 200 || out["profile"] != nil {
		t.Fatalf("the profile once withdrawn: %d %v", code, out)
	}
	if l := find("leak"); len(l) != 0 {
		t.Errorf("discover after the withdrawal: %v", l)
	}
	if code, out, _ := call(t, "POST", ue+"/p/"+b+"/profile/withdraw", te, map[string]any{}); code != 400 || !strings.Contains(errOf(out), "no public profile") {
		t.Errorf("withdraw twice: %d %v", code, out)
	}
}
