package bench

import (
	"bytes"
	"context"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/ingest"
)

// TestGenerateLog: the generated log is deterministic, valid, and what it
// claims (N events, A authors, one pursuance), so the benchmarks measure
// real work.
func TestGenerateLog(t *testing.T) {
	a, err := GenerateLog(257, 5, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateLog(257, 5, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Events) != 257 || a.Authors != 5 {
		t.Fatalf("%d events, %d authors", len(a.Events), a.Authors)
	}
	authors := map[[32]byte]bool{}
	for i := range a.Events {
		if !bytes.Equal(a.Events[i], b.Events[i]) {
			t.Fatalf("event %d differs between runs", i)
		}
		e, err := event.Decode(a.Events[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := e.VerifySignature(); err != nil {
			t.Fatal(err)
		}
		if e.PursuanceID() != a.Pursuance {
			t.Fatalf("event %d in another pursuance", i)
		}
		authors[e.Author] = true
	}
	if len(authors) != 5 {
		t.Fatalf("%d distinct authors", len(authors))
	}
	for _, opts := range []ingest.Options{{}, {Naive: true}} {
		if _, err := TimeIngest(context.Background(), a, t.TempDir(), 100, opts); err != nil {
			t.Fatalf("naive=%v: %v", opts.Naive, err)
		}
	}
	if _, err := GenerateLog(0, 1, 1, 0); err == nil {
		t.Fatal("a log of 0 events")
	}
}
