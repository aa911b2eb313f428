package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStreamReport is what NATS JetStream alone takes on the cluster the
// relay's NATS store uses: the same envelopes, writers and batches
// published straight to a stream of the relay's configuration, each batch
// waiting for its acknowledgements as a relay front does.
type JetStreamReport struct {
	Envelopes   int     `json:"envelopes"`
	Writers     int     `json:"writers"`
	Batch       int     `json:"batch"`
	Replicas    int     `json:"replicas"`
	PublishPerS float64 `json:"publish_per_s"`
}

// RunJetStream publishes envelopes of 1 KiB to a new stream (file
// storage, replicated as the relay's would be: 3 ways on a cluster) on
// the NATS servers, from writers connections, batch at a time, and
// deletes the stream afterwards.
func RunJetStream(ctx context.Context, servers string, envelopes, writers, batch int) (*JetStreamReport, error) {
	var id [4]byte
	rand.Read(id[:])
	name := "BENCHJS" + hex.EncodeToString(id[:])
	nc, err := nats.Connect(servers)
	if err != nil {
		return nil, fmt.Errorf("bench: connecting to NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	replicas := 1
	if nc.ConnectedClusterName() != "" {
		replicas = 3
	}
	subject := "bench." + name
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject + ".>"}, Storage: jetstream.FileStorage, Replicas: replicas, AllowDirect: true}); err != nil {
		return nil, fmt.Errorf("bench: the JetStream stream: %w", err)
	}
	defer js.DeleteStream(context.Background(), name)
	rep := &JetStreamReport{Envelopes: envelopes, Writers: writers, Batch: batch, Replicas: replicas}
	var next atomic.Int64
	errc := make(chan error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			// A connection per writer, as each relay front's appends of a
			// writer would share the front's one connection: one per
			// writer is JetStream's best case.
			c, err := nats.Connect(servers)
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			wjs, _ := jetstream.New(c)
			for {
				n := int(next.Add(int64(batch)))
				first := n - batch
				if first >= envelopes {
					return
				}
				futs := make([]jetstream.PubAckFuture, 0, batch)
				for i := range min(batch, envelopes-first) {
					env := make([]byte, 1024)
					rand.Read(env[:32])
					m := nats.NewMsg(fmt.Sprintf("%s.%d", subject, w)) // a subject per writer, as the relay's per topic
					_ = i
					m.Data = env
					f, err := wjs.PublishMsgAsync(m)
					if err != nil {
						errc <- err
						return
					}
					futs = append(futs, f)
				}
				for _, f := range futs {
					select {
					case <-f.Ok():
					case err := <-f.Err():
						errc <- err
						return
					case <-ctx.Done():
						errc <- ctx.Err()
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("bench: publishing: %w", err)
	}
	rep.PublishPerS = float64(envelopes) / time.Since(start).Seconds()
	return rep, nil
}

// DeleteRelayStream deletes a bench run's relay stream from the cluster.
func DeleteRelayStream(servers, stream string) error {
	nc, err := nats.Connect(servers)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return js.DeleteStream(context.Background(), stream)
}
