package state

import (
	"fmt"
	"strings"

	"github.com/pursuance/pursuance/identity"
)

// Filter selects tasks. Its language is the original Pursuance's: terms
// separated by spaces, all of which must match.
//
//	@me            assigned to me, or to one of my roles
//	@-             assigned to no one
//	@NAME          assigned to the member or role called NAME
//	status:Done    with that status; status:!Done without it
//	due:<DATE      due before DATE (YYYY-MM-DD, or a prefix: due:<2026-12);
//	               due:>DATE after it; tasks with no due date never match
//	archived       archived tasks (they are hidden otherwise)
//	WORD           the title contains WORD, ignoring case
type Filter struct {
	terms    []term
	archived bool
}

type term struct {
	kind   byte // '@' assignee, 's' status, '<' '>' due, 'w' word
	neg    bool
	text   string
	status Status
}

// FilterContext is what a filter needs to know about whoever applies it.
type FilterContext struct {
	Me      identity.PublicKey
	MyRoles []string
	// NameOf returns a member's display name.
	NameOf func(identity.PublicKey) string
}

// ParseFilter parses a filter expression. The empty expression matches
// every task that is not archived.
func ParseFilter(expr string) (*Filter, error) {
	f := &Filter{}
	for _, w := range strings.Fields(expr) {
		switch {
		case w == "archived":
			f.archived = true
		case strings.HasPrefix(w, "@"):
			if len(w) == 1 {
				return nil, fmt.Errorf("filter: %q: @ needs a name, me or -", w)
			}
			f.terms = append(f.terms, term{kind: '@', text: w[1:]})
		case strings.HasPrefix(strings.ToLower(w), "status:"):
			v := w[len("status:"):]
			neg := strings.HasPrefix(v, "!")
			st, err := ParseStatus(strings.TrimPrefix(v, "!"))
			if err != nil {
				return nil, fmt.Errorf("filter: %w", err)
			}
			f.terms = append(f.terms, term{kind: 's', neg: neg, status: st})
		case strings.HasPrefix(strings.ToLower(w), "due:"):
			v := w[len("due:"):]
			if len(v) < 2 || (v[0] != '<' && v[0] != '>') {
				return nil, fmt.Errorf("filter: %q: want due:<DATE or due:>DATE", w)
			}
			d := v[1:]
			if !datePrefix(d) {
				return nil, fmt.Errorf("filter: %q: the date is not YYYY-MM-DD or a prefix of it", w)
			}
			f.terms = append(f.terms, term{kind: v[0], text: d})
		default:
			f.terms = append(f.terms, term{kind: 'w', text: strings.ToLower(w)})
		}
	}
	return f, nil
}

// Match reports whether t matches the filter for the member in ctx.
func (f *Filter) Match(t *Task, ctx FilterContext) bool {
	if t.Archived != f.archived {
		return false
	}
	for _, x := range f.terms {
		if !x.match(t, ctx) {
			return false
		}
	}
	return true
}

func (x term) match(t *Task, ctx FilterContext) bool {
	switch x.kind {
	case '@':
		switch strings.ToLower(x.text) {
		case "me":
			return t.AssignedTo(ctx.Me, ctx.MyRoles)
		case "-":
			return len(t.Assignees) == 0
		}
		for _, a := range t.Assignees {
			if a.IsRole() {
				if strings.EqualFold(a.Role, x.text) || strings.EqualFold("role:"+a.Role, x.text) {
					return true
				}
			} else if ctx.NameOf != nil && strings.EqualFold(ctx.NameOf(a.Member), x.text) {
				return true
			} else if strings.HasPrefix(a.Member.String(), x.text) {
				return true
			}
		}
		return false
	case 's':
		return (t.Status == x.status) != x.neg
	case '<':
		return t.Due != "" && t.Due[:min(len(x.text), len(t.Due))] < x.text
	case '>':
		return t.Due != "" && t.Due[:min(len(x.text), len(t.Due))] > x.text
	case 'w':
		return strings.Contains(strings.ToLower(t.Title), x.text)
	}
	return false
}

// datePrefix reports whether d is YYYY, YYYY-MM or YYYY-MM-DD.
func datePrefix(d string) bool {
	const pattern = "0000-00-00"
	if len(d) != 4 && len(d) != 7 && len(d) != 10 {
		return false
	}
	for i := range len(d) {
		if pattern[i] == '-' {
			if d[i] != '-' {
				return false
			}
		} else if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}
