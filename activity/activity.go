// Package activity reads a pursuance's folded log for people: each event
// as a sentence ("Bob moved 'Verify the memo' to Done") with the task it
// is about (Describe, used by the CLI's `log` and the web UI's activity
// feed alike), and the member's inbox — what since its last visit asks
// for its attention (Inbox). It computes from a state.State only: no I/O,
// no clock, so the same log reads the same on every member's machine.
package activity

import (
	"fmt"
	"strings"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// MaxQuoted bounds the characters of a title quoted in a sentence.
const MaxQuoted = 60

// Line is one event of the log as a person reads it.
type Line struct {
	ID       event.ID
	Kind     string // the event's kind (task kinds for a sealed event this member opened)
	Member   identity.PublicKey
	Who      string // the member's name
	Sentence string // "Bob moved 'Verify the memo' to Done"
	// Task is the task the event is about (zero if none), and Title its
	// title as this member reads it now.
	Task  event.ID
	Title string
	// Rejected is set when the rules refused the event; Reason says why.
	Rejected bool
	Reason   string
	Time     uint64 // claimed, Unix ms, display only
}

// Lines describes every event of s's log, in log order.
func Lines(s *state.State) []Line {
	d := NewDescriber(s)
	log := s.Log()
	out := make([]Line, len(log))
	for i, en := range log {
		out[i] = d.Describe(en)
	}
	return out
}

// Describer describes events of one state; it indexes the state's
// received tasks once.
type Describer struct {
	s        *state.State
	received map[event.ID]event.ID // link-receive → the task it made
}

// NewDescriber returns a Describer of s.
func NewDescriber(s *state.State) *Describer {
	d := &Describer{s: s, received: map[event.ID]event.ID{}}
	for _, t := range s.Tasks() {
		if t.Origin != nil {
			d.received[t.Origin.Receive] = t.ID
		}
	}
	return d
}

// Target returns the task the event en is about, zero if none: the task
// it creates, edits, moves, assigns, comments on or archives, or the task
// a link-receive made.
func (d *Describer) Target(en state.Entry) event.ID {
	switch op := en.Op.(type) {
	case *state.TaskCreate:
		return en.ID
	case *state.TaskSealed:
		if op.Task.IsZero() {
			return en.ID // a sealed create
		}
		return op.Task
	case *state.LinkReceive:
		return d.received[en.ID]
	}
	// Every other task op names its task (state's table of op kinds).
	return state.TaskOf(en.Op)
}

// Describe reads one event as a sentence.
func (d *Describer) Describe(en state.Entry) Line {
	s := d.s
	m := s.MemberOf(en.Author)
	l := Line{ID: en.ID, Kind: en.Kind.String(), Member: m, Who: d.name(m), Rejected: !en.Accepted,
		Reason: en.Reason, Time: en.Time, Task: d.Target(en)}
	if !l.Task.IsZero() {
		if t, ok := s.Task(l.Task); ok && t.Title != "" {
			l.Title = t.Title
		}
	}
	task := d.quote(l.Title)
	who := l.Who
	switch op := en.Op.(type) {
	case *state.Genesis:
		l.Sentence = who + " founded the pursuance"
	case *state.CharterAmend:
		l.Sentence = who + " amended the charter"
	case *state.RoleAssign:
		l.Sentence = fmt.Sprintf("%s gave %s the role %s", who, d.name(op.Member), op.Role)
	case *state.RoleRevoke:
		l.Sentence = fmt.Sprintf("%s took the role %s from %s", who, op.Role, d.name(op.Member))
	case *state.Invite:
		l.Sentence = fmt.Sprintf("%s invited someone as %s", who, op.Role)
	case *state.InviteRevoke:
		l.Sentence = who + " revoked an invite"
	case *state.Join:
		l.Sentence = who + " joined"
	case *state.Remove:
		l.Sentence = fmt.Sprintf("%s removed %s", who, d.name(op.Member))
	case *state.Leave:
		l.Sentence = who + " left"
	case *state.Proposal:
		l.Sentence = fmt.Sprintf("%s proposed: %s", who, pretty(op.Action.String()))
	case *state.Approval:
		l.Sentence = fmt.Sprintf("%s approved %s", who, d.proposal(op.Proposal))
	case *state.TaskCreate:
		l.Sentence = fmt.Sprintf("%s created %s", who, task)
	case *state.TaskEdit:
		l.Sentence = fmt.Sprintf("%s edited %s", who, task)
	case *state.TaskMove:
		if op.Parent.IsZero() {
			l.Sentence = fmt.Sprintf("%s moved %s to the top level", who, task)
		} else {
			l.Sentence = fmt.Sprintf("%s moved %s under %s", who, task, d.quote(d.title(op.Parent)))
		}
	case *state.TaskAssign:
		l.Sentence = fmt.Sprintf("%s assigned %s to %s", who, task, d.assignee(op.Assignee))
	case *state.TaskUnassign:
		l.Sentence = fmt.Sprintf("%s took %s off %s", who, d.assignee(op.Assignee), task)
	case *state.TaskStatus:
		l.Sentence = fmt.Sprintf("%s moved %s to %s", who, task, pretty(op.Status.String()))
	case *state.TaskComment:
		l.Sentence = fmt.Sprintf("%s commented on %s", who, task)
	case *state.TaskArchive:
		if op.Archived {
			l.Sentence = fmt.Sprintf("%s archived %s", who, task)
		} else {
			l.Sentence = fmt.Sprintf("%s brought back %s", who, task)
		}
	case *state.TaskSealed:
		l.Sentence = who + " acted on a task sealed for roles you do not hold"
	case *state.KeyUpdate:
		l.Sentence = who + " rotated a key"
	case *state.MemberKey:
		l.Sentence = who + " published a new key of their own"
	case *state.Relays:
		var parts []string
		if len(op.Add) > 0 {
			parts = append(parts, "added the relay "+strings.Join(op.Add, ", "))
		}
		if len(op.Remove) > 0 {
			parts = append(parts, "removed the relay "+strings.Join(op.Remove, ", "))
		}
		l.Sentence = who + " " + strings.Join(parts, " and ")
		if len(parts) == 0 {
			l.Sentence = who + " changed the relays"
		}
	case *state.Handoff:
		l.Sentence = who + " handed a task off to a linked pursuance"
	case *state.LinkReceive:
		l.Sentence = fmt.Sprintf("%s received %s from a linked pursuance", who, task)
	case *state.LinkReport:
		l.Sentence = who + " reported on a received task"
	}
	if l.Sentence == "" {
		// Kinds with no sentence of their own (links, profiles,
		// successions, devices, node addresses): the kind in words.
		l.Sentence = who + ": " + strings.ReplaceAll(en.Kind.String(), "-", " ")
	}
	return l
}

// name is a member's name, or a short form of its key when the log names
// it nowhere.
func (d *Describer) name(m identity.PublicKey) string {
	if n := d.s.NameOf(m); n != "" {
		return n
	}
	return "someone"
}

func (d *Describer) title(id event.ID) string {
	if t, ok := d.s.Task(id); ok {
		return t.Title
	}
	return ""
}

// quote puts a title in quotes, cut at MaxQuoted characters; a task this
// member cannot read is "a task".
func (d *Describer) quote(title string) string {
	if title == "" {
		return "a task"
	}
	if r := []rune(title); len(r) > MaxQuoted {
		title = string(r[:MaxQuoted-1]) + "…"
	}
	return "'" + title + "'"
}

// assignee reads an assignee's text form: a member's name, or "role X".
func (d *Describer) assignee(a string) string {
	as, err := state.ParseAssignee(a)
	if err != nil {
		return a
	}
	if as.Role != "" {
		return "the role " + as.Role
	}
	return d.name(as.Member)
}

// proposal names a proposal by its author and action.
func (d *Describer) proposal(id event.ID) string {
	en, ok := d.s.Entry(id)
	if !ok {
		return "a proposal"
	}
	p, ok := en.Op.(*state.Proposal)
	if !ok {
		return "a proposal"
	}
	return fmt.Sprintf("%s's proposal (%s)", d.name(d.s.MemberOf(en.Author)), pretty(p.Action.String()))
}

// pretty turns a name into words: "ReadyForReview" → "Ready for review",
// "role-assign" → "role assign".
func pretty(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '-':
			b.WriteRune(' ')
		case i > 0 && r >= 'A' && r <= 'Z':
			b.WriteRune(' ')
			b.WriteRune(r + 'a' - 'A')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
