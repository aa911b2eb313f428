package bench

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/relay/natstest"
)

// natsFronts runs n relay fronts in this process over one NATS store, for
// RunRelay: their URLs joined as one relay's name.
func natsFronts(t *testing.T, servers string, n int) func(context.Context) (string, int, func(), error) {
	return func(ctx context.Context) (string, int, func(), error) {
		var urls []string
		var stops []func()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		for range n {
			st, err := relay.OpenNATS(ctx, servers, relay.NATSOptions{Stream: "BENCHTEST", Logger: log})
			if err != nil {
				return "", 0, nil, err
			}
			ts := httptest.NewServer(relay.NewServer(st, relay.Config{ConnRate: 1e9, TopicRate: 1e9, Logger: log}).Handler())
			urls, stops = append(urls, ts.URL), append(stops, func() { ts.Close(); st.Close() })
		}
		return strings.Join(urls, relay.FrontSeparator), 0, func() {
			for _, s := range stops {
				s()
			}
		}, nil
	}
}

// Writers and subscribers spread over three fronts of a NATS relay: every
// subscriber gets every envelope, whichever front it was appended through.
func TestRunRelayFronts(t *testing.T) {
	servers := natstest.Start(t)
	rep, err := RunRelay(context.Background(), RelayOptions{Envelopes: 300, Writers: 6, Batch: 8, Subscribers: 6, Relay: natsFronts(t, servers, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.IngestPerS <= 0 || rep.Delivered != 1800 || rep.FanoutP99ms <= 0 {
		t.Fatalf("report: %+v", rep)
	}
}

func TestRunJetStream(t *testing.T) {
	servers := natstest.Start(t)
	rep, err := RunJetStream(context.Background(), servers, 500, 4, 16)
	if err != nil {
		t.Fatal(err)
	}
	if rep.PublishPerS <= 0 || rep.Replicas != 1 || rep.Envelopes != 500 {
		t.Fatalf("report: %+v", rep)
	}
}
