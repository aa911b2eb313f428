package charter

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/desk.cbor from the desk template")

// roundTrip checks that c survives YAML and CBOR unchanged, and that its
// wire form is stable.
func roundTrip(t *testing.T, c *Charter) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	y := c.YAML()
	c2, err := Parse(y)
	if err != nil {
		t.Fatalf("Parse(YAML()): %v\n%s", err, y)
	}
	if !reflect.DeepEqual(c, c2) {
		t.Fatalf("Parse(YAML()) differs:\n got %#v\nwant %#v\n%s", c2, c, y)
	}
	if y2 := c2.YAML(); !bytes.Equal(y, y2) {
		t.Fatalf("YAML not stable:\n%s\n---\n%s", y, y2)
	}
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	c3, err := Unmarshal(b)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(c, c3) {
		t.Fatalf("Unmarshal(MarshalBinary()) differs:\n got %#v\nwant %#v", c3, c)
	}
	b2, err := c3.MarshalBinary()
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("wire form not byte-identical after a round trip (%v)", err)
	}
}

func TestTemplates(t *testing.T) {
	if got, want := TemplateNames(), []string{"desk", "ladder", "collective"}; !slices.Equal(got, want) {
		t.Fatalf("TemplateNames() = %v, want %v", got, want)
	}
	for _, name := range TemplateNames() {
		t.Run(name, func(t *testing.T) {
			src, err := TemplateYAML(name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(src, []byte("\n  # ")) {
				t.Errorf("template %s has no comments explaining its roles", name)
			}
			c, err := Parse(src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			c2, err := Template(name)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, c2) {
				t.Fatal("Template differs from Parse(TemplateYAML)")
			}
			c2.Roles[0].Name = "changed" // a copy: must not affect the next call
			if c3, _ := Template(name); c3.Roles[0].Name == "changed" {
				t.Fatal("Template returns shared state")
			}
			roundTrip(t, c)
		})
	}
	for _, bad := range []string{"", "Desk", "nope"} {
		if _, err := Template(bad); err == nil || !strings.Contains(err.Error(), "desk, ladder, collective") {
			t.Errorf("Template(%q) = %v, want an error listing the templates", bad, err)
		}
		if _, err := TemplateYAML(bad); err == nil {
			t.Errorf("TemplateYAML(%q) succeeded", bad)
		}
	}
}

// TestTemplateShapes pins the roles and grants of the templates to the
// sentences of cli.md.
func TestTemplateShapes(t *testing.T) {
	desk := mustTemplate(t, "desk")
	if got := desk.RoleNames(); !slices.Equal(got, []string{"editor", "researcher"}) {
		t.Errorf("desk roles = %v", got)
	}
	// Every action but take-over: editors hold the top role already.
	if len(desk.Roles[0].Grants) != len(Actions())-1 {
		t.Errorf("desk editor has %d grants, want all %d but take-over", len(desk.Roles[0].Grants), len(Actions())-1)
	}
	for _, g := range desk.Roles[0].Grants {
		if g.Action.kind() == roleAction && !slices.Equal(g.Roles, []string{"*"}) ||
			g.Action.kind() == taskAction && !slices.Equal(g.Tasks, []string{"any"}) {
			t.Errorf("desk editor's %s grant = %+v, want everything", g.Action, g)
		}
	}
	wantResearcher := []Grant{
		{Action: Comment, Tasks: []string{"any"}},
		{Action: CreateTask},
		{Action: SetStatus, Tasks: []string{"assigned"}},
		{Action: TakeOver, Roles: []string{"editor"}},
	}
	if r, _ := desk.Role("researcher"); !reflect.DeepEqual(r.Grants, wantResearcher) || !slices.Equal(r.TaskVisibility, []string{"editor", "researcher"}) {
		t.Errorf("desk researcher = %+v", r)
	}

	ladder := mustTemplate(t, "ladder")
	rungs := []string{"primary", "admin", "asst-admin", "recruiter", "assigner", "contributor", "viewer", "untrusted"}
	if got := ladder.RoleNames(); !slices.Equal(got, rungs) {
		t.Errorf("ladder roles = %v", got)
	}
	// Each rung may do at least what the one below it may.
	// (take-over excepted: a rung takes over the one above it only.)
	for i := 0; i+1 < len(ladder.Roles); i++ {
		for _, g := range ladder.Roles[i+1].Grants {
			if _, ok := ladder.Roles[i].grant(g.Action); !ok && g.Action != TakeOver {
				t.Errorf("ladder %s lacks %s, which %s has", rungs[i], g.Action, rungs[i+1])
			}
		}
	}
	for i := 0; i < len(rungs)-1; i++ { // every role from viewer up sees below
		g, ok := ladder.Roles[i].grant(SeeTasks)
		want := []string{"below"}
		if i == 0 {
			want = []string{"*"}
		}
		if !ok || !slices.Equal(g.Roles, want) {
			t.Errorf("ladder %s see-tasks = %+v, want %v", rungs[i], g, want)
		}
	}
	if _, ok := ladder.Roles[7].grant(SeeTasks); ok {
		t.Error("ladder untrusted has see-tasks")
	}

	coll := mustTemplate(t, "collective")
	if got := coll.RoleNames(); !slices.Equal(got, []string{"member"}) {
		t.Errorf("collective roles = %v", got)
	}
	if n := len(coll.Roles[0].Grants); n != len(Actions())-1 {
		t.Errorf("collective member has %d grants, want all %d but take-over", n, len(Actions())-1)
	}
	var quorums []Action
	for _, q := range coll.Quorums {
		quorums = append(quorums, q.Action)
		if q.Approvals != 0 || q.Of != "member" {
			t.Errorf("collective quorum %+v, want a majority of member", q)
		}
	}
	if want := []Action{AmendCharter, AssignRole, RemoveMember, RevokeRole}; !slices.Equal(quorums, want) {
		t.Errorf("collective quorums on %v, want %v", quorums, want)
	}
}

func mustTemplate(t *testing.T, name string) *Charter {
	t.Helper()
	c, err := Template(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGoldenWire pins the wire form of the desk template, so that it cannot
// drift silently. Run with -update after an intended change, and update
// docs/charter.md with it.
func TestGoldenWire(t *testing.T) {
	b, err := mustTemplate(t, "desk").MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "desk.cbor")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("wire form of the desk template changed:\n got %x\nwant %x", b, want)
	}
	c, err := Unmarshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, mustTemplate(t, "desk")) {
		t.Fatal("golden bytes decode to another charter")
	}
}

