package app

import (
	"errors"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// TestCommentAndFileRefs: a comment or a file is named by its ID or a
// unique prefix of at least MinPrefix hex digits; too short, unknown and
// ambiguous references each say so.
func TestCommentAndFileRefs(t *testing.T) {
	a := event.ID{0xab, 0xcd, 0x01}
	b := event.ID{0xab, 0xcd, 0x02}
	task := &state.Task{ID: event.ID{0x77}, Comments: []state.Comment{{ID: a}, {ID: b}}, Files: []state.File{{ID: a, TaskAttach: state.TaskAttach{Name: "memo.pdf"}}}}
	if id, err := resolveComment(task, a.String()); err != nil || id != a {
		t.Fatalf("full ID: %v, %v", id, err)
	}
	if id, err := resolveComment(task, strings.ToUpper(b.String()[:6])); err != nil || id != b {
		t.Fatalf("unique prefix: %v, %v", id, err)
	}
	if _, err := resolveComment(task, "abcd"); !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), `comment "abcd" could be 2 comments`) {
		t.Fatalf("ambiguous: %v", err)
	}
	if _, err := resolveComment(task, "ab"); err == nil || !strings.Contains(err.Error(), "too short to name a comment") {
		t.Fatalf("too short: %v", err)
	}
	if f, err := resolveFile(task, "abcd"); err != nil || f.Name != "memo.pdf" {
		t.Fatalf("file by prefix: %+v, %v", f, err)
	}
	if _, err := resolveFile(task, "ffff"); err == nil || !strings.Contains(err.Error(), `no file "ffff" on task`) {
		t.Fatalf("unknown file: %v", err)
	}
	if _, err := resolveFile(task, "a"); err == nil || !strings.Contains(err.Error(), "`pursuance task files P T` shows them") {
		t.Fatalf("too short a file: %v", err)
	}
}
