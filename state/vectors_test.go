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
	"github.com/pursuance/pursuance/identity"
)

var (
	updateVectors = flag.Bool("update", false, "rewrite testdata/state vectors from their scenarios")
	updateOnly    = flag.String("update-only", "", "with -update, rewrite only this vector (the others' sealed bytes are random and would all change)")
)

// A log vector: the exact bytes of a small log and the verdict every
// conforming implementation must reach on each event. The events are made
// once by a scenario (HPKE sealing is randomized, so they cannot be
// remade byte for byte) and then kept: the test decodes them and folds
// them.
type logVector struct {
	Comment  string          `json:"comment"`
	Scenario []string        `json:"scenario"`
	Reader   *vectorReader   `json:"reader,omitempty"` // whose view the verdicts are; none: a view with no keys
	Events   []string        `json:"events"`           // hex of each event's encoding, in log order
	Verdicts []vectorVerdict `json:"verdicts"`
}

// vectorReader is the member whose keys the verdicts are reached with
// (test keys, made for the vector): sealed task events it opens are
// judged as the ops inside.
type vectorReader struct {
	Name   string `json:"name"`
	Member string `json:"member"`  // member ID, text form
	KEMKey string `json:"kem_key"` // hex of the 32-byte KEM private key
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
	reader  string // the actor whose view the verdicts are, if any
	ctx     string // with several pursuances (NAME@P lines), the one whose log is written
	lines   []string
}{
	"links-sender": {
		comment: "The sending side of a link (docs/links.md), pursuance A on the desk template: a link offer (kind 21) from A's editors to pursuance B, hand-offs (kind 27) by an editor, and the must-fail cases: a hand-off by a researcher (none of the link's roles), an offer naming a role the charter lacks, a hand-off over a link that is not A's, an end (kind 26) of a link A does not have, and a hand-off after A ended the link.",
		ctx:     "A",
		lines: []string{
			"alice@A: found desk",
			"i = alice@A: invite editor",
			"bob@A: join i",
			"j = alice@A: invite researcher",
			"carol@A: join j",
			"sync@A",
			"erin@B: found desk",
			"L = alice@A: link B roles=editor",
			"sync@A",
			"bob@A: handoff L \"Check the leak\" body=\"the files\" due=2026-12-31",
			"carol@A!: handoff L \"Not mine to send\"",
			"sync@A",
			"alice@A!: link B roles=ghost",
			"M = erin@B: link A roles=editor",
			"alice@A!: handoff M \"Over B's link\"",
			"alice@A!: end M",
			"alice@A: end L",
			"sync@A",
			"bob@A!: handoff L \"After the end\"",
		},
	},
	"links-receiver": {
		comment: "The receiving side of a link (docs/links.md), pursuance B on the desk template: B accepts A's link for its editors (kind 25), receives a hand-off of A (kind 28, embedding A's event), reports on it (kind 29) and ends the link (kind 26); and the must-fail cases: a receive of a hand-off whose body was altered, a receive claiming another link, a second receive of the same hand-off, a report by a researcher (who does not see editors' tasks), a receive and a report after B ended the link.",
		ctx:     "B",
		lines: []string{
			"alice@A: found desk",
			"erin@B: found desk",
			"j = erin@B: invite researcher",
			"fay@B: join j",
			"sync@B",
			"L = alice@A: link B roles=editor",
			"L2 = alice@A: link B roles=editor",
			"sync@A",
			"erin@B: accept L role=editor",
			"erin@B: accept L2 role=editor",
			"H = alice@A: handoff L \"Check the leak\"",
			"H2 = alice@A: handoff L \"Second\"",
			"learn erin@A",
			"learn fay@A",
			"erin@B!: receive H tamper",
			"erin@B!: receive H over=L2",
			"erin@B: receive H",
			"erin@B!: receive H",
			"erin@B: report H status=Done comment=\"real\"",
			"sync@B",
			"fay@B!: report H comment=\"not mine to see\"",
			"erin@B: end L",
			"erin@B!: receive H2",
			"erin@B!: report H status=Reviewing",
		},
	},
	"succession": {
		comment: "Succession on the desk template (docs/succession.md): the founder alice signs nothing for 40 days while bob and carol write; bob claims the editor role (succession, kind 31), and after the 7-day wait completes it (succeed, kind 32), then invites an editor. Must-fail cases: a claim while the holder is active (dave's, before the silence), a completion before the wait is over, a completion by someone other than the claimant, a claim by a member already holding the role.",
		lines: []string{
			"alice: found desk",
			"i = alice: invite researcher",
			"bob: join i",
			"carol: join i",
			"dave: join i",
			"sync",
			"dave!: claim editor",
			"clock 40d",
			"bob: task \"b\"",
			"carol: task \"c\"",
			"sync",
			"c = bob: claim editor",
			"sync",
			"bob!: succeed c",
			"clock 48d",
			"bob: task \"b2\"",
			"carol: task \"c2\"",
			"sync",
			"carol!: succeed c",
			"bob: succeed c",
			"bob!: claim editor",
			"bob: invite editor",
		},
	},
	"sealed-tasks": {
		comment: "Task events sealed per role on the desk template, judged as alice (an editor, who holds every key): sealed tasks for researchers and for editors, a researcher's sealed comment, and the must-fail cases: a task op in clear once the pursuance has keys, content wrapped under a generation that is no longer current, wrapped for a role that does not read the task, not wrapped for a role that reads it; and an invite sealing a generation that is no longer current.",
		reader:  "alice",
		lines: []string{
			"alice: found desk",
			"i = alice: invite researcher",
			"bob: join i",
			"sync",
			"g1 = alice: rotate group",
			"e1 = alice: rotate editor",
			"r1 = alice: rotate researcher",
			"sync",
			"t1 = alice: task \"For researchers\" visible=researcher",
			"t2 = alice: task \"Editors only\" visible=editor",
			"t3 = alice: task \"Both\" visible=researcher,editor",
			"sync",
			"bob: comment t1 \"seen\"",
			"sync",
			"alice!: plain task \"In clear\"",
			"e2 = alice: rotate editor",
			"alice!: under=e1 comment t2 \"under the old key\"",
			"alice!: under=e2 under=r1 comment t2 \"also for researchers\"",
			"alice!: under=e2 comment t1 \"not for researchers\"",
			"alice!: under=r1 comment t3 \"researchers only\"",
			"alice!: invite editor seal=g1 seal=e1",
			"alice: invite editor seal=g1 seal=e2",
			"alice: comment t2 \"fine\"",
		},
	},
	"member-keys": {
		comment: "A member publishes a new KEM key of its own (member-key, kind 24) on the desk template, judged as alice: a key update concurrent with it stands (it was sealed to the key the member had at its parents), content sealed under that generation once both are known is rejected until a rotation, and a member-key that repeats the member's current key is rejected.",
		reader:  "alice",
		lines: []string{
			"alice: found desk",
			"i = alice: invite researcher",
			"bob: join i",
			"sync",
			"g1 = alice: rotate group",
			"r1 = alice: rotate researcher",
			"sync",
			"k = bob: rekem",
			"r2 = alice: rotate researcher",
			"sync",
			"alice!: task \"under the concurrent generation\" visible=researcher",
			"r3 = alice: rotate researcher",
			"alice: task \"fine\" visible=researcher",
			"bob!: rekem same",
		},
	},
	"node-addresses": {
		comment: "Members announce their nodes' onion addresses (node-address, kind 33) on the desk template: bob announces, announces again and withdraws, alice announces; and the must-fail cases: a loopback address, a clear-net one, an onion address whose checksum does not hold, a proposal of an announcement (no quorum makes it another's), and an announcement by bob concurrent with his removal.",
		lines: []string{
			"alice: found desk",
			"i = alice: invite researcher",
			"bob: join i",
			"sync",
			"bob: nodeaddr onion:bob1",
			"bob: nodeaddr onion:bob2",
			"bob: nodeaddr withdraw",
			"alice: nodeaddr onion:alice1",
			"bob!: nodeaddr http://127.0.0.1:8765",
			"bob!: nodeaddr https://relay.example.org",
			"bob!: nodeaddr http://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onion",
			"alice!: propose nodeaddr onion:forged",
			"bob: nodeaddr onion:bob3",
			"sync",
			"alice: remove bob",
			"bob!: nodeaddr onion:bob4",
		},
	},
	"devices": {
		comment: "Devices (docs/devices.md, kind 34) on the desk template: alice's laptop (her root) certifies a phone and a tablet; the laptop adds the phone, the tablet publishes its own add with the laptop's certificate; laptop and phone write at once (two chains, one member, no fork); the laptop revokes the phone with a new member KEM key sealed to the tablet; and the must-fail cases: the phone's write concurrent with its revocation, the phone revoking the root, the tablet revoking its sibling, and the phone's write after its revocation.",
		lines: []string{
			"alice: found desk",
			"i = alice: invite researcher",
			"bob: join i",
			"alice: device add alice/phone",
			"sync",
			"sync alice alice/tablet",
			"alice/tablet: device add alice/tablet parent=alice",
			"alice: task \"from the laptop\"",
			"alice/phone: task \"from the phone\"",
			"alice/phone!: device revoke alice",
			"alice/tablet!: device revoke alice/phone",
			"sync",
			"alice: device revoke alice/phone",
			"alice/phone: task \"concurrent with the revocation\"",
			"sync",
			"alice/phone!: task \"after the revocation\"",
		},
	},
	"root-lines": {
		comment: "Root lines (docs/devices.md §6.1, Genesis key 5, Join key 6) on the desk template: alice, whose root key was replaced twice (alice to alice/k2 to alice/k3), founds with the two replace certificates and is the founder by her member ID; bob joins; carol, replaced once, joins with hers; both write with their new keys; and the must-fail cases: mallory's join carrying carol's line (it ends at carol/k2, not at mallory), and tasks signed by alice's old keys.",
		lines: []string{
			"alice/k3: found desk line=alice/k2",
			"i = alice/k3: invite researcher",
			"bob: join i",
			"j = alice/k3: invite researcher",
			"carol/k2: join j line",
			"sync",
			"alice/k3: task \"from alice's newest key\"",
			"carol/k2: task \"from carol's new key\"",
			"k = alice/k3: invite researcher",
			"sync",
			"mallory!: join k lineof=carol/k2",
			"alice!: task \"from alice's member ID key\"",
			"alice/k2!: task \"from alice's middle key\"",
		},
	},
	"device-lines": {
		comment: "Device lines (docs/devices.md §6.2, Device key 13) on the desk template: alice's phone rotated its own key elsewhere (alice/phone to alice/phone2); the laptop adds it here with the phone's certificate and the replacement (the add's line); phone2 writes for alice; and the must-fail cases: a task by the phone's old key (revoked here by the line), and an add whose certificate is the tablet's with the phone's line (the line does not follow from the certified key).",
		lines: []string{
			"alice: found desk",
			"i = alice: invite researcher",
			"bob: join i",
			"alice: device add alice/phone2 from=alice/phone",
			"sync",
			"alice/phone2: task \"from the phone's new key\"",
			"alice/phone!: task \"from the phone's old key\"",
			"alice!: device add alice/phone3 from=alice/phone forge=alice/tablet",
		},
	},
	"key-siblings": {
		comment: "Two concurrent rotations of the group key on the desk template (two generation 2s; the later in log order is current), then a generation 3 that chains the current one (Chain, Prev) and the other beside it (Siblings, keys.ChainSibling); and the must-fail cases: a sibling that is not a generation of the scope, and one not before the new generation (malformed).",
		lines: []string{
			"alice: found desk",
			"i = alice: invite editor",
			"bob: join i",
			"sync",
			"g1 = alice: rotate group",
			"sync",
			"bob: invite researcher",
			"ga = alice: rotate group chain",
			"gb = bob: rotate group chain",
			"sync",
			"e1 = alice: rotate editor",
			"alice!: rotate group gen=2 sibling=ga",
			"alice!: rotate group chain sibling=e1",
			"alice: rotate group chain sibling=ga",
		},
	},
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
		if *updateVectors && (*updateOnly == "" || *updateOnly == name) {
			writeLogVector(t, path, sc.comment, sc.reader, sc.ctx, sc.lines)
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
		x := NewBuilder(evs[0].ID(), nil)
		for _, e := range evs {
			if err := x.Add(e); err != nil {
				t.Fatal(err)
			}
		}
		if v.Reader != nil {
			x.SetSecrets(readerSecrets(t, v.Reader))
		}
		s, err := x.Finish()
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

func readerSecrets(t *testing.T, r *vectorReader) *Secrets {
	t.Helper()
	id, err := identity.ParseMemberID(r.Member)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(r.KEMKey)
	if err != nil {
		t.Fatal(err)
	}
	kem, err := identity.KEMPrivateKeyFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &Secrets{Member: id, KEM: kem}
}

func writeLogVector(t *testing.T, path, comment, reader, ctx string, lines []string) {
	w := newWorld(t, 42)
	for _, line := range lines {
		f := tokens(line)
		verb, at, _ := strings.Cut(f[0], "@")
		switch verb {
		case "sync":
			w.use(at)
			w.sync(f[1:])
			continue
		case "learn":
			w.learn(f[1:])
			continue
		case "clock":
			w.clock = w.when(f[1])
			continue
		}
		label := ""
		if len(f) > 2 && f[1] == "=" {
			label, f = f[0], f[2:]
		}
		name, _ := strings.CutSuffix(f[0], ":")
		name, unchecked := strings.CutSuffix(name, "!")
		name, at, _ = strings.Cut(name, "@")
		w.use(at)
		w.do(label, name, unchecked, f[1:])
	}
	w.use(ctx)
	var evs []*event.Event
	for _, e := range w.all {
		evs = append(evs, e)
	}
	logOrder(evs)
	x := NewBuilder(w.pursue, nil)
	for _, e := range evs {
		if err := x.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	v := logVector{Comment: comment, Scenario: lines}
	if reader != "" {
		a := w.actor(reader)
		v.Reader = &vectorReader{Name: reader, Member: a.id.ID().String(), KEMKey: hex.EncodeToString(a.id.KEMKey().Bytes())}
		x.SetSecrets(readerSecrets(t, v.Reader))
	}
	s, err := x.Finish()
	if err != nil {
		t.Fatal(err)
	}
	v.Verdicts = verdictsOf(s)
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
