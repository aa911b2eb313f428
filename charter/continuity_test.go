package charter

import (
	"bytes"
	"strings"
	"testing"
)

// TestContinuityRoundTrip checks the continuity section parses, defaults
// its witnesses, writes back canonically, and survives the wire form.
func TestContinuityRoundTrip(t *testing.T) {
	src := `name: t
roles:
  - name: boss
    can: {amend-charter: true, invite: "*"}
  - name: deputy
    can: {take-over: boss}
continuity:
  inactive-after: 30d
  waiting: 7d
  proposals-expire: 12h
`
	c, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := Continuity{InactiveAfter: 30 * 86400, Witnesses: DefaultWitnesses, Waiting: 7 * 86400, ProposalsExpire: 12 * 3600}
	if c.Continuity != want {
		t.Fatalf("Continuity = %+v, want %+v", c.Continuity, want)
	}
	y := c.YAML()
	if !bytes.Contains(y, []byte("continuity:\n  inactive-after: 30d\n  witnesses: 2\n  waiting: 7d\n  proposals-expire: 12h\n")) {
		t.Errorf("YAML:\n%s", y)
	}
	c2, err := Parse(y)
	if err != nil || c2.Continuity != want {
		t.Fatalf("re-parse: %+v, %v", c2, err)
	}
	wire, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c3, err := Unmarshal(wire)
	if err != nil || c3.Continuity != want {
		t.Fatalf("wire round trip: %+v, %v", c3, err)
	}
	if err := c.Allows([]string{"deputy"}, TakeOver, []string{"boss"}, nil); err != nil {
		t.Error(err)
	}
}

func TestContinuityErrors(t *testing.T) {
	for _, tc := range []struct{ src, msg string }{
		{"continuity: {inactive-after: 10m}", `"inactive-after" is 10m; the shortest is 1h`},
		{"continuity: {inactive-after: 1d, witnesses: 0}", `"witnesses" must be a whole number from 1 to 16`},
		{"continuity: {inactive-after: 1d, witnesses: 17}", `"witnesses" must be a whole number from 1 to 16`},
		{"continuity: {waiting: 1d}", `"witnesses" and "waiting" need "inactive-after"`},
		{"continuity: {inactive-after: soon}", `"inactive-after": "soon" is not a period`},
		{"continuity: {idle: 1d}", `unknown key "idle" in "continuity"`},
		{"continuity: {proposals-expire: 5m}", `"proposals-expire" is 5m; the shortest is 1h`},
		{"continuity: {}\nquorum: {take-over: {approvals: 1, of: boss}}", `take-over needs continuity's "inactive-after"`},
	} {
		src := "name: t\nroles:\n  - name: boss\n    can: {amend-charter: true}\n  - name: deputy\n    can: {take-over: boss, invite: deputy}\n" + tc.src + "\n"
		if strings.Contains(tc.src, "quorum") {
			src = "name: t\nroles:\n  - name: boss\n    can: {amend-charter: true, take-over: boss, invite: '*'}\n" + tc.src + "\n"
		}
		_, err := Parse([]byte(src))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want ...%s...", tc.src, err, tc.msg)
		}
	}
	// A take-over grant without inactivity is refused even with no other
	// problem.
	_, err := Parse([]byte("name: t\nroles:\n  - name: boss\n    can: {invite: '*'}\n  - name: deputy\n    can: {take-over: boss}\n"))
	if err == nil || !strings.Contains(err.Error(), `role "deputy": take-over needs continuity's "inactive-after"`) {
		t.Errorf("take-over without continuity: %v", err)
	}
}

// TestExplainTemplates checks `charter show`'s words for each template.
func TestExplainTemplates(t *testing.T) {
	for name, want := range map[string][]string{
		"desk":       {"inactive once 30 days have passed", "second latest", "researcher may take over editor", "the claim waits 7 days", "Quorums are counted over active holders", "expires 30 days after"},
		"ladder":     {"admin may take over primary", "asst-admin may take over admin"},
		"collective": {"inactive once 60 days", "No role may take over another", "expires 30 days"},
	} {
		text := strings.Join(mustTemplate(t, name).Explain(), "\n")
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: %q not in\n%s", name, w, text)
			}
		}
	}
	var c Charter
	if got := strings.Join(c.Explain(), " "); !strings.Contains(got, "Nobody ever counts as inactive") || !strings.Contains(got, "never expire") {
		t.Errorf("no continuity: %s", got)
	}
}
