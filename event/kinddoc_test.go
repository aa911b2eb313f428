package event

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestKindTableInDocs checks that the kind table of docs/events.md, §11,
// lists every kind this package knows, by number and name.
func TestKindTableInDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	for k := KindInvalid; k < kindEnd; k++ {
		row := fmt.Sprintf("| %d | `%s` |", uint64(k), k)
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/events.md §11 lacks the row %q", row)
		}
	}
}
