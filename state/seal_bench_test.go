package state

import (
	crand "crypto/rand"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// The per-event cost of end-to-end encryption: sealing one task event for
// a relay (BenchmarkSealEvent) and opening a log of them in the fold
// (BenchmarkOpenLog), each beside its unencrypted baseline. Reproduce with
//
//	go test ./state -run '^$' -bench 'SealEvent|OpenLog' -count 3

// Sizes of the benchmark texts: a comment of a few sentences, a task with
// a page of body.
const (
	benchCommentSize = 300
	benchTitleSize   = 48
	benchBodySize    = 4096
)

// benchText returns n bytes of prose-like ASCII.
func benchText(n int) string {
	const words = "the source confirmed the figures in the leaked ledger but asked that the names of the two intermediaries stay out of the draft until legal has read it "
	return strings.Repeat(words, n/len(words)+1)[:n]
}

// BenchmarkSealEvent times making one task event ready for a relay.
//
//   - plain: EncodeOp of the task op, signing the event (event.Chain.Next)
//     and encoding it: what an unencrypted pursuance does.
//   - wraps=N[+box=1]: SealTask (a fresh content key, the op sealed under
//     it, the key wrapped under N role keys and, with +box=1, sealed to one
//     assignee outside those roles with HPKE ML-KEM-768+X25519), EncodeOp
//     of the sealed op, signing, encoding, and sealing the event into a
//     group-key envelope padded to its bucket.
//
// B/event is the signed event's wire size, B/envelope what the relay
// stores; MB/s counts the task's text (comment text, or title and body).
// envelope-ns/op is the share of ns/op spent in Envelopes.Seal.
func BenchmarkSealEvent(b *testing.B) {
	author, err := identity.New("alice", crand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	assignee, err := identity.New("bob", crand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	var pid event.ID
	crand.Read(pid[:])
	group := keys.Key{Scope: keys.Scope{Pursuance: pid}, Gen: 1}
	crand.Read(group.Seed[:])
	env, err := keys.NewEnvelopes(&group)
	if err != nil {
		b.Fatal(err)
	}
	// Three role keys, each published by a key-update (here a random ID).
	var roleKeys []keys.Key
	var updates []event.ID
	for _, role := range []string{"editor", "researcher", "desk"} {
		k := keys.Key{Scope: keys.Scope{Pursuance: pid, Role: role}, Gen: 1}
		crand.Read(k.Seed[:])
		var id event.ID
		crand.Read(id[:])
		roleKeys, updates = append(roleKeys, k), append(updates, id)
	}
	wrapsOf := func(n int) map[event.ID]keys.Key {
		m := map[event.ID]keys.Key{}
		for i := range n {
			m[updates[i]] = roleKeys[i]
		}
		return m
	}
	// A realistic parent: the head the author last saw, another member's.
	var parent event.Ref
	crand.Read(parent.ID[:])
	parent.Pursuance, parent.Lamport = pid, 1000

	var task event.ID
	crand.Read(task[:])
	ops := []struct {
		name string
		op   Op
		text int
	}{
		{"comment", &TaskComment{Task: task, Text: benchText(benchCommentSize)}, benchCommentSize},
		{"create", &TaskCreate{Title: benchText(benchTitleSize), Body: benchText(benchBodySize), VisibleTo: []string{"editor", "researcher"}},
			benchTitleSize + benchBodySize},
	}
	cases := []struct {
		name  string
		wraps int
		boxes []identity.KEMPublicKey
	}{
		{"plain", 0, nil},
		{"wraps=1", 1, nil},
		{"wraps=3", 3, nil},
		{"wraps=1+box=1", 1, []identity.KEMPublicKey{assignee.KEMKey().Public()}},
	}
	for _, o := range ops {
		for _, c := range cases {
			b.Run("op="+o.name+"/"+c.name, func(b *testing.B) {
				chain := event.Chain{Key: author.SigningKey(), Pursuance: pid}
				wraps := wrapsOf(c.wraps)
				parents := []event.Ref{parent}
				var clock uint64 = 1_700_000_000_000
				var eventSize, envSize int
				var envT time.Duration
				b.SetBytes(int64(o.text))
				b.ReportAllocs()
				for b.Loop() {
					clock++
					if c.name == "plain" {
						body, err := EncodeOp(o.op)
						if err != nil {
							b.Fatal(err)
						}
						e, err := chain.Next(o.op.Kind(), parents, clock, body)
						if err != nil {
							b.Fatal(err)
						}
						eventSize = len(e.Encode())
						continue
					}
					seq := uint64(1)
					if chain.Last != nil {
						seq = chain.Last.Seq + 1
					}
					sealed, err := SealTask(o.op, SealedAD(pid, author.ID(), seq), wraps, c.boxes, crand.Reader)
					if err != nil {
						b.Fatal(err)
					}
					body, err := EncodeOp(sealed)
					if err != nil {
						b.Fatal(err)
					}
					e, err := chain.Next(event.KindTaskSealed, parents, clock, body)
					if err != nil {
						b.Fatal(err)
					}
					wire := e.Encode()
					start := time.Now()
					sealedEnv, err := env.Seal(wire, crand.Reader)
					envT += time.Since(start)
					if err != nil {
						b.Fatal(err)
					}
					eventSize, envSize = len(wire), len(sealedEnv)
				}
				b.ReportMetric(float64(eventSize), "B/event")
				if c.name != "plain" {
					b.ReportMetric(float64(envSize), "B/envelope")
					b.ReportMetric(float64(envT.Nanoseconds())/float64(b.N), "envelope-ns/op")
				}
			})
		}
	}
}

// openBenchLog is a log for BenchmarkOpenLog: a desk pursuance (alice the
// editor, bob and carol researchers) and then openBenchTaskEvents task
// events following openBenchPlan. Sealed, the group, editor and researcher
// keys are published first (key-updates with real sealed seeds) and
// every task event is sealed; plain, there are no keys and the same task
// ops go in clear.
type openBenchLog struct {
	pursuance event.ID
	events    []*event.Event
	readers   map[string]*Secrets // by the reader's role; nil for the plain log
	tasks     int                 // task events
	creates   int
	boxed     int // sealed events that carry an HPKE box (to an assignee outside the roles)
}

const openBenchTaskEvents = 2000

// openBenchStep is one planned task event.
type openBenchStep struct {
	author int  // 0 alice (editor), 1 bob, 2 carol (researchers)
	create bool // a task-create, else a comment
	forBob bool // an editor-only task assigned to bob, or a comment on one
	task   int  // the task: the index of its create among the creates
}

// openBenchPlan plans n task events. Alice writes 40% of them, bob and
// carol 30% each; one in five is a task-create (a title and a 4 KB body),
// the rest comments of 300 bytes on a random earlier task. A quarter of
// alice's tasks are for editors only and assigned to bob; only alice
// comments on those.
func openBenchPlan(n int) []openBenchStep {
	rng := rand.New(rand.NewPCG(2, 3))
	steps := make([]openBenchStep, 0, n)
	var forBob []bool // by task
	for range n {
		s := openBenchStep{}
		switch r := rng.IntN(10); {
		case r >= 7:
			s.author = 2
		case r >= 4:
			s.author = 1
		}
		if len(forBob) == 0 || rng.IntN(5) == 0 {
			s.create, s.task = true, len(forBob)
			s.forBob = s.author == 0 && rng.IntN(4) == 0
			forBob = append(forBob, s.forBob)
		} else {
			s.task = rng.IntN(len(forBob))
			if s.forBob = forBob[s.task]; s.forBob {
				s.author = 0
			}
		}
		steps = append(steps, s)
	}
	return steps
}

var (
	openBenchMu    sync.Mutex
	openBenchCache map[bool]*openBenchLog // by sealed
)

// openLogFor builds a log once per process and checks, untimed, that the
// fold does what the benchmark claims: every event accepted; sealed, every
// reader opens every task event and without secrets none opens.
func openLogFor(b *testing.B, sealed bool) *openBenchLog {
	openBenchMu.Lock()
	defer openBenchMu.Unlock()
	if l, ok := openBenchCache[sealed]; ok {
		return l
	}
	start := time.Now()
	l := makeOpenLog(b, openBenchPlan(openBenchTaskEvents), sealed)
	readers := []string{""}
	if sealed {
		readers = append(readers, "editor", "researcher")
	}
	for _, reader := range readers {
		st := foldOpenLog(b, l, l.readers[reader])
		opened := 0
		for _, en := range st.Log() {
			if !en.Accepted {
				b.Fatalf("reader %q: %s %s rejected: %s", reader, en.Kind, en.ID.Short(), en.Reason)
			}
			if en.Sealed && en.Kind != event.KindTaskSealed {
				opened++
			}
		}
		wantOpened, wantOpaque := l.tasks, 0
		switch {
		case !sealed:
			wantOpened = 0
		case reader == "":
			wantOpened, wantOpaque = 0, l.creates
		}
		if opened != wantOpened || st.SealedTasks() != wantOpaque || len(st.Tasks()) != l.creates-wantOpaque {
			b.Fatalf("reader %q opened %d of %d task events; %d tasks, %d opaque, want %d opaque",
				reader, opened, l.tasks, len(st.Tasks()), st.SealedTasks(), wantOpaque)
		}
	}
	b.Logf("sealed=%v: log of %d events (%d task events: %d creates; %d with an HPKE box) ready in %v",
		sealed, len(l.events), l.tasks, l.creates, l.boxed, time.Since(start).Round(time.Millisecond))
	if openBenchCache == nil {
		openBenchCache = map[bool]*openBenchLog{}
	}
	openBenchCache[sealed] = l
	return l
}

// makeOpenLog signs the log of steps, sealed or not.
func makeOpenLog(b *testing.B, steps []openBenchStep, sealed bool) *openBenchLog {
	w := newWorld(b, 1)
	do := func(label, name, line string) { w.do(label, name, false, tokens(line)) }
	do("", "alice", "found desk")
	do("i1", "alice", "invite researcher")
	do("i2", "alice", "invite researcher")
	do("", "bob", "join i1")
	do("", "carol", "join i2")
	w.sync(nil)
	alice, bob, carol := w.actor("alice"), w.actor("bob"), w.actor("carol")
	l := &openBenchLog{pursuance: w.pursue}

	// Sealed: the keys, and what each kind of event is sealed for. Alice
	// wraps a task visible to researchers and editors under both keys; a
	// researcher (not entitled to the editor key) under the researcher
	// key, which editors hold too; an editor-only task assigned to bob
	// under the editor key and to bob's KEM key.
	var both, editorOnly, researcher map[event.ID]keys.Key
	toBob := []identity.KEMPublicKey{bob.id.KEMKey().Public()}
	if sealed {
		do("", "alice", "rotate group")
		do("", "alice", "rotate editor")
		do("", "alice", "rotate researcher")
		w.sync(nil)
		s := w.buildFor(alice)
		held := s.Held()
		keyOf := func(role string) map[event.ID]keys.Key {
			cur, ok := s.CurrentKey(role)
			if !ok {
				b.Fatalf("no %s key", role)
			}
			h, ok := held[cur.Update]
			if !ok {
				b.Fatalf("alice does not hold the %s key", role)
			}
			return map[event.ID]keys.Key{cur.Update: h.Key}
		}
		editorOnly, researcher = keyOf("editor"), keyOf("researcher")
		both = maps.Clone(editorOnly)
		maps.Copy(both, researcher)
		l.readers = map[string]*Secrets{
			"editor":     {Member: alice.id.ID(), KEM: alice.id.KEMKey()},
			"researcher": {Member: bob.id.ID(), KEM: bob.id.KEMKey()},
		}
	}
	l.events = logOrder(mapValues(w.all))
	parents := alice.heads()

	actors := []*actor{alice, bob, carol}
	rng := rand.New(rand.NewPCG(4, 5)) // the sealing's randomness
	comment, title, body := benchText(benchCommentSize), benchText(benchTitleSize), benchText(benchBodySize)
	var taskIDs []event.ID
	clock := w.clock
	for _, st := range steps {
		a := actors[st.author]
		var op Op
		var wraps map[event.ID]keys.Key
		var boxes []identity.KEMPublicKey
		switch {
		case st.author != 0:
			wraps = researcher
		case st.forBob:
			wraps, boxes = editorOnly, toBob
		default:
			wraps = both
		}
		if st.create {
			tc := &TaskCreate{Title: title, Body: body}
			switch {
			case st.author != 0:
				// the researchers' default visibility: researcher, editor
			case st.forBob:
				tc.VisibleTo, tc.Assignees = []string{"editor"}, []string{bob.id.ID().String()}
			default:
				tc.VisibleTo = []string{"editor", "researcher"}
			}
			op = tc
			l.creates++
		} else {
			op = &TaskComment{Task: taskIDs[st.task], Text: comment}
		}
		kind := op.Kind()
		if sealed {
			s, err := SealTask(op, SealedAD(w.pursue, a.id.ID(), a.chain.Last.Seq+1), wraps, boxes, seededReader{rng})
			if err != nil {
				b.Fatal(err)
			}
			op, kind = s, event.KindTaskSealed
			if len(boxes) > 0 {
				l.boxed++
			}
		}
		enc, err := EncodeOp(op)
		if err != nil {
			b.Fatal(err)
		}
		clock++
		e, err := a.chain.Next(kind, parents, clock, enc)
		if err != nil {
			b.Fatal(err)
		}
		if st.create {
			taskIDs = append(taskIDs, e.ID())
		}
		l.tasks++
		parents = []event.Ref{e.Ref()}
		l.events = append(l.events, e)
	}
	return l
}

// foldOpenLog folds the log, as the member sec is (nil: no secrets).
func foldOpenLog(b *testing.B, l *openBenchLog, sec *Secrets) *State {
	x := NewBuilder(l.pursuance, nil)
	for _, e := range l.events {
		if err := x.Add(e); err != nil {
			b.Fatal(err)
		}
	}
	if sec != nil {
		x.SetSecrets(sec)
	}
	s, err := x.Finish()
	if err != nil {
		b.Fatal(err)
	}
	return s
}

var sinkState *State

// BenchmarkOpenLog times folding a desk's log of 2,000 task events (see
// openBenchPlan) into a State:
//
//   - plain: the same task ops unsealed, in a pursuance without keys: what
//     the fold costs with no end-to-end encryption at all;
//   - sealed/secrets=none: the sealed log with no secrets: every sealed
//     task stays opaque (decoding, the checks an outsider can make, an
//     opaque task per create);
//   - sealed/reader=editor: as alice, the editor, who opens every task
//     event with a wrap under the editor or researcher key (and first
//     the seeds sealed to her in the key-updates, by HPKE);
//   - sealed/reader=researcher: as bob, who opens every task event too:
//     most by the researcher key, the editor-only tasks assigned to him
//     and alice's comments on them (about 5% of the events) by opening
//     an HPKE box.
//
// A reader's ns/op over sealed/secrets=none is the cost of opening (the
// opened ops are then judged and applied, which the opaque fold skips);
// over plain, the cost of encryption to a reader. The sealed log has 3
// more events than the plain one (the key-updates).
func BenchmarkOpenLog(b *testing.B) {
	plain, sealed := openLogFor(b, false), openLogFor(b, true)
	cases := []struct {
		name string
		l    *openBenchLog
		sec  *Secrets
	}{
		{"plain", plain, nil},
		{"sealed/secrets=none", sealed, nil},
		{"sealed/reader=editor", sealed, sealed.readers["editor"]},
		{"sealed/reader=researcher", sealed, sealed.readers["researcher"]},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkState = foldOpenLog(b, c.l, c.sec)
			}
			b.ReportMetric(float64(len(c.l.events))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
