package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
)

// sizingEnvelope is the size of the envelopes written: the smallest
// bucket, which holds most events (a task, a comment, a status).
const sizingEnvelope = 1 << 10

// TestRelaySizing measures what docs/operating.md's sizing table says: a
// real relay process (built without -race) with the SQLite store, T
// topics of N envelopes each written by 8 writers; then the store's size
// on disk, and the relay's memory after the writes and with one live
// subscriber per topic. Off by default (a minute or two and a GiB of
// disk); run it with
//
//	PURSUANCE_SIZING=1000x1000 go test ./cmd/pursuance -run TestRelaySizing -v
//
// (T x N: 1,000 topics of 1,000 envelopes is 1M envelopes).
func TestRelaySizing(t *testing.T) {
	spec := os.Getenv("PURSUANCE_SIZING")
	if spec == "" {
		t.Skip("PURSUANCE_SIZING=TOPICSxENVELOPES measures the relay's disk and memory (docs/operating.md, \"Sizing\")")
	}
	var topics, perTopic int
	if _, err := fmt.Sscanf(spec, "%dx%d", &topics, &perTopic); err != nil || topics < 1 || perTopic < 1 {
		t.Fatalf("PURSUANCE_SIZING=%q: want TOPICSxENVELOPES, such as 1000x1000", spec)
	}
	const writers, batch = 8, 64
	bin := buildRelay(t)
	data := t.TempDir()
	p := startAttackedRelay(t, bin, "--data", data, "--new-topics-per-hour", strconv.Itoa(2*topics), "--subs-per-addr", strconv.Itoa(2*topics),
		"--conns-per-addr", strconv.Itoa(2*topics+64), "--max-connections", strconv.Itoa(2*topics+256), "--min-free", "-1", "--topic-quota", "-1")
	idleRSS, _ := p.memory(t)

	type sizedTopic struct {
		t keys.Topic
		k *identity.SigningKey
	}
	ts := make([]sizedTopic, topics)
	for i := range ts {
		ts[i].t, ts[i].k = topicKey(t)
	}
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}}
	c := relay.NewClient(p.url, hc)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= topics || t.Failed() {
					return
				}
				for sent := 0; sent < perTopic; sent += batch {
					envs := make([][]byte, min(batch, perTopic-sent))
					for j := range envs {
						envs[j] = make([]byte, sizingEnvelope)
						rand.Read(envs[j]) // ciphertext: incompressible
					}
					if _, err := c.Append(ctx, ts[i].t, ts[i].k, envs); err != nil {
						t.Errorf("append: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	took := time.Since(start)
	writtenRSS, writtenHWM := p.memory(t)

	// One live subscriber per topic, caught up (nothing new to send).
	sctx, cancel := context.WithCancel(ctx)
	var subs sync.WaitGroup
	shc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: topics}}
	for _, tk := range ts {
		subs.Go(func() {
			relay.NewClient(p.url, shc).Subscribe(sctx, tk.t, uint64(perTopic), func([]relay.Entry) error { return nil })
		})
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(p.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if _, rest, ok := strings.Cut(string(body), "\npursuance_relay_subscribers "); ok {
			fmt.Sscanf(rest, "%d", &n)
		}
		if n >= topics {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d subscribers after 2 minutes", n, topics)
		}
		time.Sleep(200 * time.Millisecond)
	}
	subsRSS, subsHWM := p.memory(t)
	cancel()
	subs.Wait()

	// The store's files while it runs, then after a clean stop (the WAL
	// folded in).
	running := sizingDirSize(t, data)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	stopped := sizingDirSize(t, data)
	envelopes := topics * perTopic
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	t.Logf("relay sizing: %d topics x %d envelopes of %d bytes = %d envelopes (%.0f MiB of envelopes) written by %d writers in %s (%.0f envelopes/s)",
		topics, perTopic, sizingEnvelope, envelopes, mib(int64(envelopes)*sizingEnvelope), writers, took.Round(time.Second), float64(envelopes)/took.Seconds())
	t.Logf("disk: %.0f MiB running (WAL included), %.0f MiB stopped: %.3f bytes on disk per envelope byte",
		mib(running), mib(stopped), float64(stopped)/float64(int64(envelopes)*sizingEnvelope))
	t.Logf("memory: RSS %.0f MiB idle at start; %.0f MiB after the writes (peak %.0f); %.0f MiB with %d live subscribers (peak %.0f)",
		mib(idleRSS), mib(writtenRSS), mib(writtenHWM), mib(subsRSS), topics, mib(subsHWM))
}

// sizingDirSize is the bytes of the regular files under dir.
func sizingDirSize(t *testing.T, dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
