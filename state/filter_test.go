package state

import (
	"strings"
	"testing"

	"github.com/pursuance/pursuance/identity"
)

func TestFilter(t *testing.T) {
	me := identity.PublicKey{1}
	bob := identity.PublicKey{2}
	names := map[identity.PublicKey]string{me: "alice", bob: "bob"}
	ctx := FilterContext{Me: me, MyRoles: []string{"researcher"}, NameOf: func(k identity.PublicKey) string { return names[k] }}
	tasks := map[string]*Task{
		"mine":     {Title: "Find the leak", Assignees: []Assignee{{Member: me}}, Status: StatusStarted, Due: "2026-12-01"},
		"role":     {Title: "Read files", Assignees: []Assignee{{Role: "researcher"}}, Status: StatusDone},
		"bobs":     {Title: "Call the source", Assignees: []Assignee{{Member: bob}}, Due: "2027-01-15"},
		"none":     {Title: "Leak timeline"},
		"archived": {Title: "Old leak", Archived: true},
	}
	cases := []struct {
		expr string
		want []string
	}{
		{"", []string{"bobs", "mine", "none", "role"}},
		{"@me", []string{"mine", "role"}},
		{"@-", []string{"none"}},
		{"@bob", []string{"bobs"}},
		{"@BOB", []string{"bobs"}},
		{"@researcher", []string{"role"}},
		{"status:Done", []string{"role"}},
		{"status:!Done", []string{"bobs", "mine", "none"}},
		{"status:!done @me", []string{"mine"}},
		{"due:<2026-12-31", []string{"mine"}},
		{"due:>2026-12", []string{"bobs"}},
		{"due:<2027", []string{"mine"}},
		{"leak", []string{"mine", "none"}},
		{"LEAK timeline", []string{"none"}},
		{"archived", []string{"archived"}},
		{"archived leak", []string{"archived"}},
		{"nothing-matches", nil},
	}
	for _, c := range cases {
		f, err := ParseFilter(c.expr)
		if err != nil {
			t.Fatalf("%q: %v", c.expr, err)
		}
		var got []string
		for _, name := range []string{"archived", "bobs", "mine", "none", "role"} {
			if f.Match(tasks[name], ctx) {
				got = append(got, name)
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%q: got %v, want %v", c.expr, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%q: got %v, want %v", c.expr, got, c.want)
				break
			}
		}
	}
	for _, bad := range []string{"@", "status:Finished", "due:2026", "due:<26-1", "due:<2026-1x-01", "status:!"} {
		if _, err := ParseFilter(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCheckRelayURL(t *testing.T) {
	for _, good := range []string{"http://127.0.0.1:8765", "https://relay.example.org", "https://relay.example.org/pursuance", "http://[::1]:8765", "http://localhost:1",
		"https://a.example.org,https://b.example.org:8765"} {
		if err := CheckRelayURL(good); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
	for _, bad := range []string{"", "relay.example", "ftp://x", "http://", "https://Relay.example", "http://x/", "http://x?a=1", "http://u@x", "http://x#f",
		"http://x:", "http://x:0123", "http://x:123456", "http://x:8a", "http://[::1", "http://x//y", "http://x/a b", "http://" + strings.Repeat("a", 300),
		"http://a,http://a", "http://a,", ",http://a", "http://a,ftp://b", "http://a,http://B", "http://a,http://b,http://c,http://d,http://e,http://f,http://g,http://h,http://i"} {
		if err := CheckRelayURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
