package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/state"
)

// clockHome is newHome with a clock running *offset ahead of the
// system's, which the test moves on.
func clockHome(t *testing.T, name string, offset *atomic.Int64) home {
	t.Helper()
	dir := t.TempDir()
	id, err := identity.New(name, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.Create(dir, id, []byte("pw"), keystore.InsecureTestKDF, rand.Reader); err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	open := func(ctx context.Context) (*app.Node, error) {
		return app.Open(ctx, dir, id, app.Options{Now: now})
	}
	ts := httptest.NewServer(nil)
	t.Cleanup(ts.Close)
	s, err := New(strings.TrimPrefix(ts.URL, "http://"), open)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s
	return home{url: ts.URL + "/", open: open, ui: s}
}

// clockNode opens a home whose clock runs *offset ahead of the system's.
func clockNode(t *testing.T, name string, offset *atomic.Int64) *app.Node {
	t.Helper()
	dir := t.TempDir()
	id, err := identity.New(name, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.Create(dir, id, []byte("pw"), keystore.InsecureTestKDF, rand.Reader); err != nil {
		t.Fatal(err)
	}
	n, err := app.Open(context.Background(), dir, id, app.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// successionDesk founds a desk on alice's node (clock now) with bob and
// carol as researchers whose clocks run 40 days on, a clock the test
// moves (bob's home is the one whose UI it asks). It returns bob's home, the
// pursuance, alice's and carol's nodes. Only bob has joined when it
// returns; join(carol) adds carol.
func successionDesk(t *testing.T, clock *atomic.Int64) (bob home, p string, alice, carol *app.Node, join func(*app.Node)) {
	t.Helper()
	ctx := context.Background()
	clock.Store(int64(40 * 24 * time.Hour))
	alice = nodeAt(t, "Alice", 0)
	c, _ := charter.Template("desk")
	c.Name = "Night Desk"
	pid, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := alice.Invite(ctx, pid, "researcher", 100*24*time.Hour, 2, app.DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bob = clockHome(t, "Bob", clock)
	carol = clockNode(t, "Carol", clock)
	join = func(m *app.Node) {
		var log bytes.Buffer
		if _, err := alice.Export(ctx, pid, &log); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Join(ctx, code, app.DoOptions{Export: &log}); err != nil {
			t.Fatal(err)
		}
		carry(t, m, alice, pid)
	}
	bn := bobNode(t, bob)
	join(bn)
	bn.Close()
	return bob, pid.String(), alice, carol, join
}

// bobNode opens bob's home (the UI opens it itself for each request: the
// test closes it before asking the UI).
func bobNode(t *testing.T, h home) *app.Node {
	t.Helper()
	n, err := h.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUISuccessionActions: bob's UI lists what he may do about the
// desk's editor role, as the rules judge it now: with only his clock on,
// the claim is shown (the charter names researchers as editor's
// successor) and disabled with the rules' reason; once carol's clock
// agrees, enabled; he claims through the UI; the completion is shown,
// disabled until the waiting period is over by two clocks, then
// enabled; he completes and holds editor. Roles the charter does not
// let him take over, and claims of others, get no action.
func TestUISuccessionActions(t *testing.T) {
	ctx := context.Background()
	var clock atomic.Int64
	bob, p, alice, carol, join := successionDesk(t, &clock)
	url, tok := strings.TrimSuffix(bob.url, "/"), bearerOf(bob.ui)
	get := func() (claimable, completable []map[string]any) {
		t.Helper()
		code, out, _ := call(t, "GET", url+"/api/p/"+p+"/succession", tok, nil)
		if code != 200 {
			t.Fatalf("succession: %d %v", code, out)
		}
		for _, x := range out["claimable"].([]any) {
			claimable = append(claimable, x.(map[string]any))
		}
		for _, x := range out["completable"].([]any) {
			completable = append(completable, x.(map[string]any))
		}
		return
	}
	// One clock on is not enough (two witnesses): alice is active.
	cl, co := get()
	if len(cl) != 1 || cl[0]["role"] != "editor" || cl[0]["ok"] != false || !strings.Contains(cl[0]["why"].(string), "is active") || len(co) != 0 {
		t.Fatalf("with one clock on: claimable %v, completable %v", cl, co)
	}
	// Carol joins and writes, 40 days on: alice is inactive.
	pid, _ := alice.Resolve(ctx, p)
	join(carol)
	carry(t, alice, carol, pid)
	if _, err := carol.Act(ctx, pid, &state.TaskCreate{Title: "still here"}, app.DoOptions{}); err != nil {
		t.Fatal(err)
	}
	bn := bobNode(t, bob)
	carry(t, carol, bn, pid)
	carry(t, alice, bn, pid)
	bn.Close()
	if cl, _ = get(); len(cl) != 1 || cl[0]["ok"] != true || cl[0]["why"] != "" || cl[0]["proposed"] != false {
		t.Fatalf("alice inactive: claimable %v", cl)
	}
	code, res, _ := call(t, "POST", url+"/api/p/"+p+"/succession/claim", tok, map[string]any{"role": "editor"})
	if code != 200 || res["proposed"] != false {
		t.Fatalf("claim: %d %v", code, res)
	}
	claim := res["claim"].(string)
	_, co = get()
	if len(co) != 1 || co[0]["claim"] != claim || co[0]["ok"] != false || !strings.Contains(co[0]["why"].(string), "waits until") {
		t.Fatalf("completion before the wait: %v", co)
	}
	code, res, _ = call(t, "POST", url+"/api/p/"+p+"/succession/complete", tok, map[string]any{"claim": claim})
	if code == 200 {
		t.Fatalf("completed before the waiting period: %v", res)
	}
	// Ten days on, by carol's clock and bob's.
	clock.Store(int64(50 * 24 * time.Hour))
	bn = bobNode(t, bob)
	carry(t, bn, carol, pid)
	bn.Close()
	if _, err := carol.Act(ctx, pid, &state.TaskCreate{Title: "ten days on"}, app.DoOptions{}); err != nil {
		t.Fatal(err)
	}
	bn = bobNode(t, bob)
	carry(t, carol, bn, pid)
	if _, err := bn.Act(ctx, pid, &state.TaskCreate{Title: "bob, ten days on"}, app.DoOptions{}); err != nil {
		t.Fatal(err)
	}
	bn.Close()
	if _, co = get(); len(co) != 1 || co[0]["ok"] != true || co[0]["why"] != "" {
		t.Fatalf("completion after the wait: %v", co)
	}
	code, res, _ = call(t, "POST", url+"/api/p/"+p+"/succession/complete", tok, map[string]any{"claim": claim})
	if code != 200 {
		t.Fatalf("complete: %d %v", code, res)
	}
	_, info, _ := call(t, "GET", url+"/api/p/"+p, tok, nil)
	for _, m := range info["members"].([]any) {
		if m := m.(map[string]any); m["name"] == "Bob" && !strings.Contains(strings.Join(toStrings(m["roles"]), " "), "editor") {
			t.Fatalf("bob after completing: %v", m)
		}
	}
	// Bob holds editor now: nothing left to claim or complete.
	if cl, co = get(); len(cl) != 0 || len(co) != 0 {
		t.Fatalf("after completing: claimable %v, completable %v", cl, co)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