func TestAccessors(t *testing.T) {
	c := mustTemplate(t, "ladder")
	if got := c.FounderRole(); got != "primary" {
		t.Errorf("FounderRole() = %q", got)
	}
	for _, tc := range []struct {
		role string
		rank int
	}{{"primary", 0}, {"admin", 1}, {"untrusted", 7}, {"nobody", -1}, {"", -1}, {"*", -1}, {"below", -1}} {
		if got := c.Rank(tc.role); got != tc.rank {
			t.Errorf("Rank(%q) = %d, want %d", tc.role, got, tc.rank)
		}
		r, ok := c.Role(tc.role)
		if ok != (tc.rank >= 0) || ok && r.Name != tc.role {
			t.Errorf("Role(%q) = %v, %v", tc.role, r, ok)
		}
	}
	names := c.RoleNames()
	names[0] = "mutated"
	if c.Roles[0].Name != "primary" {
		t.Error("RoleNames shares the charter's memory")
	}
	var empty Charter
	if empty.FounderRole() != "" || empty.Rank("x") != -1 || len(empty.RoleNames()) != 0 {
		t.Error("accessors of an empty charter")
	}
	acts := Actions()
	if len(acts) != 17 || acts[0] != AmendCharter || acts[14] != LinkPursuances || acts[15] != PublishProfile || acts[16] != TakeOver {
		t.Errorf("Actions() = %v", acts)
	}
	for _, a := range acts {
		if a.kind() == unknownAction {
			t.Errorf("action %s has no kind", a)
		}
	}
}

