package charter

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Task facts used by the permission tables.
var (
	everyone      = &TaskFacts{}                                                     // visible to every member
	forEditor     = &TaskFacts{VisibleTo: []string{"editor"}}                        // visible only to editor
	forResearcher = &TaskFacts{VisibleTo: []string{"editor", "researcher"}}          // a researcher's task
	assignedToMe  = &TaskFacts{VisibleTo: []string{"editor"}, AssignedToActor: true} // hidden, but assigned
	mine          = &TaskFacts{VisibleTo: []string{"editor"}, CreatedByActor: true}  // hidden, but created by the actor
	forUntrusted  = &TaskFacts{VisibleTo: []string{"untrusted"}}
	forViewer     = &TaskFacts{VisibleTo: []string{"viewer"}}
	forContrib    = &TaskFacts{VisibleTo: []string{"contributor"}}
	forAdmin      = &TaskFacts{VisibleTo: []string{"admin"}}
	forMember     = &TaskFacts{VisibleTo: []string{"member"}}
)

type permCase struct {
	actor  []string
	action Action
	target []string
	task   *TaskFacts
	ok     bool
	msg    string // when !ok: the exact error, or a substring of it if it starts with "..."
}

func runPerms(t *testing.T, c *Charter, cases []permCase) {
	t.Helper()
	for _, tc := range cases {
		err := c.Allows(tc.actor, tc.action, tc.target, tc.task)
		what := strings.Join(tc.actor, "+") + " " + string(tc.action) + " " + strings.Join(tc.target, ",")
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: allowed, want denied", what)
			continue
		}
		var d *Denied
		if !errors.As(err, &d) || !errors.Is(err, ErrNotPermitted) {
			t.Errorf("%s: error %T %v is not a *Denied wrapping ErrNotPermitted", what, err, err)
		}
		if sub, partial := strings.CutPrefix(tc.msg, "..."); partial && !strings.Contains(err.Error(), sub) ||
			!partial && tc.msg != "" && err.Error() != tc.msg {
			t.Errorf("%s: error %q, want %q", what, err, tc.msg)
		}
	}
}

