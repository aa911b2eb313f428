package state_test

import (
	"cmp"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/internal/bench"
	"github.com/pursuance/pursuance/state"
)

// BenchmarkExtend times keeping a state (State.Extend, docs/fold.md)
// beside folding the whole log again (state.Build), on the benchmark log
// of BenchmarkRebuild, in the same run:
//
//   - append: the last event added at the end of the log (what a node
//     writes, and most of what a sync brings);
//   - late: an event added that sorts 1,000 events before the end, with
//     the events after it that link to it ("added" of them: a member's
//     work, written offline, arriving late): every event after it is
//     judged again;
//   - concurrent: one comment added that sorts before the end, with
//     the state's events after it ("from-end", as far back as the log
//     allows within 1,000): a member's comment written on an older state,
//     arriving while others wrote on (what a sync round brings when
//     members write at once).
//
// "extend-ms" is the Extend; "build-ms" the full fold of the same events;
// "ratio" build over Extend. Reproduce with
//
//	go test ./state -run '^$' -bench Extend -benchtime 20x
func BenchmarkExtend(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if os.Getenv("PURSUANCE_BENCH_1M") != "" {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run("events="+sizeLabel(n), func(b *testing.B) {
			l := logFor(b, n)
			b.Run("append", func(b *testing.B) { benchExtend(b, l, appendable(b, l.events)) })
			b.Run("late", func(b *testing.B) { benchExtend(b, l, lateOne(b, l.events, 1000)) })
			b.Run("concurrent", func(b *testing.B) {
				add := concurrentOne(b, l, 1000)
				all := append(slices.Clone(l.events), add)
				slices.SortFunc(all, func(x, y *event.Event) int {
					return cmp.Or(cmp.Compare(x.Lamport, y.Lamport), x.ID().Compare(y.ID()))
				})
				full, err := state.Build(l.pursuance, all, nil)
				if err != nil {
					b.Fatal(err)
				}
				if en, _ := full.Entry(add.ID()); !en.Accepted {
					b.Fatalf("the comment added is rejected: %s", en.Reason)
				}
				benchExtendWith(b, &rebuildLog{events: all, pursuance: l.pursuance, hash: full.Hash()}, l.events, []*event.Event{add})
			})
		})
	}
}

// appendable holds out the last event of evs.
//
// heldOut holds out the first task event at or after from whose later
// dependents are all task events, with them.
func appendable(b *testing.B, evs []*event.Event) map[event.ID]bool {
	return heldOut(b, evs, len(evs)-1)
}

// lateOne holds out an event at most back events before the end of evs,
// with the events after it that link to it (they cannot be in the log
// without it), all of them task events: the earliest such from there.
func lateOne(b *testing.B, evs []*event.Event, back int) map[event.ID]bool {
	return heldOut(b, evs, len(evs)-1-back)
}

func heldOut(b *testing.B, evs []*event.Event, from int) map[event.ID]bool {
	task := func(e *event.Event) bool {
		return e.Kind >= event.KindTaskCreate && e.Kind <= event.KindTaskArchive || e.Kind == event.KindTaskSealed
	}
next:
	for ; from < len(evs); from++ {
		if !task(evs[from]) {
			continue
		}
		held := map[event.ID]bool{evs[from].ID(): true}
		for _, e := range evs[from+1:] {
			for _, l := range append(slices.Clip(e.Parents), e.Backlink) {
				if held[l] {
					if !task(e) {
						continue next
					}
					held[e.ID()] = true
					break
				}
			}
		}
		return held
	}
	b.Fatal("no event to hold out")
	return nil
}

func benchExtend(b *testing.B, l *rebuildLog, out map[event.ID]bool) {
	var evs, late []*event.Event
	for _, e := range l.events {
		if out[e.ID()] {
			late = append(late, e)
		} else {
			evs = append(evs, e)
		}
	}
	benchExtendWith(b, l, evs, late)
}

// concurrentOne signs a comment by the member whose last event, a
// comment, sorts furthest before the end of l's log within its last back
// events, on the task of that comment, with it as its parent: it sorts
// right after it, before the other members' later events.
func concurrentOne(b *testing.B, l *rebuildLog, back int) *event.Event {
	ids, err := bench.StateLogIdentities(1, 3*benchMembers)
	if err != nil {
		b.Fatal(err)
	}
	keys := map[identity.PublicKey]*identity.Identity{}
	for _, id := range ids {
		keys[id.ID()] = id
	}
	lastOf := map[identity.PublicKey]int{}
	for i, e := range l.events {
		lastOf[e.Author] = i
	}
	at := -1
	for i := len(l.events) - 2; i > 0 && i >= len(l.events)-1-back; i-- {
		e := l.events[i]
		if e.Kind == event.KindTaskComment && lastOf[e.Author] == i && keys[e.Author] != nil {
			at = i
		}
	}
	if at >= 0 {
		e := l.events[at]
		id := keys[e.Author]
		op, err := state.DecodeOp(e.Kind, e.Body())
		if err != nil {
			b.Fatal(err)
		}
		body, err := state.EncodeOp(&state.TaskComment{Task: op.(*state.TaskComment).Task, Text: "A comment written on an older state."})
		if err != nil {
			b.Fatal(err)
		}
		r := e.Ref()
		c := event.Chain{Key: id.SigningKey(), Pursuance: l.pursuance, Last: &r}
		late, err := c.Next(event.KindTaskComment, []event.Ref{r}, e.Time+1, body)
		if err != nil {
			b.Fatal(err)
		}
		return late
	}
	b.Fatal("no member's last event is a comment among the log's last events")
	return nil
}

// benchExtendWith times extending the state of base, events of l's log,
// with late, the rest of it, beside a full fold of l's log.
func benchExtendWith(b *testing.B, l *rebuildLog, evs, late []*event.Event) {
	b.ReportMetric(float64(len(late)), "added")
	for i, e := range l.events {
		if e.ID() == late[0].ID() {
			b.ReportMetric(float64(len(l.events)-i), "from-end")
		}
	}
	base, err := state.Build(l.pursuance, evs, nil)
	if err != nil {
		b.Fatal(err)
	}
	var buildT, extendT time.Duration
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		if i < 3 { // the baseline, a few times: it is slow
			runtime.GC()
			start := time.Now()
			full, err := state.Build(l.pursuance, l.events, nil)
			buildT += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if full.Hash() != l.hash {
				b.Fatal("full fold differs from the first build")
			}
		}
		runtime.GC()
		b.StartTimer()
		start := time.Now()
		s, err := base.Extend(late)
		extendT += time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if s.Hash() != l.hash {
			b.Fatal("the extended state differs from the full fold")
		}
	}
	build := buildT / time.Duration(min(b.N, 3))
	ext := extendT / time.Duration(b.N)
	b.ReportMetric(float64(build.Microseconds())/1000, "build-ms")
	b.ReportMetric(float64(ext.Microseconds())/1000, "extend-ms")
	b.ReportMetric(float64(build)/float64(ext), "ratio")
}