func TestQuorum(t *testing.T) {
	c := mustTemplate(t, "collective")
	q, ok := c.QuorumFor(RemoveMember)
	if !ok || q.Of != "member" {
		t.Fatalf("QuorumFor(remove-member) = %+v, %v", q, ok)
	}
	for _, tc := range []struct{ holders, needed int }{{0, 1}, {1, 1}, {2, 2}, {3, 2}, {4, 3}, {5, 3}, {10, 6}} {
		if got := q.Needed(tc.holders); got != tc.needed {
			t.Errorf("majority Needed(%d) = %d, want %d", tc.holders, got, tc.needed)
		}
	}
	for _, a := range []Action{AmendCharter, AssignRole, RevokeRole} {
		if _, ok := c.QuorumFor(a); !ok {
			t.Errorf("collective has no quorum for %s", a)
		}
	}
	for _, a := range []Action{Invite, CreateTask, Comment} {
		if q, ok := c.QuorumFor(a); ok {
			t.Errorf("collective has a quorum for %s: %+v", a, q)
		}
	}
	if got := (Quorum{Approvals: 2}).Needed(7); got != 2 {
		t.Errorf("fixed Needed = %d, want 2", got)
	}
}

// TestYAMLText checks that free text of every shape survives YAML.
func TestYAMLText(t *testing.T) {
	texts := []string{
		"Night Desk", "Publish what matters.", "a: b", "x #y", "#hash", "- dash", "[x]", "{x}", "'quoted'",
		`"double"`, "back\\slash", "true", "False", "null", "~", "yes", "no", "on", "y", "n", "123", "0x1f", "1.5",
		".inf", "-", "?", "*", "&a", "!tag", "%", "@", "`", "é café", "日本語", "emoji 😀", "non\u00a0breaking",
		"line\u2028sep", " leading", "trailing ", "two  spaces", "tab\there", "a, b", "O'Brien", "50% off",
		"x,", "ends with colon:", "@mention",
	}
	multiline := []string{
		"one\ntwo", "one\ntwo\n", "one\n\nthree", "one\n  indented", "  first indented\nsecond",
		"trailing \nspace", "\nleading newline", "two newlines\n\n", "tab\tin\nlines", "- item\n- item\n",
		"# not a comment\nreally", "| pipe\n> fold", "\n", "\n\n",
	}
	for _, s := range append(texts, multiline...) {
		c := &Charter{
			Name:    "n",
			Mission: s,
			Roles:   []Role{{Name: "a", Description: s}},
		}
		if !strings.Contains(s, "\n") && !strings.Contains(s, "\t") {
			c.Name = s
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		y := c.YAML()
		c2, err := Parse(y)
		if err != nil {
			t.Errorf("%q: Parse(YAML()): %v\n%s", s, err, y)
			continue
		}
		if !reflect.DeepEqual(c, c2) {
			t.Errorf("%q: round trip gave name %q mission %q description %q\n%s", s, c2.Name, c2.Mission, c2.Roles[0].Description, y)
		}
	}
}

// TestYAMLRoleNames checks that role names YAML would read as something
// else are quoted.
func TestYAMLRoleNames(t *testing.T) {
	for _, name := range []string{"true", "false", "null", "y", "n", "yes", "no", "on", "off", "nan", "inf", "a-b", "x1"} {
		both := []string{"boss", name}
		slices.Sort(both)
		c := &Charter{Name: "t", Roles: []Role{
			{Name: "boss", Grants: []Grant{{Action: Invite, Roles: []string{name}}, {Action: SeeTasks, Roles: both}}},
			{Name: name, TaskVisibility: both},
		}, Quorums: []Quorum{{Action: Invite, Approvals: 1, Of: name}}}
		roundTrip(t, c)
	}
}

func TestValidateErrorsHaveNoLines(t *testing.T) {
	c := &Charter{Roles: []Role{{Name: "a"}, {Name: "b"}}}
	err := c.Validate()
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("Validate() = %v, want two errors", err)
	}
	for _, e := range list {
		if e.Line != 0 || strings.HasPrefix(e.Error(), "line") {
			t.Errorf("error with a line: %q", e.Error())
		}
	}
	if !errors.Is(err, ErrInvalid) {
		t.Error("not ErrInvalid")
	}
	if got, want := err.Error(), "\"name\" is missing or empty\nrole \"b\" can never be held: no role may assign or invite into it"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
