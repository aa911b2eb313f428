package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/state"
)

// nodeAt opens a home whose clock runs offset ahead of the system's.
func nodeAt(t *testing.T, name string, offset time.Duration) *app.Node {
	t.Helper()
	dir := t.TempDir()
	id, err := identity.New(name, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.Create(dir, id, []byte("pw"), keystore.InsecureTestKDF, rand.Reader); err != nil {
		t.Fatal(err)
	}
	n, err := app.Open(context.Background(), dir, id, app.Options{Now: func() time.Time { return time.Now().Add(offset) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// carry exports p from one node into another.
func carry(t *testing.T, from, to *app.Node, p event.ID) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := from.Export(context.Background(), p, &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := to.Import(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
}

// TestUISuccession: the founder's UI shows her inactive since her last
// event once two researchers' clocks are 40 days on, and shows the
// pending succession claim one of them made (docs/succession.md).
func TestUISuccession(t *testing.T) {
	ctx := context.Background()
	h := newHome(t, "Alice")
	alice, err := h.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := charter.Template("desk")
	c.Name = "Night Desk"
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := alice.Invite(ctx, p, "researcher", 100*24*time.Hour, 2, app.DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	later := 40 * 24 * time.Hour
	bob, carol := nodeAt(t, "Bob", later), nodeAt(t, "Carol", later)
	for _, m := range []*app.Node{bob, carol} {
		var log bytes.Buffer
		if _, err := alice.Export(ctx, p, &log); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Join(ctx, code, app.DoOptions{Export: &log}); err != nil {
			t.Fatal(err)
		}
		carry(t, m, alice, p)
	}
	// The joins are dated 40 days on, after Alice's last event: she is
	// inactive once both researchers' events say so.
	for _, m := range []*app.Node{bob, carol} {
		carry(t, alice, m, p)
		if _, err := m.Act(ctx, p, &state.TaskCreate{Title: "still here"}, app.DoOptions{}); err != nil {
			t.Fatal(err)
		}
		carry(t, m, alice, p)
	}
	carry(t, alice, bob, p)
	res, err := bob.Act(ctx, p, &state.Succession{Role: "editor"}, app.DoOptions{})
	if err != nil || !res.Accepted {
		t.Fatalf("claim: %+v %v", res, err)
	}
	carry(t, bob, alice, p)
	alice.Close() // the UI opens the home itself

	url, tok := strings.TrimSuffix(h.url, "/"), bearerOf(h.ui)
	_, info, _ := call(t, "GET", url+"/api/p/"+p.String(), tok, nil)
	byName := map[string]map[string]any{}
	for _, m := range info["members"].([]any) {
		m := m.(map[string]any)
		byName[m["name"].(string)] = m
	}
	// Her last event is her invite, a moment ago by the system clock.
	if s, _ := byName["Alice"]["inactive_since"].(string); !recent(s) {
		t.Errorf("Alice: inactive_since %v, want her last event's time", byName["Alice"]["inactive_since"])
	}
	if byName["Bob"]["inactive_since"] != nil {
		t.Errorf("Bob inactive: %v", byName["Bob"])
	}
	claims, _ := info["claims"].([]any)
	if len(claims) != 1 {
		t.Fatalf("claims: %v", info["claims"])
	}
	cl := claims[0].(map[string]any)
	if cl["role"] != "editor" || cl["claimant"] != "Bob" || cl["mine"] != false || cl["cancelled"] != "" || cl["claim"] != res.Event.ID().String() {
		t.Errorf("claim: %v", cl)
	}
	due, err := time.Parse(time.RFC3339, cl["due"].(string))
	if err != nil || due.Before(time.Now().Add(later+6*24*time.Hour)) {
		t.Errorf("due %v (%v), want about 47 days from now", cl["due"], err)
	}
	page, err := assets.ReadFile("assets/app.js")
	if err != nil || !bytes.Contains(page, []byte("inactive since ")) || !bytes.Contains(page, []byte("#claims")) {
		t.Errorf("app.js does not show activity and claims (%v)", err)
	}
}

// recent reports whether an RFC 3339 time is within the last hour (a
// margin no loaded machine eats: the events were signed seconds ago).
func recent(s string) bool {
	ts, err := time.Parse(time.RFC3339, s)
	return err == nil && time.Since(ts) < time.Hour && time.Since(ts) > -time.Minute
}
