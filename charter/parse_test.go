package charter

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// head is a valid start of a charter whose first role, on line 3, may
// assign every role; tests append roles and quorums after it.
const head = `name: Test
roles:
  - name: boss
    can:
      assign-role: "*"
      remove-member: "*"
`

// brokenCharters each hold one mistake, on line, whose message contains
// msg. They also seed FuzzParse.
var brokenCharters = []struct {
	name string
	src  string
	line int
	msg  string
}{
	{"syntax", head + "  - name: [x\n", 7, "syntax error"},
	{"syntax tab", "name: x\nroles:\n\t- name: a\n", 3, "syntax error"},
	{"unquoted star", head + "  - name: a\n    can:\n      invite: *\n", 9, `write "*" in quotes`},
	{"duplicate key", "name: a\nname: b\nroles:\n  - name: x\n", 2, "syntax error: mapping key \"name\" already defined"},
	{"empty file", "", 1, `"name" is missing or empty`},
	{"comments only", "# nothing\n", 1, `"name" is missing or empty`},
	{"not a mapping", "- name: x\n", 1, "a charter must be a mapping, not a list"},
	{"two documents", head + "---\nname: x\n", 8, "one YAML document"},
	{"missing name", "roles:\n  - name: a\n", 1, `"name" is missing or empty`},
	{"empty name", "name: \"\"\nroles:\n  - name: a\n", 1, `"name" is missing or empty`},
	{"blank name", "name: \"  \"\nroles:\n  - name: a\n", 1, `"name" is missing or empty`},
	{"name not text", "name: {a: b}\nroles:\n  - name: a\n", 1, `"name" must be text, not a mapping`},
	{"long name", "name: " + strings.Repeat("x", 101) + "\nroles:\n  - name: a\n", 1, "name is too long (101 characters; at most 100)"},
	{"long mission", "name: x\nmission: " + strings.Repeat("m", 2001) + "\nroles:\n  - name: a\n", 2, "mission is too long"},
	{"control character", "name: \"a\\u0007b\"\nroles:\n  - name: a\n", 1, "name contains the control character U+0007"},
	{"missing roles", "name: x\n", 1, `"roles" is missing or empty`},
	{"empty roles", "name: x\nroles: []\n", 2, `"roles" is missing or empty`},
	{"roles not a list", "name: x\nroles:\n  boss: {}\n", 3, `"roles" must be a list of roles, not a mapping`},
	{"role not a mapping", head + "  - researcher\n", 7, "a role must be a mapping"},
	{"unknown top-level key", "name: x\nrolse: []\nroles:\n  - name: a\n", 2, `unknown key "rolse" in the charter (keys are: name, mission, roles, quorum, keys, continuity)`},
	{"unknown key history", head + "keys:\n  history: forever\n", 8, `"history" must be chained or from-join, not "forever"`},
	{"bad period", head + "keys:\n  rotate-every: 3w\n", 8, `"rotate-every": "3w" is not a period`},
	{"period too short", head + "keys:\n  rotate-every: 30m\n", 1, `the shortest period is 1h`},
	{"unknown keys key", head + "keys:\n  rotate: 1d\n", 8, `unknown key "rotate" in "keys" (keys are: history, rotate-every)`},
	{"unknown role key", head + "  - name: a\n    colour: red\n", 8, `unknown key "colour" in a role`},
	{"role without name", head + "  - description: nameless\n", 7, "role 2 has no name"},
	{"bad role name", head + "  - name: Writer\n", 7, `bad role name "Writer"`},
	{"role name with space", head + "  - name: night shift\n", 7, `bad role name "night shift"`},
	{"role name too long", head + "  - name: " + strings.Repeat("r", 33) + "\n", 7, "bad role name"},
	{"reserved role name", head + "  - name: below\n", 7, `role name "below" is reserved`},
	{"reserved star", head + "  - name: \"*\"\n", 7, `role name "*" is reserved`},
	{"duplicate role", head + "  - name: a\n  - name: boss\n", 8, `duplicate role "boss" (first at line 3)`},
	{"unknown action", head + "  - name: a\n    can:\n      close-task: any\n", 9, `unknown action "close-task" (actions are: amend-charter, assign-role,`},
	{"can not a mapping", head + "  - name: a\n    can: [comment]\n", 8, `"can" must be a mapping, not a list`},
	{"plain given a list", head + "  - name: a\n    can:\n      amend-charter: [x]\n", 9, "amend-charter takes true or false, not a list"},
	{"plain given a string", head + "  - name: a\n    can:\n      create-task: yes\n", 9, `create-task takes true or false, not "yes"`},
	{"task scope unknown", head + "  - name: a\n    can:\n      edit-task: everything\n", 9, `edit-task takes a task scope (any, assigned, own) or a list of them, not "everything"`},
	{"task scope in list", head + "  - name: a\n    can:\n      comment:\n        - any\n        - mine\n", 11, `comment takes a task scope (any, assigned, own) or a list of them, not "mine"`},
	{"task scope given true", head + "  - name: a\n    can:\n      set-status: true\n", 9, "set-status takes a task scope"},
	{"role list given true", head + "  - name: a\n    can:\n      assign-role: true\n", 9, `assign-role takes a role name, "*", "below" or a list of role names, not true`},
	{"role list given nothing", head + "  - name: a\n    can:\n      invite:\n", 9, "invite takes a role name"},
	{"role list item not text", head + "  - name: a\n    can:\n      invite: [a, 7]\n", 9, "invite: expected a role name, not 7"},
	{"empty role list", head + "  - name: a\n    can:\n      invite: []\n", 9, `role "a": invite names no role`},
	{"unknown role in grant", "name: x\nroles:\n  - name: editor\n    can:\n      assign-role: [researcher, wroker]\n  - name: researcher\n", 5, `unknown role "wroker" in assign-role (roles are: editor, researcher)`},
	{"unknown role in block list", head + "  - name: a\n    can:\n      see-tasks:\n        - boss\n        - ghost\n", 11, `unknown role "ghost" in see-tasks`},
	{"unknown role in task-visibility", head + "  - name: a\n    task-visibility: [a, nobody]\n", 8, `unknown role "nobody" in task-visibility (roles are: boss, a)`},
	{"task-visibility not a list", head + "  - name: a\n    task-visibility: {a: 1}\n", 8, "task-visibility takes a role name or a list of role names, not a mapping"},
	{"never held", head[:strings.Index(head, "    can:")] + "  - name: auditor\n", 4, `role "auditor" can never be held: no role may assign or invite into it`},
	{"never held in a cycle", "name: x\nroles:\n  - name: a\n  - name: b\n    can: {assign-role: c}\n  - name: c\n    can: {invite: b}\n", 4, `role "b" can never be held: only roles that can never be held may assign or invite into it`},
	{"below does not reach up", "name: x\nroles:\n  - name: a\n  - name: b\n    can: {invite: below}\n  - name: c\n", 4, `role "b" can never be held`},
	{"flow style", `{name: x, roles: [{name: a, can: {invite: [a]}}, {name: b}]}`, 1, `role "b" can never be held`},
	{"anchor", head + "  - name: &n a\n", 7, "anchors, aliases, merge keys and tags are not supported"},
	{"tag", "name: !!str x\nroles:\n  - name: a\n", 1, "anchors, aliases, merge keys and tags are not supported"},
	{"quorum unknown action", head + "quorum:\n  frobnicate: {approvals: 1, of: boss}\n", 8, `unknown action "frobnicate" in quorum`},
	{"quorum not a mapping", head + "quorum:\n  remove-member: 2\n", 8, "quorum of remove-member must be a mapping such as {approvals: 2, of: admin}, not 2"},
	{"quorum zero approvals", head + "quorum:\n  remove-member: {approvals: 0, of: boss}\n", 8, "approvals must be at least 1"},
	{"quorum negative approvals", head + "quorum:\n  remove-member:\n    of: boss\n    approvals: -2\n", 10, "approvals must be at least 1"},
	{"quorum approvals word", head + "quorum:\n  remove-member: {approvals: most, of: boss}\n", 8, `quorum of remove-member: approvals must be "majority" or a whole number from 1 to 2147483647, not "most"`},
	{"quorum approvals too many", head + "quorum:\n  remove-member: {approvals: 3000000000, of: boss}\n", 8, `approvals must be "majority" or a whole number from 1 to 2147483647, not 3000000000`},
	{"quorum missing approvals", head + "quorum:\n  remove-member: {of: boss}\n", 8, `quorum of remove-member: missing "approvals"`},
	{"quorum missing of", head + "quorum:\n  remove-member: {approvals: 2}\n", 8, `quorum of remove-member: missing "of"`},
	{"quorum unknown of", head + "quorum:\n  remove-member: {approvals: 2, of: admin}\n", 8, `unknown role "admin" in quorum of remove-member (roles are: boss)`},
	{"quorum unknown key", head + "quorum:\n  remove-member: {approvals: 2, of: boss, by: x}\n", 8, `unknown key "by" in a quorum (keys are: approvals, of)`},
	{"quorum on ungranted action", head + "quorum:\n  amend-charter: {approvals: majority, of: boss}\n", 8, "quorum on amend-charter, but no role may amend-charter"},
	{"quorum on a task action", head + "quorum:\n  comment: {approvals: 2, of: boss}\n", 8, "quorum on comment: only amend-charter, assign-role, revoke-role, invite, remove-member, link-pursuances, publish-profile, take-over can require a quorum"},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range brokenCharters {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded:\n%s", c.YAML())
			}
			if c != nil {
				t.Error("Parse returned a charter with an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList", err)
			}
			for _, e := range list {
				if e.Line == tc.line && strings.Contains(e.Msg, tc.msg) {
					if want := "line " + strconv.Itoa(tc.line) + ": "; !strings.HasPrefix(e.Error(), want) {
						t.Errorf("Error() = %q, want prefix %q", e.Error(), want)
					}
					return
				}
			}
			t.Errorf("want line %d: ...%s..., got:\n%v", tc.line, tc.msg, err)
		})
	}
}

