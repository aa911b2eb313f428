//go:build !linux

package tortest

import "testing"

// envHelper names a helper process of the Linux tests; there are none
// elsewhere.
const envHelper = "PURSUANCE_TORTEST_HELPER"

func runHelper(*testing.M, string) int { return 2 }
