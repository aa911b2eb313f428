package charter

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error Parse, Validate and Unmarshal return
// for a charter that is not acceptable: a syntax error, a rule of the schema
// broken, a malformed wire form. Test with errors.Is.
var ErrInvalid = errors.New("charter: invalid")

// ErrNotPermitted is wrapped by every *Denied error.
var ErrNotPermitted = errors.New("not permitted")

// Error is one problem found in a charter. Line and Column are 1-based and
// point into the YAML source; both are 0 for a charter that did not come
// from YAML (Validate, Unmarshal).
type Error struct {
	Line, Column int
	Msg          string
}

// Error returns the message, prefixed with "line N: " when the line is
// known.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// ErrorList is every problem found in a charter, in source order. Parse,
// Validate and Unmarshal return a non-empty ErrorList as their error.
type ErrorList []*Error

// Error returns the errors' messages, one per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the errors, so that errors.Is(l, ErrInvalid) holds and
// errors.As finds an *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns l as an error: nil if l is empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Denied is the error Allows returns when a charter does not permit an
// action. It says who was refused what, and why, in words a member can read.
type Denied struct {
	Action Action
	Actor  []string // the roles of the acting member, as given to Allows
	Target []string // the roles concerned, as given to Allows
	Reason string   // a phrase that completes the sentence, or ""
}

// Error returns a sentence such as
//
//	not permitted: role "researcher" may not archive-task
//	not permitted: roles "a", "b" may not assign-role "admin"
//	not permitted: a member with no role may not comment on a task it cannot see
func (d *Denied) Error() string {
	var b strings.Builder
	b.WriteString("not permitted: ")
	switch len(d.Actor) {
	case 0:
		b.WriteString("a member with no role")
	case 1:
		b.WriteString("role ")
	default:
		b.WriteString("roles ")
	}
	writeQuoted(&b, d.Actor)
	b.WriteString(" may not ")
	if d.Action.kind() == unknownAction {
		fmt.Fprintf(&b, "%q", string(d.Action))
	} else {
		b.WriteString(string(d.Action))
	}
	if len(d.Target) > 0 {
		b.WriteByte(' ')
		writeQuoted(&b, d.Target)
	}
	if d.Reason != "" {
		b.WriteByte(' ')
		b.WriteString(d.Reason)
	}
	return b.String()
}

// Unwrap returns ErrNotPermitted.
func (d *Denied) Unwrap() error { return ErrNotPermitted }

// writeQuoted writes names quoted and separated by commas.
func writeQuoted(b *strings.Builder, names []string) {
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%q", n)
	}
}
