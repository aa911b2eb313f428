package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
)

// RelayOptions say what RunRelay measures.
type RelayOptions struct {
	Envelopes   int     // envelopes to append, 1 KiB each
	Writers     int     // concurrent writers, each on its own connection
	Batch       int     // envelopes per append (one signature each)
	Subscribers int     // live subscribers of the written topic, for fan-out latency
	Rate        float64 // envelopes/s all writers together; 0: as fast as the relay takes them
	Idle        int     // idle subscribers (one topic each), for the relay's memory
	// Relay starts the relay under test and returns its URL (its fronts'
	// URLs joined with commas, when it has several: writers and
	// subscribers are spread over them), a process ID (0 if in this
	// process) and how to stop it.
	Relay func(ctx context.Context) (url string, pid int, stop func(), err error)
	// Progress, when set, hears how it goes.
	Progress func(string)
}

// RelayReport is what RunRelay measured.
type RelayReport struct {
	Store       string  `json:"store,omitempty"`
	Fronts      int     `json:"fronts,omitempty"`
	Envelopes   int     `json:"envelopes"`
	Writers     int     `json:"writers"`
	Batch       int     `json:"batch"`
	Subscribers int     `json:"subscribers"`
	IngestPerS  float64 `json:"ingest_per_s"`
	FanoutP50ms float64 `json:"fanout_p50_ms"`
	FanoutP99ms float64 `json:"fanout_p99_ms"`
	Delivered   int     `json:"delivered"`
	Idle        int     `json:"idle_subscribers"`
	RelayRSSMB  float64 `json:"relay_rss_mb"` // 0 when the relay runs in this process
}

