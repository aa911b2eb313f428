package state

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
)

var updateVectors = flag.Bool("update", false, "rewrite testdata/state vectors from their scenarios")

// A log vector: the exact bytes of a small log and the verdict every
// conforming implementation must reach on each event. The events are made
// once by a scenario (HPKE sealing is randomized, so they cannot be
// remade byte for byte) and then kept: the test decodes them and folds
// them.
type logVector struct {
	Comment  string          `json:"comment"`
	Scenario []string        `json:"scenario"`
	Events   []string        `json:"events"` // hex of each event's encoding, in log order
	Verdicts []vectorVerdict `json:"verdicts"`
}

type vectorVerdict struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"`
}

// logVectorScenarios are the scenarios the vectors are made from.
var logVectorScenarios = map[string]struct {
	comment string
	lines   []string
}{
	"key-updates": {
		comment: "Key updates on the desk template: accepted generations of the group and role keys, and the must-fail cases: a seed sealed to a non-member, a role key rotated by a member outside the role who may not rotate-keys, a generation leaving out an entitled member, a skipped generation number.",
		lines: []string{
			"alice: found desk",
			"i = alice: invite researcher",
			"bob: join i",
			"sync",
			"alice: rotate group",
			"alice: rotate editor",
			"alice: rotate researcher",
			"sync",
			"alice!: rotate group +carol",
			"bob!: rotate editor",
			"alice!: rotate group -bob",
			"alice!: rotate researcher gen=5",
			"bob: rotate researcher",
		},
	},
}

func TestLogVectors(t *testing.T) {
	for name, sc := range logVectorScenarios {
		path := filepath.Join("..", "testdata", "state", name+".json")
		if *updateVectors {
			writeLogVector(t, path, sc.comment, sc.lines)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create)", err)
		}
		var v logVector
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		var evs []*event.Event
		for _, h := range v.Events {
			b, err := hex.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			e, err := event.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.VerifySignature(); err != nil {
				t.Fatalf("vector event %s: %v", e.ID().Short(), err)
			}
			evs = append(evs, e)
		}
		s, err := Build(evs[0].ID(), evs, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := verdictsOf(s)
		if len(got) != len(v.Verdicts) {
			t.Fatalf("%s: %d verdicts, want %d", name, len(got), len(v.Verdicts))
		}
		for i := range got {
			if got[i] != v.Verdicts[i] {
				t.Errorf("%s: event %d: got %+v, want %+v", name, i, got[i], v.Verdicts[i])
			}
		}
	}
}

func verdictsOf(s *State) []vectorVerdict {
	var out []vectorVerdict
	for _, en := range s.Log() {
		out = append(out, vectorVerdict{ID: en.ID.String(), Kind: en.Kind.String(), Accepted: en.Accepted, Reason: en.Reason})
	}
	return out
}

func writeLogVector(t *testing.T, path, comment string, lines []string) {
	w := newWorld(t, 42)
	for _, line := range lines {
		f := tokens(line)
		if f[0] == "sync" {
			w.sync(f[1:])
			continue
		}
		label := ""
		if len(f) > 2 && f[1] == "=" {
			label, f = f[0], f[2:]
		}
		name, _ := strings.CutSuffix(f[0], ":")
		name, unchecked := strings.CutSuffix(name, "!")
		w.do(label, name, unchecked, f[1:])
	}
	var evs []*event.Event
	for _, e := range w.all {
		evs = append(evs, e)
	}
	logOrder(evs)
	s, err := Build(w.pursue, evs, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := logVector{Comment: comment, Scenario: lines, Verdicts: verdictsOf(s)}
	for _, e := range evs {
		v.Events = append(v.Events, hex.EncodeToString(e.Encode()))
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
