package cli

import (
	"strings"
	"testing"
)

// One relay (or restore) at a time on a data directory; the lock goes
// with its holder.
func TestRelayDataLock(t *testing.T) {
	dir := t.TempDir()
	first, err := lockRelayData(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockRelayData(dir); err == nil || !strings.Contains(err.Error(), "a relay is running on") {
		t.Fatalf("a second holder: %v", err)
	}
	first.Close()
	again, err := lockRelayData(dir)
	if err != nil {
		t.Fatalf("after the first let go: %v", err)
	}
	again.Close()
}
