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

// TestUIGovernance: in a collective of two, a removal is proposed; the
// other member's governance answer shows it with its quorum (2 of 2),
// lets it approve and not the proposer, offers no Remove against the
// member itself, defaults an invite to the least-privileged role, lists
// and revokes a pending invite, and the approval carries the removal.
// In a desk, a researcher is refused invites into editor with the
// rules' reason.
func TestUIGovernance(t *testing.T) {
	ctx := context.Background()
	h := newHome(t, "Alice")
	alice, err := h.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := charter.Template("collective")
	c.Name = "Co-op"
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := alice.Invite(ctx, p, "member", 24*time.Hour, 1, app.DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bob := nodeAt(t, "Bob", 0)
	var log bytes.Buffer
	if _, err := alice.Export(ctx, p, &log); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Join(ctx, code, app.DoOptions{Export: &log}); err != nil {
		t.Fatal(err)
	}
	carry(t, bob, alice, p)
	// Bob proposes to remove Alice: a majority of two is two.
	res, _, err := bob.Remove(ctx, p, alice.Me().ID, app.DoOptions{})
	if err != nil || !res.Proposed {
		t.Fatalf("remove: %+v %v", res, err)
	}
	carry(t, bob, alice, p)
	// A pending invite of Alice's.
	if _, _, err := alice.Invite(ctx, p, "member", 24*time.Hour, 1, app.DoOptions{}); err != nil {
		t.Fatal(err)
	}
	alice.Close()

	url, tok := strings.TrimSuffix(h.url, "/"), bearerOf(h.ui)
	_, g, _ := call(t, "GET", url+"/api/p/"+p.String()+"/governance", tok, nil)
	props, _ := g["proposals"].([]any)
	if len(props) != 1 {
		t.Fatalf("proposals: %v", g["proposals"])
	}
	pr := props[0].(map[string]any)
	if pr["author"] != "Bob" || pr["what"] != "remove Alice" || pr["needed"] != 2.0 || pr["expires"] == nil {
		t.Errorf("proposal: %v", pr)
	}
	if ok, _ := pr["approve"].(map[string]any)["allowed"].(bool); !ok {
		t.Errorf("Alice may not approve: %v", pr["approve"])
	}
	if g["invite_default"] != "member" {
		t.Errorf("invite_default %v", g["invite_default"])
	}
	members := g["members"].(map[string]any)
	if _, rm := members[alice.Me().ID.String()].(map[string]any)["remove"]; rm {
		t.Errorf("Alice is offered to remove herself: %v", members)
	}
	rm := members[bob.Me().ID.String()].(map[string]any)["remove"].(map[string]any)
	if rm["allowed"] != true || rm["proposed"] != true || rm["needed"] != 2.0 {
		t.Errorf("removing Bob: %v, want allowed, proposed, 2 needed", rm)
	}
	invs, _ := g["invites"].([]any)
	if len(invs) != 1 {
		t.Fatalf("invites: %v (the first was used by Bob)", g["invites"])
	}
	inv := invs[0].(map[string]any)
	if st, _, _ := call(t, "POST", url+"/api/p/"+p.String()+"/invites/"+inv["id"].(string)+"/revoke", tok, map[string]any{}); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	_, g, _ = call(t, "GET", url+"/api/p/"+p.String()+"/governance", tok, nil)
	if invs, _ := g["invites"].([]any); len(invs) != 0 {
		t.Errorf("revoked invite still pending: %v", invs)
	}
	// Alice approves her own removal: it carries.
	st, out, _ := call(t, "POST", url+"/api/p/"+p.String()+"/proposals/"+pr["id"].(string)+"/approve", tok, map[string]any{})
	if st != 200 || out["carried"] != true {
		t.Fatalf("approve: %d %v", st, out)
	}

	// A desk's researcher may not invite editors nor remove the editor,
	// with the rules' reason; the last editor may not leave.
	dh := newHome(t, "Dana")
	dana, err := dh.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dc, _ := charter.Template("desk")
	dc.Name = "Desk"
	dp, err := dana.Create(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	dcode, _, err := dana.Invite(ctx, dp, "researcher", 24*time.Hour, 1, app.DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if _, err := dana.Export(ctx, dp, &log); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Join(ctx, dcode, app.DoOptions{Export: &log}); err != nil {
		t.Fatal(err)
	}
	carry(t, bob, dana, dp)
	sBob, err := bob.State(ctx, dp)
	if err != nil {
		t.Fatal(err)
	}
	if pm := bob.May(ctx, sBob, &state.Invite{Key: bob.Me().ID, Role: "editor"}); pm.Allowed || !strings.Contains(pm.Reason, "not permitted") {
		t.Errorf("researcher inviting an editor: %+v, want refused with the rules' reason", pm)
	}
	if pm := bob.May(ctx, sBob, &state.Remove{Member: dana.Me().ID}); pm.Allowed {
		t.Errorf("researcher removing the editor: %+v", pm)
	}
	if pm := bob.May(ctx, sBob, &state.Leave{}); !pm.Allowed {
		t.Errorf("researcher leaving: %+v", pm)
	}
	if pm := dana.May(ctx, mustState(t, dana, dp), &state.Leave{}); pm.Allowed {
		t.Errorf("the last editor leaving: %+v, want refused", pm)
	}
}

func mustState(t *testing.T, n *app.Node, p event.ID) *state.State {
	t.Helper()
	s, err := n.State(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCharterChanges: a proposed amendment is said by what it changes.
func TestCharterChanges(t *testing.T) {
	now, _ := charter.Template("desk")
	now.Name = "Desk"
	wire := func(edit func(c *charter.Charter)) []byte {
		c, _ := charter.Template("desk")
		c.Name = "Desk"
		edit(c)
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		edit func(c *charter.Charter)
		want string
	}{
		{func(c *charter.Charter) {}, " (no change)"},
		{func(c *charter.Charter) { c.Name = "Night Desk" }, `: name "Desk" → "Night Desk"`},
		{func(c *charter.Charter) { c.Roles = c.Roles[:1] }, `: role "researcher" dropped`},
		{func(c *charter.Charter) { c.Roles[1].Description = "Reads." }, ": the rules (compare in the Charter view)"},
	} {
		if got := charterChanges(now, wire(tc.edit)); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
