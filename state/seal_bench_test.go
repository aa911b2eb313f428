package state

import (
	crand "crypto/rand"
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

// openBenchLog is BenchmarkOpenLog's log: a desk pursuance (an editor,
// two researchers, the group, editor and researcher keys published with
// real sealed seeds) and then sealed task creates and comments.
type openBenchLog struct {
	pursuance event.ID
	events    []*event.Event
	readers   map[string]*Secrets // by the reader's role
	creates   int
	sealed    int // task-sealed events
	boxed     int // of which carry an HPKE box (to an assignee outside the roles)
}

const openBenchSealed = 2000

var (
	openBenchMu    sync.Mutex
	openBenchCache *openBenchLog
)

// openLogFor builds the log once per process, and checks that every
// reader opens every sealed task and that without secrets none opens.
func openLogFor(b *testing.B) *openBenchLog {
	openBenchMu.Lock()
	defer openBenchMu.Unlock()
	if openBenchCache != nil {
		return openBenchCache
	}
	start := time.Now()
	w := newWorld(b, 1)
	do := func(label, name, line string) { w.do(label, name, false, tokens(line)) }
	do("", "alice", "found desk")
	do("i1", "alice", "invite researcher")
	do("i2", "alice", "invite researcher")
	do("", "bob", "join i1")
	do("", "carol", "join i2")
	w.sync(nil)
	do("g1", "alice", "rotate group")
	do("e1", "alice", "rotate editor")
	do("r1", "alice", "rotate researcher")
	w.sync(nil)

	alice, bob, carol := w.actor("alice"), w.actor("bob"), w.actor("carol")
	s := w.buildFor(alice)
	held := s.Held()
	keyOf := func(role string) (event.ID, keys.Key) {
		cur, ok := s.CurrentKey(role)
		if !ok {
			b.Fatalf("no %s key", role)
		}
		h, ok := held[cur.Update]
		if !ok {
			b.Fatalf("alice does not hold the %s key", role)
		}
		return cur.Update, h.Key
	}
	edID, edKey := keyOf("editor")
	rsID, rsKey := keyOf("researcher")
	both := map[event.ID]keys.Key{edID: edKey, rsID: rsKey}
	editorOnly := map[event.ID]keys.Key{edID: edKey}
	researcher := map[event.ID]keys.Key{rsID: rsKey}
	toBob := []identity.KEMPublicKey{bob.id.KEMKey().Public()}

	l := &openBenchLog{pursuance: w.pursue, readers: map[string]*Secrets{
		"editor":     {Member: alice.id.ID(), KEM: alice.id.KEMKey()},
		"researcher": {Member: bob.id.ID(), KEM: bob.id.KEMKey()},
	}}
	l.events = logOrder(mapValues(w.all))
	parents := alice.heads()

	// The mix: alice (editor) writes 40% of the events, bob and carol
	// (researchers) 30% each; one in five is a task-create (title and
	// 4 KB body), the rest comments of 300 bytes. A quarter of alice's
	// tasks are for editors only and assigned to bob: sealed under the
	// editor key and to bob's KEM key, as are her comments on them.
	// Everything else is visible to researchers and editors: alice wraps
	// under both keys, researchers (not entitled to the editor key)
	// under the researcher key, which editors hold too.
	type task struct {
		id     event.ID
		forBob bool
	}
	var tasks []task
	rng := rand.New(rand.NewPCG(2, 3))
	comment, title, body := benchText(benchCommentSize), benchText(benchTitleSize), benchText(benchBodySize)
	clock := w.clock
	for range openBenchSealed {
		a := alice
		switch r := rng.IntN(10); {
		case r >= 7:
			a = carol
		case r >= 4:
			a = bob
		}
		var op Op
		var wraps map[event.ID]keys.Key
		var boxes []identity.KEMPublicKey
		forBob := false
		if len(tasks) == 0 || rng.IntN(5) == 0 {
			tc := &TaskCreate{Title: title, Body: body}
			switch {
			case a != alice:
				wraps = researcher // the researchers' default visibility
			case rng.IntN(4) == 0:
				tc.VisibleTo, tc.Assignees = []string{"editor"}, []string{bob.id.ID().String()}
				wraps, boxes, forBob = editorOnly, toBob, true
			default:
				tc.VisibleTo = []string{"editor", "researcher"}
				wraps = both
			}
			op = tc
			l.creates++
		} else {
			t := tasks[rng.IntN(len(tasks))]
			if t.forBob {
				a = alice // researchers comment on what they see
			}
			op = &TaskComment{Task: t.id, Text: comment}
			switch {
			case a != alice:
				wraps = researcher
			case t.forBob:
				wraps, boxes = editorOnly, toBob
			default:
				wraps = both
			}
		}
		seq := a.chain.Last.Seq + 1
		sealed, err := SealTask(op, SealedAD(w.pursue, a.id.ID(), seq), wraps, boxes, seededReader{rng})
		if err != nil {
			b.Fatal(err)
		}
		enc, err := EncodeOp(sealed)
		if err != nil {
			b.Fatal(err)
		}
		clock++
		e, err := a.chain.Next(event.KindTaskSealed, parents, clock, enc)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := op.(*TaskCreate); ok {
			tasks = append(tasks, task{e.ID(), forBob})
		}
		if len(boxes) > 0 {
			l.boxed++
		}
		l.sealed++
		parents = []event.Ref{e.Ref()}
		l.events = append(l.events, e)
	}

	// Check the fold does what the benchmark claims, once, untimed.
	for _, reader := range []string{"editor", "researcher", ""} {
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
		want, wantSealed := l.sealed, 0
		if reader == "" {
			want, wantSealed = 0, l.creates
		}
		if opened != want || st.SealedTasks() != wantSealed {
			b.Fatalf("reader %q opened %d of %d sealed events; %d opaque tasks, want %d", reader, opened, l.sealed, st.SealedTasks(), wantSealed)
		}
	}
	b.Logf("log of %d events (%d sealed: %d creates, %d with an HPKE box) ready in %v",
		len(l.events), l.sealed, l.creates, l.boxed, time.Since(start).Round(time.Millisecond))
	openBenchCache = l
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

// BenchmarkOpenLog times folding a desk's log of 2,000 sealed task events
// (see openLogFor) into a State:
//
//   - secrets=none: no secrets, every sealed task stays opaque (the
//     baseline: decoding, rules, an opaque task per create);
//   - reader=editor: as alice, the editor, who opens every event with a
//     wrap under the editor or researcher key (plus the HPKE opening of
//     the seeds sealed to her in the key-updates);
//   - reader=researcher: as bob, who opens everything too: most by the
//     researcher key, the editor-only tasks assigned to him (about 5% of
//     the events) by opening an HPKE box.
//
// The ratio of a reader's ns/op to secrets=none is the cost of opening.
func BenchmarkOpenLog(b *testing.B) {
	l := openLogFor(b)
	for _, reader := range []string{"", "editor", "researcher"} {
		name := "reader=" + reader
		if reader == "" {
			name = "secrets=none"
		}
		b.Run(name, func(b *testing.B) {
			sec := l.readers[reader]
			b.ReportAllocs()
			for b.Loop() {
				sinkState = foldOpenLog(b, l, sec)
			}
			b.ReportMetric(float64(len(l.events))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
