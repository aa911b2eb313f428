package activity

import (
	"slices"
	"strings"
	"unicode"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// MaxInbox bounds the notices Inbox returns: the newest ones.
const MaxInbox = 200

// Why a notice is in the inbox.
const (
	Assigned = "assigned" // a task assigned to the member or to a role it holds
	Mention  = "mention"  // "@name" in a task's title, body or a comment
	Reply    = "reply"    // a comment or status change on a task the member follows
	Handed   = "handed"   // a task handed to this pursuance over a link
	Joined   = "joined"   // a newcomer joined
	Approve  = "approve"  // a proposal waiting for the member's approval
)

// Mark is what a member has seen of a log: for each author (a device
// key), the highest seq of its events seen. Each author's events form a
// chain, so an event is new exactly when its seq is above its author's
// mark, whatever order the log takes as events come in late.
type Mark map[identity.PublicKey]uint64

// Head returns the mark of everything in s's log.
func Head(s *state.State) Mark {
	m := Mark{}
	for en := range s.Entries() {
		if en.Seq > m[en.Author] {
			m[en.Author] = en.Seq
		}
	}
	return m
}

// Seen reports whether en is covered by the mark.
func (m Mark) Seen(en state.Entry) bool { return en.Seq <= m[en.Author] }

// Notice is one thing in the inbox.
type Notice struct {
	Line
	Why    string // Assigned, Mention, …
	Unread bool   // after the member's mark
}

// Inbox returns what in s asks for the attention of member me: events of
// other members that assign it (or its roles) a task, mention it, answer
// on a task it follows (created, commented on, or assigned to it or its
// roles), or admit a newcomer; the tasks handed to the pursuance over a
// link (whoever's node received them, its own included); and the open
// proposals it may approve and has not. Newest first, at most MaxInbox,
// each unread when the mark does not cover it; unread counts them all.
func Inbox(s *state.State, me identity.PublicKey, seen Mark) (notices []Notice, unread int) {
	var roles []string
	if m, ok := s.Member(me); ok {
		roles = m.Roles
	}
	name := s.NameOf(me)
	d := NewDescriber(s)
	follows := following(s, me, roles)
	for en := range s.EntriesBackward() {
		// The member's own acts are no news to it, except a hand-off its
		// node received by itself (app's link sync signs the receive).
		_, received := en.Op.(*state.LinkReceive)
		if !en.Accepted || s.MemberOf(en.Author) == me && !received {
			continue
		}
		why := reason(s, d, en, me, roles, name, follows)
		if why == "" {
			continue
		}
		n := Notice{Line: d.Describe(en), Why: why, Unread: !seen.Seen(en)}
		if n.Unread {
			unread++
		}
		if len(notices) < MaxInbox {
			notices = append(notices, n)
		}
	}
	// Open proposals this member may approve: listed while they wait,
	// whenever they were made, first.
	var waiting []Notice
	for _, p := range s.Proposals() {
		if p.Expired || s.MemberOf(p.Author) == me || slices.ContainsFunc(p.Approvals, func(a identity.PublicKey) bool { return s.MemberOf(a) == me }) {
			continue
		}
		q, ok := s.Charter().QuorumFor(p.Action)
		if !ok || !slices.Contains(roles, q.Of) {
			continue
		}
		en, ok := s.Entry(p.ID)
		if !ok {
			continue
		}
		n := Notice{Line: d.Describe(en), Why: Approve, Unread: !seen.Seen(en)}
		n.Sentence += " — waiting for your approval"
		if n.Unread {
			unread++
		}
		waiting = append(waiting, n)
	}
	return append(waiting, notices...), unread
}

// following returns the tasks member me follows: created, commented on,
// or assigned to it or to a role it holds.
func following(s *state.State, me identity.PublicKey, roles []string) map[event.ID]bool {
	f := map[event.ID]bool{}
	for _, t := range s.Tasks() {
		if s.MemberOf(t.Creator) == me || t.AssignedTo(me, roles) {
			f[t.ID] = true
			continue
		}
		for _, c := range t.Comments {
			if s.MemberOf(c.Author) == me {
				f[t.ID] = true
				break
			}
		}
	}
	return f
}

// reason says why en is a notice for me, "" when it is not.
func reason(s *state.State, d *Describer, en state.Entry, me identity.PublicKey, roles []string, name string, follows map[event.ID]bool) string {
	switch op := en.Op.(type) {
	case *state.TaskAssign:
		a, err := state.ParseAssignee(op.Assignee)
		if err == nil && (a.Member == me && !me.IsZero() || a.Role != "" && slices.Contains(roles, a.Role)) {
			return Assigned
		}
	case *state.TaskCreate:
		for _, as := range op.Assignees {
			a, err := state.ParseAssignee(as)
			if err == nil && (a.Member == me || a.Role != "" && slices.Contains(roles, a.Role)) {
				return Assigned
			}
		}
		if mentions(op.Title+"\n"+op.Body, name) {
			return Mention
		}
	case *state.TaskEdit:
		if op.Body != nil && mentions(*op.Body, name) || op.Title != nil && mentions(*op.Title, name) {
			return Mention
		}
	case *state.TaskComment:
		if mentions(op.Text, name) {
			return Mention
		}
		if follows[op.Task] {
			return Reply
		}
	case *state.TaskStatus:
		if follows[op.Task] {
			return Reply
		}
	case *state.LinkReceive:
		if !d.Target(en).IsZero() {
			return Handed
		}
	case *state.Join:
		return Joined
	}
	return ""
}

// mentions reports whether text names the member "@name", ignoring case,
// not as the start of a longer name ("@Bo" is not "@Bob").
func mentions(text, name string) bool {
	if name == "" {
		return false
	}
	lt, ln := strings.ToLower(text), "@"+strings.ToLower(name)
	for i := 0; ; {
		j := strings.Index(lt[i:], ln)
		if j < 0 {
			return false
		}
		end := i + j + len(ln)
		if end == len(lt) {
			return true
		}
		r := []rune(lt[end:])[0]
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			return true
		}
		i = end
	}
}
