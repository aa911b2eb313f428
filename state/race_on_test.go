//go:build race

package state

// raceEnabled: this test binary runs under the race detector, which
// makes the random plays several times slower.
const raceEnabled = true