func TestAllowsDesk(t *testing.T) {
	c := mustTemplate(t, "desk")
	ed, re := []string{"editor"}, []string{"researcher"}
	var cases []permCase
	// The editor may do everything, to every role, on every task; but
	// take over a role, which only researchers may (editor).
	for _, a := range Actions() {
		if a == TakeOver {
			continue
		}
		var task *TaskFacts
		if a.kind() == taskAction {
			task = forEditor
		}
		for _, target := range [][]string{{"editor"}, {"researcher"}, {"editor", "researcher"}} {
			cases = append(cases, permCase{ed, a, target, task, true, ""})
		}
	}
	cases = append(cases, []permCase{
		{ed, AssignTask, nil, nil, true, ""}, // to a member with no role
		{ed, RemoveMember, nil, nil, true, ""},
		{ed, Comment, nil, forResearcher, true, ""},

		// researcher: creates tasks, comments on what it sees, sets the
		// status of what is assigned to it; nothing else.
		{re, CreateTask, nil, nil, true, ""},
		{re, Comment, nil, forResearcher, true, ""},
		{re, Comment, nil, everyone, true, ""},
		{re, Comment, nil, assignedToMe, true, ""},
		{re, Comment, nil, mine, true, ""},
		{re, Comment, nil, forEditor, false, `not permitted: role "researcher" may not comment on a task it cannot see`},
		{re, SetStatus, nil, assignedToMe, true, ""},
		{re, SetStatus, nil, forResearcher, false, `not permitted: role "researcher" may not set-status on a task not assigned to it`},
		{re, SetStatus, nil, forEditor, false, "...on a task it cannot see"},
		{re, ArchiveTask, nil, forResearcher, false, `not permitted: role "researcher" may not archive-task`},
		{re, ArchiveTask, nil, assignedToMe, false, `not permitted: role "researcher" may not archive-task`},
		{re, EditTask, nil, mine, false, `not permitted: role "researcher" may not edit-task`},
		{re, AssignRole, []string{"researcher"}, nil, false, `not permitted: role "researcher" may not assign-role "researcher"`},
		{re, RevokeRole, []string{"researcher"}, nil, false, ""},
		{re, Invite, []string{"researcher"}, nil, false, `not permitted: role "researcher" may not invite "researcher"`},
		{re, RemoveMember, []string{"researcher"}, nil, false, ""},
		{re, RemoveMember, nil, nil, false, `not permitted: role "researcher" may not remove-member`},
		{re, AssignTask, []string{"researcher"}, nil, false, ""},
		{re, SeeTasks, []string{"editor"}, nil, false, `not permitted: role "researcher" may not see-tasks "editor"`},
		{re, AmendCharter, nil, nil, false, `not permitted: role "researcher" may not amend-charter`},
		{re, RotateKeys, nil, nil, false, ""},
		{re, ManageRelays, nil, nil, false, ""},
		{re, LinkPursuances, nil, nil, false, ""},
		{re, TakeOver, []string{"editor"}, nil, true, ""},
		{re, TakeOver, []string{"researcher"}, nil, false, `not permitted: role "researcher" may not take-over "researcher"`},

		// A member with no role may do nothing.
		{nil, Comment, nil, everyone, false, "not permitted: a member with no role may not comment"},
		{nil, CreateTask, nil, nil, false, "not permitted: a member with no role may not create-task"},
		{nil, Comment, nil, forEditor, false, "not permitted: a member with no role may not comment on a task it cannot see"},

		// Unknown roles, actions and targets never panic and cover nothing.
		{[]string{"ghost"}, Comment, nil, everyone, false, `not permitted: role "ghost" may not comment`},
		{[]string{"ghost", "researcher"}, Comment, nil, forResearcher, true, ""},
		{ed, AssignRole, []string{"ghost"}, nil, false, `not permitted: role "editor" may not assign-role "ghost" (there is no role "ghost")`},
		{ed, AssignRole, []string{"researcher", "ghost"}, nil, false, "...(there is no role \"ghost\")"},
		{ed, "fly", nil, nil, false, `not permitted: role "editor" may not "fly" (unknown action)`},
		{ed, "", nil, nil, false, "...(unknown action)"},
		{ed, Comment, nil, nil, false, `not permitted: role "editor" may not comment (no task given)`},
		{ed, AssignRole, nil, nil, false, `not permitted: role "editor" may not assign-role (no role given)`},
		{ed, SeeTasks, []string{}, nil, false, "...(no role given)"},
	}...)
	runPerms(t, c, cases)

	for _, tc := range []struct {
		actor []string
		task  TaskFacts
		see   bool
	}{
		{re, *forResearcher, true},
		{re, *forEditor, false},
		{re, *everyone, true},
		{re, *assignedToMe, true},
		{re, *mine, true},
		{ed, *forResearcher, true},
		{ed, *forEditor, true},
		{ed, TaskFacts{VisibleTo: []string{"ghost"}}, false},
		{nil, *forEditor, false},
		{nil, *everyone, true},
		{[]string{"ghost"}, *forResearcher, false},
	} {
		if got := c.CanSee(tc.actor, tc.task); got != tc.see {
			t.Errorf("CanSee(%v, %+v) = %v, want %v", tc.actor, tc.task, got, tc.see)
		}
	}

	for _, tc := range []struct {
		actor, want []string
	}{
		{re, []string{"editor", "researcher"}},
		{ed, []string{"editor"}},
		{[]string{"researcher", "editor"}, []string{"editor", "researcher"}},
		{[]string{"ghost"}, nil},
		{nil, nil},
	} {
		if got := c.NewTaskVisibility(tc.actor); !slices.Equal(got, tc.want) {
			t.Errorf("NewTaskVisibility(%v) = %v, want %v", tc.actor, got, tc.want)
		}
	}
}

