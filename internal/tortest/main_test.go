package tortest

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if helper := os.Getenv(envHelper); helper != "" {
		os.Exit(runHelper(m, helper))
	}
	Main(m)
}
