//go:build !race

package state

// raceEnabled: this test binary runs under the race detector.
const raceEnabled = false
