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
	Created   uint64    // claimed creation time, Unix ms (display only)
	Updated   uint64    // claimed time of the last accepted change

	// assigned maps an assignee's text form to the IDs of the accepted
	// events that added it and that no accepted unassign has observed:
	// the add-wins set.
	assigned map[string][]event.ID
	// touched is the highest seq of each author's accepted events on this
	// task, to tell quickly whether an event saw all of them.
	touched map[uint32]uint64
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

// syncAssignees recomputes the sorted Assignees list from the add-wins set.
func (t *Task) syncAssignees() {
	t.Assignees = t.Assignees[:0]
	keys := make([]string, 0, len(t.assigned))
	for k, tags := range t.assigned {
		if len(tags) > 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		a, err := ParseAssignee(k)
		if err == nil {
			t.Assignees = append(t.Assignees, a)
		}
	}
}
