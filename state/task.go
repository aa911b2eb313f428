package state

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// Status is a task's status: the original Pursuance's seven. Wire values;
// only append.
type Status uint8

const (
	StatusNew Status = iota
	StatusStarted
	StatusWorkingOn
	StatusHelpWanted
	StatusReadyForReview
	StatusReviewing
	StatusDone
	statusEnd
)

var statusNames = [...]string{"New", "Started", "WorkingOn", "HelpWanted", "ReadyForReview", "Reviewing", "Done"}

// StatusNames returns the names of the statuses, in workflow order.
func StatusNames() []string { return append([]string(nil), statusNames[:]...) }

// Valid reports whether s is one of the seven statuses.
func (s Status) Valid() bool { return s < statusEnd }

func (s Status) String() string {
	if s.Valid() {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", s)
}

// ParseStatus parses a status name, ignoring case, spaces, hyphens and
// underscores ("working-on", "Working On" and "WorkingOn" are one status).
func ParseStatus(s string) (Status, error) {
	norm := strings.NewReplacer(" ", "", "-", "", "_", "").Replace(strings.ToLower(s))
	for i, n := range statusNames {
		if strings.ToLower(n) == norm {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("unknown status %q (statuses are %s)", s, strings.Join(statusNames[:], ", "))
}

// An Assignee is a member or a role. Its text form is the member ID, or
// "role:" and the role's name.
type Assignee struct {
	Member identity.PublicKey // zero for a role
	Role   string
}

// ParseAssignee parses an assignee's text form.
func ParseAssignee(s string) (Assignee, error) {
	if r, ok := strings.CutPrefix(s, "role:"); ok {
		if r == "" || len(r) > 32 {
			return Assignee{}, fmt.Errorf("bad role assignee %q", s)
		}
		return Assignee{Role: r}, nil
	}
	pk, err := identity.ParseMemberID(s)
	if err != nil {
		return Assignee{}, fmt.Errorf("bad assignee %q: %w", s, err)
	}
	return Assignee{Member: pk}, nil
}

// IsRole reports whether the assignee is a role.
func (a Assignee) IsRole() bool { return a.Role != "" }

func (a Assignee) String() string {
	if a.IsRole() {
		return "role:" + a.Role
	}
	return a.Member.String()
}

// Task is a task's state as the log has settled it.
type Task struct {
	ID        event.ID
	Creator   identity.PublicKey
	Parent    event.ID // zero for a root task
	Title     string
	Body      string
	Due       string // YYYY-MM-DD or ""
	Status    Status
	VisibleTo []string   // roles; empty: every member
	Assignees []Assignee // sorted by text form
	Archived  bool
	Comments  []Comment // in log order
	Files     []File    // attachments, in log order
	Created   uint64    // claimed creation time, Unix ms (display only)
	Updated   uint64    // claimed time of the last accepted change
	// Sealed is set when this member could not open the task's creation:
	// only what later events it can open have set is known.
	Sealed bool
	// Origin is set for a task received from another pursuance over a
	// link (a link-receive made it): its ID is the hand-off's.
	Origin *TaskOrigin

	// assigned maps an assignee's text form to the IDs of the accepted
	// events that added it and that no accepted unassign has observed:
	// the add-wins set.
	assigned map[string]*tagSet
	// touched is the highest seq of each author's accepted events on this
	// task, to tell quickly whether an event saw all of them: a few
	// authors a task, so a list, smaller than a map (docs/fold.md).
	touched []touch
}

// touch is the highest seq of an author's (by index) accepted events on
// a task.
type touch struct {
	author uint32
	seq    uint64
}

// touch records that author index i's event at seq acted on t.
func (t *Task) touch(i uint32, seq uint64) {
	for k := range t.touched {
		if t.touched[k].author == i {
			t.touched[k].seq = max(t.touched[k].seq, seq)
			return
		}
	}
	t.touched = append(t.touched, touch{i, seq})
}

// clone returns a copy of t that shares nothing the fold changes in place
// (State.Extend changes the copy; readers of the state t is from keep t).
func (t *Task) clone() *Task {
	c := *t
	c.VisibleTo = slices.Clone(t.VisibleTo)
	c.Assignees = slices.Clone(t.Assignees)
	c.Comments = slices.Clone(t.Comments)
	c.Files = slices.Clone(t.Files)
	c.assigned = nil
	if t.assigned != nil {
		c.assigned = make(map[string]*tagSet, len(t.assigned))
	}
	for k, ts := range t.assigned {
		c.assigned[k] = &tagSet{who: ts.who, tags: slices.Clone(ts.tags)}
	}
	c.touched = slices.Clone(t.touched)
	return &c
}

// Comment is one comment on a task.
type Comment struct {
	ID     event.ID
	Author identity.PublicKey
	Text   string
	Time   uint64 // claimed, display only
}

// AssignedTo reports whether the task is assigned to the member or to one
// of roles.
func (t *Task) AssignedTo(m identity.PublicKey, roles []string) bool {
	for _, a := range t.Assignees {
		if a.IsRole() {
			if slices.Contains(roles, a.Role) {
				return true
			}
		} else if a.Member == m {
			return true
		}
	}
	return false
}

// tagSet is one assignee in the add-wins set: the IDs of the accepted
// events that added it and that no accepted unassign has observed.
type tagSet struct {
	who  Assignee
	tags []event.ID
}

// addTag adds the assignee s (in canonical text form) with tag.
func (t *Task) addTag(s string, tag event.ID) {
	ts := t.assigned[s]
	if ts == nil {
		who, err := ParseAssignee(s)
		if err != nil {
			return // DecodeOp admits only canonical assignees
		}
		ts = &tagSet{who: who}
		if t.assigned == nil {
			t.assigned = make(map[string]*tagSet) // made on the first: most tasks have none
		}
		t.assigned[s] = ts
	}
	ts.tags = append(ts.tags, tag)
}

// isAssigned reports whether the assignee s is in the set.
func (t *Task) isAssigned(s string) bool {
	ts := t.assigned[s]
	return ts != nil && len(ts.tags) > 0
}

// syncAssignees recomputes the sorted Assignees list from the add-wins set.
func (t *Task) syncAssignees() {
	t.Assignees = t.Assignees[:0]
	for _, ts := range t.assigned {
		if len(ts.tags) > 0 {
			t.Assignees = append(t.Assignees, ts.who)
		}
	}
	slices.SortFunc(t.Assignees, func(a, b Assignee) int { return strings.Compare(a.String(), b.String()) })
}
