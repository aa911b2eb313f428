package state

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
)

func TestZZInternal(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ZZN"))
	if n == 0 {
		t.Skip()
	}
	m, _ := filepath.Glob(filepath.Join(os.TempDir(), "pursuance-statelog-v1-n"+strconv.Itoa(n)+"-m20-s1-*.bin"))
	raw, err := os.ReadFile(m[0])
	if err != nil {
		t.Fatal(err)
	}
	raw = raw[len("pursuance-statelog\n"):]
	cnt, k := binary.Uvarint(raw)
	raw = raw[k:]
	evs := make([]*event.Event, cnt)
	for i := range evs {
		l, k := binary.Uvarint(raw)
		evs[i], err = event.Decode(raw[k : k+int(l)])
		if err != nil {
			t.Fatal(err)
		}
		raw = raw[k+int(l):]
	}
	b := newBuilder(evs[0].ID(), nil)
	for _, e := range evs {
		if _, err := b.add(e); err != nil {
			t.Fatal(err)
		}
	}
	passes := 0
	var passT []time.Duration
	for {
		start := time.Now()
		b.pass()
		passT = append(passT, time.Since(start))
		passes++
		changed := false
		for p := range b.pinned {
			if !b.nodes[p].accepted {
				delete(b.pinned, p)
				b.excluded[p] = true
				changed = true
			}
		}
		for p, n := range b.nodes {
			p := int32(p)
			if _, pinned := b.pinned[p]; n.accepted && n.restrict != nil && !pinned && !b.excluded[p] && b.hasEarlierConcurrent(p) {
				b.pinned[p] = *n.restrict
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	// Replay authMax to count authAt calls and the records each replays.
	authMax := make([]uint64, len(b.authors))
	authRecs := 0
	authAtCalls, authAtWork := 0, 0
	restrictions, scan := 0, 0
	for p, x := range b.nodes {
		for i, s := range authMax {
			if s > x.seen(uint32(i)) {
				authAtCalls++
				authAtWork += authRecs
				break
			}
		}
		if x.accepted && isAuthority(x.op) {
			authRecs++
			authMax[x.author] = max(authMax[x.author], x.e.Seq)
		}
		if x.accepted && x.restrict != nil {
			restrictions++
			ti := b.authorIdx[x.restrict.target]
			for _, y := range b.byAuthor[ti] {
				if y >= int32(p) {
					break
				}
				scan++
			}
		}
	}
	tasks := 0
	maxRecs := 0
	for _, r := range b.taskRecs {
		tasks++
		maxRecs = max(maxRecs, len(r))
	}
	t.Logf("n=%d authors=%d passes=%d %v pinned=%d excluded=%d authRecs=%d authAt calls=%d (records replayed per pass %d) restrictions=%d hasEarlierConcurrent scan per run-iteration=%d tasks=%d maxrecs=%d",
		n, len(b.authors), passes, passT, len(b.pinned), len(b.excluded), authRecs, authAtCalls, authAtWork, restrictions, scan, tasks, maxRecs)
}