// TestParseCollectsAll checks that Parse reports every problem, sorted by
// line, not just the first.
func TestParseCollectsAll(t *testing.T) {
	src := `name: x
roles:
  - name: editor
    can:
      assign-role: [researcher, wroker]
      frob: true
      amend-charter: [x]
    task-visibility: [nobody]
  - name: Researcher
  - name: editor
quorum:
  remove-member: {approvals: 0, of: editor}
`
	_, err := Parse([]byte(src))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Parse: %v", err)
	}
	want := []int{5, 5, 6, 7, 8, 9, 10, 12} // line 5: researcher and wroker
	if len(list) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, e := range list {
		if e.Line != want[i] {
			t.Errorf("error %d on line %d, want %d: %v", i, e.Line, want[i], e)
		}
	}
	if n := strings.Count(err.Error(), "\n"); n != len(want)-1 {
		t.Errorf("Error() has %d lines, want %d", n+1, len(want))
	}
}

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want func(*Charter) bool
	}{
		{"false is no grant", head + "  - name: a\n    can: {amend-charter: false, create-task: true}\n", func(c *Charter) bool {
			r, _ := c.Role("a")
			return len(r.Grants) == 1 && r.Grants[0].Action == CreateTask
		}},
		{"lists sorted and deduplicated", head + "  - name: b\n  - name: a\n    can:\n      invite: [b, a, b]\n      comment: [own, assigned, own]\n    task-visibility: [b, a, a]\n", func(c *Charter) bool {
			r, _ := c.Role("a")
			g, _ := r.grant(Invite)
			s, _ := r.grant(Comment)
			return strings.Join(g.Roles, ",") == "a,b" && strings.Join(s.Tasks, ",") == "assigned,own" && strings.Join(r.TaskVisibility, ",") == "a,b"
		}},
		{"grants sorted", head, func(c *Charter) bool {
			return c.Roles[0].Grants[0].Action == AssignRole && c.Roles[0].Grants[1].Action == RemoveMember
		}},
		{"quorums sorted, majority", head + "quorum:\n  remove-member: {approvals: 2, of: boss}\n  assign-role: {approvals: majority, of: boss}\n", func(c *Charter) bool {
			return len(c.Quorums) == 2 && c.Quorums[0] == Quorum{Action: AssignRole, Of: "boss"} &&
				c.Quorums[1] == Quorum{Action: RemoveMember, Approvals: 2, Of: "boss"}
		}},
		{"key policy", head + "keys:\n  history: from-join\n  rotate-every: 30d\n", func(c *Charter) bool {
			return c.Keys == Keys{History: HistoryFromJoin, RotateEvery: 30 * 86400}
		}},
		{"chained history is the default", head + "keys: {history: chained, rotate-every: 36h}\n", func(c *Charter) bool {
			return c.Keys == Keys{RotateEvery: 36 * 3600}
		}},
		{"multi-line mission", "name: x\nmission: |\n  Line one.\n  Line two.\nroles:\n  - name: a\n", func(c *Charter) bool {
			return c.Mission == "Line one.\nLine two.\n"
		}},
		{"numeric name", "name: 2024\nroles:\n  - name: a\n", func(c *Charter) bool { return c.Name == "2024" }},
		{"empty can and task-visibility", "name: x\nroles:\n  - name: a\n    can:\n    task-visibility:\n", func(c *Charter) bool {
			return c.Roles[0].Grants == nil && c.Roles[0].TaskVisibility == nil
		}},
		{"flow style", `{name: x, roles: [{name: a, can: {invite: [a, b]}}, {name: b}]}`, func(c *Charter) bool {
			return c.Rank("b") == 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tc.want(c) {
				t.Errorf("unexpected charter: %#v", c)
			}
			roundTrip(t, c)
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	src := "name: x\nroles:\n  - name: a\n" + strings.Repeat("#\n", MaxYAMLSize)
	if _, err := Parse([]byte(src)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("Parse = %v", err)
	}
}

// TestValidate checks the rules Parse cannot break but a hand-built or
// decoded charter can.
func TestValidate(t *testing.T) {
	valid := func() *Charter {
		return &Charter{Name: "x", Roles: []Role{
			{Name: "a", Grants: []Grant{{Action: Invite, Roles: []string{"b"}}}},
			{Name: "b"},
		}}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid charter: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Charter)
		msg    string
	}{
		{"no roles", func(c *Charter) { c.Roles = nil }, `"roles" is missing or empty`},
		{"invalid UTF-8", func(c *Charter) { c.Mission = "\xff" }, "mission is not valid UTF-8"},
		{"newline in name", func(c *Charter) { c.Name = "a\nb" }, "name contains the control character U+000A"},
		{"long description", func(c *Charter) { c.Roles[1].Description = strings.Repeat("d", 501) }, `role "b" description is too long`},
		{"too many roles", func(c *Charter) {
			for i := 0; i < MaxRoles; i++ {
				c.Roles = append(c.Roles, Role{Name: "r" + strconv.Itoa(i)})
			}
			c.Roles[0].Grants[0].Roles = []string{"*"}
		}, "too many roles (66; at most 64)"},
		{"grants unsorted", func(c *Charter) {
			c.Roles[0].Grants = []Grant{{Action: Invite, Roles: []string{"b"}}, {Action: Comment, Tasks: []string{"any"}}}
		}, "grants are not sorted by action"},
		{"grant repeated", func(c *Charter) {
			c.Roles[0].Grants = append(c.Roles[0].Grants, Grant{Action: Invite, Roles: []string{"a"}})
		}, "invite granted twice"},
		{"unknown action", func(c *Charter) { c.Roles[1].Grants = []Grant{{Action: "fly"}} }, `unknown action "fly"`},
		{"plain with roles", func(c *Charter) { c.Roles[1].Grants = []Grant{{Action: CreateTask, Roles: []string{"a"}}} }, "create-task takes no roles or tasks"},
		{"role action with tasks", func(c *Charter) { c.Roles[0].Grants[0].Tasks = []string{"any"} }, "invite takes roles, not task scopes"},
		{"role action with no roles", func(c *Charter) { c.Roles[1].Grants = []Grant{{Action: SeeTasks}} }, "see-tasks names no role"},
		{"roles unsorted", func(c *Charter) { c.Roles[0].Grants[0].Roles = []string{"b", "a"} }, "roles of invite are not sorted"},
		{"task action with roles", func(c *Charter) {
			c.Roles[1].Grants = []Grant{{Action: Comment, Roles: []string{"a"}, Tasks: []string{"any"}}}
		}, "comment takes task scopes, not roles"},
		{"task action with no scope", func(c *Charter) { c.Roles[1].Grants = []Grant{{Action: Comment}} }, "comment names no task scope"},
		{"scopes unsorted", func(c *Charter) { c.Roles[1].Grants = []Grant{{Action: Comment, Tasks: []string{"own", "any"}}} }, "task scopes of comment are not sorted"},
		{"unknown scope", func(c *Charter) { c.Roles[1].Grants = []Grant{{Action: Comment, Tasks: []string{"all"}}} }, `unknown task scope "all"`},
		{"visibility unsorted", func(c *Charter) { c.Roles[1].TaskVisibility = []string{"b", "a"} }, "task-visibility is not sorted"},
		{"quorums unsorted", func(c *Charter) {
			c.Roles[0].Grants = append([]Grant{{Action: AmendCharter}}, c.Roles[0].Grants...)
			c.Quorums = []Quorum{{Action: Invite, Of: "a"}, {Action: AmendCharter, Of: "a"}}
		}, "quorums are not sorted by action or repeat"},
		{"quorum negative", func(c *Charter) { c.Quorums = []Quorum{{Action: Invite, Approvals: -1, Of: "a"}} }, "approvals must be at least 1"},
		{"quorum unknown action", func(c *Charter) { c.Quorums = []Quorum{{Action: "x", Of: "a"}} }, `unknown action "x" in quorum`},
		{"quorum no of", func(c *Charter) { c.Quorums = []Quorum{{Action: Invite}} }, `missing "of"`},
		{"too large", func(c *Charter) {
			for i := range c.Roles {
				c.Roles[i].Description = strings.Repeat("é", MaxDescriptionLen)
			}
			c.Mission = strings.Repeat("🦀", MaxMissionLen)
			for i := 0; i < 60; i++ {
				c.Roles = append(c.Roles, Role{Name: "r" + strconv.Itoa(i), Description: strings.Repeat("🦀", MaxDescriptionLen)})
			}
			c.Roles[0].Grants[0].Roles = []string{"*"}
		}, "charter too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(c)
			err := c.Validate()
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Validate() = %v, want ...%s...", err, tc.msg)
			}
			if _, err := c.MarshalBinary(); err == nil {
				t.Error("MarshalBinary accepted an invalid charter")
			}
		})
	}
}