func TestAllowsLadder(t *testing.T) {
	c := mustTemplate(t, "ladder")
	r := func(names ...string) []string { return names }
	cases := []permCase{
		// primary amends the charter; no one else does.
		{r("primary"), AmendCharter, nil, nil, true, ""},
		{r("admin"), AmendCharter, nil, nil, false, `not permitted: role "admin" may not amend-charter`},
		{r("primary"), RotateKeys, nil, nil, true, ""},
		{r("admin"), RotateKeys, nil, nil, false, ""},
		{r("admin"), ManageRelays, nil, nil, false, ""},
		{r("primary"), LinkPursuances, nil, nil, true, ""},

		// admin assigns roles below primary, admin included.
		{r("admin"), AssignRole, r("admin"), nil, true, ""},
		{r("admin"), AssignRole, r("untrusted"), nil, true, ""},
		{r("admin"), AssignRole, r("primary"), nil, false, `not permitted: role "admin" may not assign-role "primary"`},
		{r("admin"), RevokeRole, r("asst-admin"), nil, true, ""},
		{r("admin"), RevokeRole, r("primary"), nil, false, ""},
		{r("primary"), AssignRole, r("primary"), nil, true, ""},
		{r("asst-admin"), AssignRole, r("untrusted"), nil, false, ""},
		{r("viewer", "untrusted"), AssignRole, r("admin"), nil, false, `not permitted: roles "viewer", "untrusted" may not assign-role "admin"`},

		// asst-admin removes members whose roles are all below it.
		{r("asst-admin"), RemoveMember, r("contributor"), nil, true, ""},
		{r("asst-admin"), RemoveMember, r("recruiter", "viewer"), nil, true, ""},
		{r("asst-admin"), RemoveMember, r("admin"), nil, false, `not permitted: role "asst-admin" may not remove-member "admin"`},
		{r("asst-admin"), RemoveMember, r("asst-admin"), nil, false, ""},
		{r("asst-admin"), RemoveMember, r("contributor", "admin"), nil, false, `not permitted: role "asst-admin" may not remove-member "contributor", "admin"`},
		{r("asst-admin"), RemoveMember, nil, nil, true, ""},
		{r("admin"), RemoveMember, r("asst-admin"), nil, true, ""},
		{r("primary"), RemoveMember, r("admin"), nil, true, ""},
		{r("primary"), RemoveMember, r("primary"), nil, false, ""},
		{r("recruiter"), RemoveMember, r("untrusted"), nil, false, ""},

		// recruiter invites into the roles below it.
		{r("recruiter"), Invite, r("assigner"), nil, true, ""},
		{r("recruiter"), Invite, r("untrusted"), nil, true, ""},
		{r("recruiter"), Invite, r("recruiter"), nil, false, ""},
		{r("assigner"), Invite, r("untrusted"), nil, false, ""},
		{r("contributor", "recruiter"), Invite, r("viewer"), nil, true, ""},

		// assigner (re)assigns tasks, to anyone.
		{r("assigner"), AssignTask, r("primary"), nil, true, ""},
		{r("assigner"), AssignTask, nil, nil, true, ""},
		{r("assigner"), AssignTask, r("untrusted"), forUntrusted, true, ""},
		{r("assigner"), AssignTask, r("untrusted"), forAdmin, false, "...on a task it cannot see"},
		{r("contributor"), AssignTask, r("contributor"), nil, false, ""},

		// contributor suggests tasks and works on its own.
		{r("contributor"), CreateTask, nil, nil, true, ""},
		{r("viewer"), CreateTask, nil, nil, false, ""},
		{r("contributor"), SetStatus, nil, &TaskFacts{VisibleTo: r("contributor"), AssignedToActor: true}, true, ""},
		{r("contributor"), SetStatus, nil, forContrib, false, "...not assigned to it"},
		{r("contributor"), EditTask, nil, forContrib, false, ""},
		{r("contributor"), Comment, nil, forUntrusted, true, ""},

		// asst-admin edits, archives and sets the status of what it sees.
		{r("asst-admin"), EditTask, nil, forContrib, true, ""},
		{r("asst-admin"), ArchiveTask, nil, forViewer, true, ""},
		{r("asst-admin"), SetStatus, nil, forUntrusted, true, ""},
		{r("asst-admin"), ArchiveTask, nil, forAdmin, false, "...on a task it cannot see"},
		{r("recruiter"), ArchiveTask, nil, forUntrusted, false, ""},

		// viewer and untrusted discuss only what they can see.
		{r("untrusted"), Comment, nil, forUntrusted, true, ""},
		{r("untrusted"), Comment, nil, forViewer, false, `not permitted: role "untrusted" may not comment on a task it cannot see`},
		{r("untrusted"), Comment, nil, everyone, true, ""},
		{r("viewer"), Comment, nil, forUntrusted, true, ""},
		{r("viewer"), Comment, nil, forViewer, true, ""},
		{r("viewer"), Comment, nil, forContrib, false, "...cannot see"},
		{r("viewer"), SetStatus, nil, forViewer, false, ""},
		{r("viewer"), SeeTasks, r("untrusted"), nil, true, ""},
		{r("viewer"), SeeTasks, r("viewer"), nil, false, ""},
		{r("untrusted"), SeeTasks, r("untrusted"), nil, false, ""},
		{r("primary"), SeeTasks, r("primary"), nil, true, ""},
		// Each of the two top rungs may be taken over from the one below.
		{r("admin"), TakeOver, r("primary"), nil, true, ""},
		{r("asst-admin"), TakeOver, r("admin"), nil, true, ""},
		{r("asst-admin"), TakeOver, r("primary"), nil, false, `not permitted: role "asst-admin" may not take-over "primary"`},
		{r("recruiter"), TakeOver, r("asst-admin"), nil, false, ""},
	}
	runPerms(t, c, cases)

	for _, tc := range []struct {
		actor []string
		task  *TaskFacts
		see   bool
	}{
		{r("primary"), forAdmin, true},
		{r("admin"), forAdmin, true},
		{r("admin"), &TaskFacts{VisibleTo: r("primary")}, false},
		{r("admin"), forUntrusted, true},
		{r("asst-admin"), forAdmin, false},
		{r("contributor"), forViewer, true},
		{r("contributor"), &TaskFacts{VisibleTo: r("assigner")}, false},
		{r("untrusted"), forViewer, false},
		{r("untrusted"), &TaskFacts{VisibleTo: r("admin", "untrusted")}, true},
		{r("untrusted", "contributor"), forViewer, true},
	} {
		if got := c.CanSee(tc.actor, *tc.task); got != tc.see {
			t.Errorf("CanSee(%v, %v) = %v, want %v", tc.actor, tc.task.VisibleTo, got, tc.see)
		}
	}
	if got := c.NewTaskVisibility(r("contributor", "viewer")); !slices.Equal(got, r("contributor", "viewer")) {
		t.Errorf("NewTaskVisibility = %v", got)
	}
}

