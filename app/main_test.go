package app

import (
	"os"
	"testing"
)

// TestMain runs the package's tests with every push planned from a mark
// planned in full too, and compared (checkPushPlans): each test that
// syncs more than once checks the marks.
func TestMain(m *testing.M) {
	checkPushPlans = true
	os.Exit(m.Run())
}
