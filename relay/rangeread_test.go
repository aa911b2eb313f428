package relay

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// rangeRelay serves a topic's reads as a relay does (the entries after
// `after`, at most `limit`), over the cursors it is given (gaps allowed),
// answering at most short entries per read (a relay's early end), and
// holding each read until gate reads are in flight at once or gateWait
// passed. It records the most reads it had in flight at once.
type rangeRelay struct {
	cursors  []uint64
	short    int
	gate     int
	gateWait time.Duration

	mu      sync.Mutex
	now     int
	most    int
	reached chan struct{}
}

func (f *rangeRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	f.mu.Lock()
	f.now++
	f.most = max(f.most, f.now)
	if f.now >= f.gate {
		select {
		case <-f.reached:
		default:
			close(f.reached)
		}
	}
	f.mu.Unlock()
	select {
	case <-f.reached:
	case <-time.After(f.gateWait):
	}
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	var b []byte
	n := 0
	for _, c := range f.cursors {
		if c > after && n < min(limit, f.short) {
			b = AppendEntry(b, Entry{Cursor: c, Envelope: []byte(fmt.Sprint("envelope ", c))})
			n++
		}
	}
	w.Header().Set(HeaderLast, strconv.FormatUint(f.cursors[len(f.cursors)-1], 10))
	w.Header().Set(HeaderFirst, strconv.FormatUint(f.cursors[0], 10))
	w.Write(b)
}

// TestRangeReader: a RangeReader reads its ranges at once, one on each
// client, and the pages it hands over, taken as a sync takes them (each
// next read after the last cursor got), are exactly the topic's entries
// in cursor order: across gaps in the cursors (a range with nothing in
// it too) and answers that end early.
func TestRangeReader(t *testing.T) {
	var cursors []uint64
	for c := uint64(1); c <= 200; c++ {
		if c%7 != 0 && (c < 41 || c > 60) { // gaps, and a range of 10 with nothing
			cursors = append(cursors, c)
		}
	}
	for _, short := range []int{1000, 6} {
		t.Run(fmt.Sprint("answers of at most ", short), func(t *testing.T) {
			// The gate holds reads until four are in flight: a reader
			// that reads one range at a time waits gateWait on each and
			// has most 1. The wait is long enough that four reads
			// started together meet under any load, short enough that
			// the test ends soon when they do not.
			f := &rangeRelay{cursors: cursors, short: short, gate: 4, gateWait: 2 * time.Second, reached: make(chan struct{})}
			ts := httptest.NewServer(f)
			defer ts.Close()
			var clients []*Client
			for range 4 {
				clients = append(clients, NewClient(ts.URL, &http.Client{Transport: &http.Transport{}}))
			}
			const from = 3
			rd := NewRangeReader(context.Background(), clients, testTopicID, from, 195, 10)
			defer rd.Close()
			var got []uint64
			at := uint64(from)
			for pages := 0; ; pages++ {
				if pages > 1000 {
					t.Fatal("no end")
				}
				page, err := rd.Read(context.Background(), at)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Entries) == 0 {
					break
				}
				for _, e := range page.Entries {
					if want := fmt.Sprint("envelope ", e.Cursor); string(e.Envelope) != want {
						t.Fatalf("entry %d holds %q", e.Cursor, e.Envelope)
					}
					got = append(got, e.Cursor)
				}
				at = got[len(got)-1]
			}
			want := slices.DeleteFunc(slices.Clone(cursors), func(c uint64) bool { return c <= from })
			if !slices.Equal(got, want) {
				t.Errorf("read %v\nwant %v", got, want)
			}
			f.mu.Lock()
			most := f.most
			f.mu.Unlock()
			if most < 4 {
				t.Errorf("at most %d reads in flight at once, want 4 (one on each client)", most)
			}
			if most > 5 {
				t.Errorf("%d reads in flight at once: more than its clients and one", most)
			}
		})
	}
}

var testTopicID = [32]byte{7}
