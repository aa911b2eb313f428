package bench

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/pursuance/pursuance/relay"
)

// inProcess runs a relay in this process for RunRelay and RunCatchup.
func inProcess(t *testing.T) func(context.Context) (string, int, func(), error) {
	return func(ctx context.Context) (string, int, func(), error) {
		st, err := relay.OpenSQLite(ctx, filepath.Join(t.TempDir(), "relay.db"))
		if err != nil {
			return "", 0, nil, err
		}
		srv := relay.NewServer(st, relay.Config{ConnRate: 1e9, TopicRate: 1e9, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ts := httptest.NewServer(srv.Handler())
		return ts.URL, 0, func() { ts.Close(); st.Close() }, nil
	}
}

func TestRunRelay(t *testing.T) {
	rep, err := RunRelay(context.Background(), RelayOptions{Envelopes: 500, Writers: 4, Batch: 8, Subscribers: 3, Idle: 2, Relay: inProcess(t)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.IngestPerS <= 0 || rep.Delivered != 1500 || rep.FanoutP99ms <= 0 || rep.FanoutP50ms > rep.FanoutP99ms {
		t.Fatalf("report: %+v", rep)
	}
}

func TestRunCatchup(t *testing.T) {
	rep, err := RunCatchup(context.Background(), 2000, t.TempDir(), inProcess(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 2000 || rep.Ratio < 1 || rep.Ratio > 1.2 {
		t.Fatalf("report: %+v", rep)
	}
}

// TestRunCatchupReaders: read several pages at once on four clients, the
// catch-up still stores every event (RunCatchupReaders fails otherwise:
// a missed or repeated range leaves events missing or pending) and the
// wire carries each envelope once.
func TestRunCatchupReaders(t *testing.T) {
	var vias []*http.Client
	for range 4 {
		vias = append(vias, &http.Client{Transport: &http.Transport{}})
	}
	rep, err := RunCatchupReaders(context.Background(), 2000, t.TempDir(), inProcess(t), nil, vias, 100)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 2000 || rep.Ratio < 1 || rep.Ratio > 1.2 {
		t.Fatalf("report: %+v", rep)
	}
}
