package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pursuance/pursuance/event"
)

// TestSeenMark: the inbox's last-visit mark is kept per pursuance, read
// back as written, and lies in the home sealed: neither the authors'
// keys nor the pursuance's ID show in the file or its name.
func TestSeenMark(t *testing.T) {
	a := newMember(t, "Alice")
	p, q := event.ID{1}, event.ID{2}
	if m, err := a.Seen(p); err != nil || m != nil {
		t.Fatalf("never visited: %v %v", m, err)
	}
	author := a.Me().ID.String()
	if err := a.SetSeen(p, map[string]uint64{author: 7}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetSeen(p, map[string]uint64{author: 9}); err != nil {
		t.Fatal(err)
	}
	if m, err := a.Seen(p); err != nil || m[author] != 9 || len(m) != 1 {
		t.Fatalf("read back: %v %v", m, err)
	}
	if m, _ := a.Seen(q); m != nil {
		t.Fatalf("another pursuance's mark: %v", m)
	}
	files, _ := os.ReadDir(filepath.Join(a.home, seenDir))
	if len(files) != 1 {
		t.Fatalf("%d files in seen/", len(files))
	}
	b, _ := os.ReadFile(filepath.Join(a.home, seenDir, files[0].Name()))
	if bytes.Contains(b, []byte(author)) || json.Valid(b) || bytes.Contains([]byte(files[0].Name()), []byte(p.String()[:16])) {
		t.Errorf("the mark is readable in the home: %s %q", files[0].Name(), b)
	}
}
