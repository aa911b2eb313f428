package state

import (
	"slices"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
)

// TestKindTable walks every event kind: each known kind has a row in the
// kind table, the row's op is of that kind, the classifications agree with
// the op's type, and an unknown kind has none.
func TestKindTable(t *testing.T) {
	known := 0
	for k := event.Kind(0); k < 256; k++ {
		row := kindOf(k)
		if !k.Known() || k == event.KindInvalid {
			if row.new != nil || row.action != "" || row.authority || row.task || row.key || row.link {
				t.Errorf("kind %d is not known but has a row", k)
			}
			continue
		}
		known++
		if row.new == nil && row.action == "" && !row.authority && !row.task && !row.key && !row.link {
			t.Errorf("known kind %s has no row in the kind table", k)
			continue
		}
		if row.new == nil {
			// Carried, not interpreted: DecodeOp gives Opaque.
			op, err := DecodeOp(k, nil)
			if _, ok := op.(Opaque); err != nil || !ok {
				t.Errorf("kind %s without a type: DecodeOp gives %T, %v", k, op, err)
			}
			continue
		}
		op := row.new()
		if op.Kind() != k {
			t.Errorf("the row of %s makes a %T of kind %s", k, op, op.Kind())
		}
		if _, ok := newOp(k); !ok {
			t.Errorf("newOp(%s) has no op", k)
		}
		_, onTask := op.(taskOp)
		_, create := op.(*TaskCreate)
		_, sealed := op.(*TaskSealed)
		if row.task != (onTask && !sealed || create) {
			t.Errorf("%s: task %v, but its type acts on a task: %v", k, row.task, onTask || create)
		}
		if row.task && row.authority {
			t.Errorf("%s is both a task op and an authority op", k)
		}
		if row.key && !row.authority {
			t.Errorf("%s is a key op that does not change the authority state", k)
		}
		_, names := op.(interface{ Kind() event.Kind })
		if row.link != (linkOf(op) != (event.ID{}) || isLinkType(op)) || row.link && row.task || !names {
			t.Errorf("%s: link %v, but its type names a link: %v", k, row.link, isLinkType(op))
		}
		if usesLink(op) && (row.authority || !row.link) {
			t.Errorf("%s is sent over a link but is an authority op, or not a link op", k)
		}
		if row.action != "" && !slices.Contains(charter.Actions(), row.action) {
			t.Errorf("%s needs %q, which the charter does not know", k, row.action)
		}
		if IsTaskOp(op) != row.task || isAuthority(op) != row.authority || actionOf(op) != row.action || IsKeyOp(op) != row.key {
			t.Errorf("%s: the exported classifications disagree with its row", k)
		}
	}
	if known != len(kinds)-1 {
		t.Errorf("%d known kinds, %d rows in the kind table", known, len(kinds)-1)
	}
}

// isLinkType reports whether op is one of the link ops' types.
func isLinkType(op Op) bool {
	switch op.(type) {
	case *LinkOffer, *LinkAccept, *LinkEnd, *Handoff, *LinkReceive, *LinkReport:
		return true
	}
	return false
}