func TestAllowsCollective(t *testing.T) {
	c := mustTemplate(t, "collective")
	m := []string{"member"}
	var cases []permCase
	for _, a := range Actions() {
		var task *TaskFacts
		if a.kind() == taskAction {
			task = forMember
		}
		// Co-equals take nothing over: active majorities decide.
		cases = append(cases, permCase{m, a, m, task, a != TakeOver, ""})
	}
	cases = append(cases,
		permCase{m, AssignTask, nil, nil, true, ""},
		permCase{nil, Comment, nil, forMember, false, "not permitted: a member with no role may not comment on a task it cannot see"},
		permCase{nil, Invite, m, nil, false, `not permitted: a member with no role may not invite "member"`},
	)
	runPerms(t, c, cases)
}

// TestAllowsPerRole checks that targets are covered by one single role of
// the actor, and the other rules that need a charter of their own.
func TestAllowsPerRole(t *testing.T) {
	c, err := Parse([]byte(`name: t
roles:
  - name: boss
    can:
      assign-role: "*"
      remove-member: [a]
      assign-task: [a]
  - name: mod
    can:
      remove-member: [b]
      edit-task: [assigned, own]
      archive-task: own
  - name: a
  - name: b
`))
	if err != nil {
		t.Fatal(err)
	}
	r := func(names ...string) []string { return names }
	mineHidden := &TaskFacts{VisibleTo: r("a"), CreatedByActor: true}
	shown := &TaskFacts{VisibleTo: r("mod")}
	runPerms(t, c, []permCase{
		{r("boss", "mod"), RemoveMember, r("a"), nil, true, ""},
		{r("boss", "mod"), RemoveMember, r("b"), nil, true, ""},
		{r("boss", "mod"), RemoveMember, r("a", "b"), nil, false, `not permitted: roles "boss", "mod" may not remove-member "a", "b"`},
		{r("boss"), AssignTask, r("a", "b"), nil, true, ""}, // any of the member's roles suffices
		{r("boss"), AssignTask, r("b"), nil, false, ""},
		{r("boss"), AssignTask, nil, nil, false, `not permitted: role "boss" may not assign-task to a member with no role`},
		{r("mod"), EditTask, nil, mineHidden, true, ""},
		{r("mod"), EditTask, nil, shown, false, `not permitted: role "mod" may not edit-task on a task neither assigned to it nor created by it`},
		{r("mod"), ArchiveTask, nil, shown, false, "...on a task it did not create"},
		{r("mod"), ArchiveTask, nil, mineHidden, true, ""},
		{r("boss"), EditTask, nil, shown, false, `not permitted: role "boss" may not edit-task on a task it cannot see`},
	})
}

func TestDeniedCopies(t *testing.T) {
	c := mustTemplate(t, "desk")
	actor, target := []string{"researcher"}, []string{"editor"}
	err := c.Allows(actor, AssignRole, target, nil)
	var d *Denied
	if !errors.As(err, &d) {
		t.Fatal(err)
	}
	actor[0], target[0] = "x", "y"
	if d.Actor[0] != "researcher" || d.Target[0] != "editor" || d.Action != AssignRole {
		t.Errorf("Denied shares the caller's slices: %+v", d)
	}
}
