package state

import (
	"encoding/hex"
	"strings"
	"testing"
)

// scenarioLines splits a scenario written inline, one line each.
func scenarioLines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

// TestClockLieCannotMakeOthersInactive: one member claiming a far-future
// time does not make the others inactive, nor let it claim their role;
// nor does one member claiming to have seen the founder's event long ago
// (docs/succession.md §3). Convergence over delivery orders is checked by
// runScenario too.
func TestClockLieCannotMakeOthersInactive(t *testing.T) {
	runScenario(t, scenarioLines(`
alice: found desk
i = alice: invite researcher
bob: join i
carol: join i
dave: join i
sync
dave: at=400d task "from the future"
sync
clock 2d
bob: task "b"
carol: task "c"
sync
c = dave!: claim editor
c2 = bob!: claim editor
expect c rejected "is active: last signed"
expect c2 rejected "is active: last signed"
expect active alice
expect active bob
expect active carol
expect roles alice editor
expect roles dave researcher
`))
	// The founder wrote on day 20; dave, backdating, claims to have seen
	// it on day 1. By day 40 she is still active, with two witnesses.
	runScenario(t, scenarioLines(`
alice: found desk
i = alice: invite researcher
bob: join i
carol: join i
dave: join i
sync
clock 20d
alice: task "day 20"
sync
dave: at=1d task "saw it on day 1"
clock 40d
bob: task "b"
carol: task "c"
sync
c = dave!: claim editor
expect c rejected "is active: last signed"
expect active alice
`))
}

// TestNoTakeOverWhileHolderActive: a successor's claim is refused while
// any holder is active, a completion is refused once a holder signed after
// the claim, and a holder's reappearance concurrent with the completion
// invalidates it on every replica (docs/succession.md §4).
func TestNoTakeOverWhileHolderActive(t *testing.T) {
	base := `
alice: found desk
i = alice: invite researcher
bob: join i
carol: join i
sync
`
	runScenario(t, scenarioLines(base+`
clock 25d
bob: task "b"
carol: task "c"
sync
c = bob!: claim editor
expect c rejected "alice, who holds"
expect roles bob researcher
`))
	runScenario(t, scenarioLines(base+`
clock 40d
bob: task "b"
carol: task "c"
sync
c = bob: claim editor
sync
clock 45d
alice: task "not so fast"
sync
clock 50d
bob: task "b2"
carol: task "c2"
sync
s = bob!: succeed c
expect c accepted
expect s rejected "is cancelled"
expect roles bob researcher
`))
	runScenario(t, scenarioLines(base+`
clock 40d
bob: task "b"
carol: task "c"
sync bob carol
c = bob: claim editor
clock 45d
back = alice: task "back, offline"
clock 50d
bob: task "b2"
carol: task "c2"
sync bob carol
s = bob: succeed c
sync
expect s rejected "concurrently with the completion"
expect roles bob researcher
`))
}

// TestSuccessionOpEncoding pins the example of docs/ops.md §4.31.
func TestSuccessionOpEncoding(t *testing.T) {
	b, err := EncodeOp(&Succession{Role: "editor"})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != "a10166656469746f72" {
		t.Errorf("succession body = %s", got)
	}
	for _, bad := range []Op{&Succession{}, &Succeed{}} {
		b, _ := EncodeOp(bad)
		if _, err := DecodeOp(bad.Kind(), b); err == nil {
			t.Errorf("%T with no target decoded", bad)
		}
	}
}