// RunRelay starts a relay, connects the subscribers, has the writers
// append the envelopes (each stamped with its send time) with durable
// acknowledgements, and measures the relay's ingest rate and the delay
// from an append's send to each subscriber's receipt.
func RunRelay(ctx context.Context, o RelayOptions) (*RelayReport, error) {
	if o.Writers < 1 || o.Batch < 1 || o.Envelopes < 1 {
		return nil, fmt.Errorf("bench relay: writers, batch and envelopes must be at least 1")
	}
	say := o.Progress
	if say == nil {
		say = func(string) {}
	}
	url, pid, stop, err := o.Relay(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	fronts := strings.Split(url, relay.FrontSeparator)
	front := func(i int) string { return fronts[i%len(fronts)] }
	k := keys.Key{Scope: keys.Scope{Pursuance: event.ID{0xbe}}, Gen: 1}
	rand.Read(k.Seed[:])
	topic, tkey, err := k.Topic()
	if err != nil {
		return nil, err
	}
	rep := &RelayReport{Envelopes: o.Envelopes, Writers: o.Writers, Batch: o.Batch, Subscribers: o.Subscribers, Idle: o.Idle}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Idle subscribers, one topic each.
	var subsWG sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: o.Writers + o.Subscribers + o.Idle + 8}
	hc := &http.Client{Transport: tr}
	for i := range o.Idle {
		var t keys.Topic
		binary.BigEndian.PutUint64(t[:], uint64(i)+1)
		subsWG.Go(func() {
			relay.NewClient(front(i), hc).Subscribe(sctx, t, 0, func([]relay.Entry) error { return nil })
		})
	}
	// Live subscribers of the topic written.
	lat := make([][]time.Duration, o.Subscribers)
	var delivered atomic.Int64
	for i := range o.Subscribers {
		subsWG.Go(func() {
			c := relay.NewClient(front(i), hc)
			c.Subscribe(sctx, topic, 0, func(es []relay.Entry) error {
				now := time.Now().UnixNano()
				for _, e := range es {
					sent := int64(binary.BigEndian.Uint64(e.Envelope))
					lat[i] = append(lat[i], time.Duration(now-sent))
				}
				delivered.Add(int64(len(es)))
				return nil
			})
		})
	}
	// A subscription is live once the relay counts it; wait for them.
	if o.Idle+o.Subscribers > 0 {
		say(fmt.Sprintf("connecting %d subscribers", o.Idle+o.Subscribers))
		if err := waitSubscribers(ctx, hc, fronts, o.Idle+o.Subscribers); err != nil {
			return nil, err
		}
	}
	if pid != 0 && o.Idle > 0 {
		time.Sleep(500 * time.Millisecond)
		rep.RelayRSSMB = rssMB(pid)
		say(fmt.Sprintf("%d idle subscribers: relay RSS %.1f MB", o.Idle, rep.RelayRSSMB))
	}

	// Writers.
	say(fmt.Sprintf("appending %d envelopes: %d writers, %d per append", o.Envelopes, o.Writers, o.Batch))
	var next atomic.Int64
	var pace <-chan time.Time
	if o.Rate > 0 {
		tick := time.NewTicker(time.Duration(float64(time.Second) * float64(o.Batch) / o.Rate))
		defer tick.Stop()
		pace = tick.C
	}
	start := time.Now()
	errc := make(chan error, o.Writers)
	var wg sync.WaitGroup
	for w := range o.Writers {
		wg.Go(func() {
			c := relay.NewClient(front(w), &http.Client{Transport: &http.Transport{}})
			for {
				n := int(next.Add(int64(o.Batch)))
				first := n - o.Batch
				if first >= o.Envelopes {
					return
				}
				size := min(o.Batch, o.Envelopes-first)
				if pace != nil {
					select {
					case <-pace:
					case <-ctx.Done():
						return
					}
				}
				envs := make([][]byte, size)
				now := time.Now().UnixNano()
				for i := range envs {
					envs[i] = make([]byte, 1024)
					rand.Read(envs[i][8:40])
					binary.BigEndian.PutUint64(envs[i], uint64(now))
				}
				if _, err := c.Append(ctx, topic, tkey, envs); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("bench relay: append: %w", err)
	}
	rep.IngestPerS = float64(o.Envelopes) / elapsed.Seconds()
	say(fmt.Sprintf("appended in %v: %.0f envelopes/s", elapsed.Round(time.Millisecond), rep.IngestPerS))
	if o.Subscribers > 0 {
		want := int64(o.Envelopes * o.Subscribers)
		deadline := time.Now().Add(30 * time.Second)
		for delivered.Load() < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		rep.Delivered = int(delivered.Load())
	}
	if pid != 0 && o.Idle == 0 {
		rep.RelayRSSMB = rssMB(pid)
	}
	cancel()
	subsWG.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) > 0 {
		slices.Sort(all)
		rep.FanoutP50ms = float64(all[len(all)/2]) / 1e6
		rep.FanoutP99ms = float64(all[len(all)*99/100]) / 1e6
	}
	return rep, nil
}

// waitSubscribers polls the fronts' metrics until n subscriptions are
// open in all.
func waitSubscribers(ctx context.Context, hc *http.Client, fronts []string, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if subscribers(hc, fronts) >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("bench relay: %d subscribers did not all connect", n)
}

// subscribers sums the fronts' open subscriptions.
func subscribers(hc *http.Client, fronts []string) int {
	total := 0
	for _, url := range fronts {
		resp, err := hc.Get(url + "/metrics")
		if err == nil {
			var b strings.Builder
			buf := make([]byte, 32<<10)
			for {
				k, err := resp.Body.Read(buf)
				b.Write(buf[:k])
				if err != nil {
					break
				}
			}
			resp.Body.Close()
			for _, line := range strings.Split(b.String(), "\n") {
				if v, ok := strings.CutPrefix(line, "pursuance_relay_subscribers "); ok {
					f, _ := strconv.ParseFloat(v, 64)
					total += int(f)
				}
			}
		}
	}
	return total
}

// rssMB reads a process's resident set size, in MB.
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
