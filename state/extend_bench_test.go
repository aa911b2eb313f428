package state_test

import (
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
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
//     judged again.
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
	b.ReportMetric(float64(len(late)), "added")
	for i, e := range l.events {
		if out[e.ID()] {
			b.ReportMetric(float64(len(l.events)-i), "from-end")
			break
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
