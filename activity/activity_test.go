package activity_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/activity"
	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/state"
)

func node(t *testing.T, name string) *app.Node {
	t.Helper()
	dir := t.TempDir()
	id, err := identity.New(name, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.Create(dir, id, []byte("pw"), keystore.InsecureTestKDF, rand.Reader); err != nil {
		t.Fatal(err)
	}
	n, err := app.Open(context.Background(), dir, id, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

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

// pair founds a pursuance of template tmpl by Alice, which Bob joins
// with role.
func pair(t *testing.T, tmpl, role string) (alice, bob *app.Node, p event.ID) {
	t.Helper()
	ctx := context.Background()
	alice, bob = node(t, "Alice"), node(t, "Bob")
	c, _ := charter.Template(tmpl)
	c.Name = "Night Desk"
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := alice.Invite(ctx, p, role, time.Hour, 1, app.DoOptions{})
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
	return alice, bob, p
}

func act(t *testing.T, n *app.Node, p event.ID, op state.Op) event.ID {
	t.Helper()
	r, err := n.Act(context.Background(), p, op, app.DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Event.ID()
}

func stateOf(t *testing.T, n *app.Node, p event.ID) *state.State {
	t.Helper()
	s, err := n.State(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSentences: each task event reads as a sentence naming its member
// and its task, with the task as its target; a rejected event carries
// its reason.
func TestSentences(t *testing.T) {
	alice, bob, p := pair(t, "desk", "researcher")
	vis := []string{"researcher"}
	memo := act(t, alice, p, &state.TaskCreate{Title: "Verify the memo", VisibleTo: vis})
	call := act(t, alice, p, &state.TaskCreate{Title: "Call the source", VisibleTo: vis})
	act(t, alice, p, &state.TaskAssign{Task: memo, Assignee: bob.Me().ID.String()})
	act(t, alice, p, &state.TaskMove{Task: call, Parent: memo})
	carry(t, alice, bob, p)
	act(t, bob, p, &state.TaskStatus{Task: memo, Status: state.StatusDone})
	act(t, bob, p, &state.TaskComment{Task: memo, Text: "Done, @Alice."})
	// Bob, a researcher, may not give roles: signed unchecked, rejected.
	bad, err := bob.Do(context.Background(), p, &state.RoleAssign{Member: bob.Me().ID, Role: "editor"}, app.DoOptions{Unchecked: true})
	if err != nil || bad.Accepted {
		t.Fatalf("the unchecked role grab: %+v %v", bad, err)
	}
	carry(t, bob, alice, p)

	lines := activity.Lines(stateOf(t, alice, p))
	want := map[string]event.ID{
		"Alice founded the pursuance":                           {},
		"Alice created 'Verify the memo'":                       memo,
		"Alice assigned 'Verify the memo' to Bob":               memo,
		"Alice moved 'Call the source' under 'Verify the memo'": call,
		"Bob moved 'Verify the memo' to Done":                   memo,
		"Bob commented on 'Verify the memo'":                    memo,
		"Bob joined":                                            {},
		"Bob gave Bob the role editor":                          {},
	}
	got := map[string]activity.Line{}
	for _, l := range lines {
		got[l.Sentence] = l
	}
	for s, task := range want {
		l, ok := got[s]
		if !ok {
			t.Errorf("no line %q among %d", s, len(lines))
			continue
		}
		if l.Task != task {
			t.Errorf("%q: target %v, want %v", s, l.Task.Short(), task.Short())
		}
	}
	if l := got["Bob gave Bob the role editor"]; !l.Rejected || !strings.Contains(l.Reason, "role") {
		t.Errorf("the role grab: rejected %v, reason %q", l.Rejected, l.Reason)
	}
	if l := got["Bob moved 'Verify the memo' to Done"]; l.Rejected || l.Reason != "" || l.Who != "Bob" || l.Kind != "task-status" {
		t.Errorf("the status line: %+v", l)
	}
}

// TestInbox: Bob's inbox holds what Alice did that concerns him — an
// assignment, a mention, an answer on a task he follows — and not what
// concerns him not (a task of hers he never touched) nor his own acts;
// what his mark covers is read; a later event is unread.
func TestInbox(t *testing.T) {
	alice, bob, p := pair(t, "desk", "researcher")
	vis := []string{"researcher"}
	memo := act(t, alice, p, &state.TaskCreate{Title: "Verify the memo", VisibleTo: vis})
	other := act(t, alice, p, &state.TaskCreate{Title: "Alice's own", VisibleTo: vis})
	role := act(t, alice, p, &state.TaskCreate{Title: "For researchers", VisibleTo: vis})
	act(t, alice, p, &state.TaskAssign{Task: memo, Assignee: bob.Me().ID.String()})
	act(t, alice, p, &state.TaskAssign{Task: role, Assignee: "role:researcher"})
	act(t, alice, p, &state.TaskComment{Task: other, Text: "Nothing for Bob here, @Bobby."})
	carry(t, alice, bob, p)
	mine := act(t, bob, p, &state.TaskCreate{Title: "Bob's lead", VisibleTo: vis})
	carry(t, bob, alice, p)
	act(t, alice, p, &state.TaskComment{Task: mine, Text: "Good lead."})
	act(t, alice, p, &state.TaskComment{Task: other, Text: "@bob can you look?"})
	carry(t, alice, bob, p)

	s := stateOf(t, bob, p)
	notes, unread := activity.Inbox(s, bob.Me().ID, nil)
	var got []string
	for _, n := range notes {
		got = append(got, n.Why+": "+n.Sentence)
		if !n.Unread {
			t.Errorf("with no mark, %q is read", n.Sentence)
		}
	}
	want := []string{
		"mention: Alice commented on 'Alice's own'",
		"reply: Alice commented on 'Bob's lead'",
		"assigned: Alice assigned 'For researchers' to the role researcher",
		"assigned: Alice assigned 'Verify the memo' to Bob",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || unread != len(want) {
		t.Errorf("Bob's inbox (%d unread):\n%s\nwant:\n%s", unread, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Alice's inbox has Bob's join and his task, nothing of hers.
	an, _ := activity.Inbox(stateOf(t, alice, p), alice.Me().ID, nil)
	for _, n := range an {
		if n.Who == "Alice" {
			t.Errorf("Alice's own act in her inbox: %s", n.Sentence)
		}
	}
	if len(an) != 1 || an[0].Why != activity.Joined {
		t.Errorf("Alice's inbox: %+v", an)
	}

	mark := activity.Head(s)
	act(t, alice, p, &state.TaskStatus{Task: memo, Status: state.StatusReviewing})
	carry(t, alice, bob, p)
	notes, unread = activity.Inbox(stateOf(t, bob, p), bob.Me().ID, mark)
	if unread != 1 || !notes[0].Unread || notes[0].Sentence != "Alice moved 'Verify the memo' to Reviewing" || notes[1].Unread {
		t.Errorf("after the mark: %d unread, first %+v", unread, notes[0])
	}
}

// TestInboxProposal: in a collective, a proposal of Alice's waits in
// Bob's inbox for his approval, and leaves it once he approved.
func TestInboxProposal(t *testing.T) {
	alice, bob, p := pair(t, "collective", "member")
	r, err := alice.Act(context.Background(), p, &state.RoleRevoke{Member: bob.Me().ID, Role: "member"}, app.DoOptions{})
	if err != nil || !r.Proposed {
		t.Fatalf("propose: %+v %v", r, err)
	}
	carry(t, alice, bob, p)
	notes, _ := activity.Inbox(stateOf(t, bob, p), bob.Me().ID, nil)
	if len(notes) == 0 || notes[0].Why != activity.Approve || notes[0].ID != r.Event.ID() || !strings.Contains(notes[0].Sentence, "Alice proposed: role revoke") {
		t.Fatalf("Bob's inbox: %+v", notes)
	}
	if _, err := bob.Act(context.Background(), p, &state.Approval{Proposal: r.Event.ID()}, app.DoOptions{}); err != nil {
		t.Fatal(err)
	}
	notes, _ = activity.Inbox(stateOf(t, bob, p), bob.Me().ID, nil)
	for _, n := range notes {
		if n.Why == activity.Approve {
			t.Errorf("approved, still waiting: %+v", n)
		}
	}
}
