package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/internal/bench"
	"github.com/pursuance/pursuance/relay"
)

func newBenchRelayCmd(e *Env) *cobra.Command {
	var o bench.RelayOptions
	var catchup, fronts int
	var store string
	cmd := &cobra.Command{
		Use:   "relay --envelopes N --writers W --subscribers S",
		Short: "Start a relay on loopback, drive it, report its throughput and fan-out delay",
		Long: `Start a relay as a separate process on loopback (its own data in a
temporary directory), connect S live subscribers to one topic (and --idle K
more, one idle topic each, for the relay's memory), then have W writers
append N envelopes of 1 KiB, --batch per signed append, each acknowledged
only once durable. Reports envelopes/s appended and the delay from an
append's send to each subscriber's receipt (p50, p99). --rate paces the
writers (envelopes/s in all). --catchup N instead times a new member
catching up on N events through the relay: reading, opening, verifying
and storing them, with the bytes that crossed the wire. Progress on
stderr.

--store nats://HOST:PORT[,…] measures a relay on that NATS JetStream
cluster (a fresh stream per run, deleted afterwards) beside the SQLite
relay, in the same run and with the same load: the SQLite relay, the NATS
relay through one front, through --fronts fronts (separate processes;
writers and subscribers spread over them), and JetStream alone taking the
same envelopes from the same writers (the engine's own throughput: the
relay's overhead over it).`,
		Example: `  pursuance bench relay --envelopes 100000 --writers 64 --subscribers 0
  pursuance bench relay --envelopes 10000 --writers 4 --subscribers 500 --rate 1000
  pursuance bench relay --envelopes 1000 --writers 1 --subscribers 0 --idle 1000
  pursuance bench relay --catchup 100000
  pursuance bench relay --store nats://127.0.0.1:4222,127.0.0.1:4223,127.0.0.1:4224 --envelopes 100000 --writers 64`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Relay = spawnRelay
			o.Progress = func(s string) { fmt.Fprintf(e.Stderr, "bench: %s\n", s) }
			if catchup > 0 {
				dir, err := os.MkdirTemp("", "pursuance-bench-catchup-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				rep, err := bench.RunCatchup(cmd.Context(), catchup, dir, spawnRelay, o.Progress)
				if err != nil {
					return err
				}
				if e.json {
					return e.printJSON(rep)
				}
				fmt.Fprintf(e.Stdout, "catch-up:    %d events in %.2f s (%.0f events/s)\nwire:        %d bytes for %d bytes of envelopes (%.3f×)\n",
					rep.Events, rep.Seconds, rep.EventsPerS, rep.WireBytes, rep.EnvelopeBytes, rep.Ratio)
				return nil
			}
			if strings.HasPrefix(store, "nats://") {
				return benchRelayNATS(cmd.Context(), e, o, store, fronts)
			}
			if store != "" && store != "sqlite" {
				return usageErrorf("--store: sqlite or nats://HOST:PORT[,…]")
			}
			rep, err := bench.RunRelay(cmd.Context(), o)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(rep)
			}
			fmt.Fprintf(e.Stdout, "envelopes:   %d (%d writers, %d per append)\ningest:      %.0f envelopes/s\n", rep.Envelopes, rep.Writers, rep.Batch, rep.IngestPerS)
			if rep.Subscribers > 0 {
				fmt.Fprintf(e.Stdout, "fan-out:     %d subscribers, p50 %.1f ms, p99 %.1f ms (%d deliveries)\n", rep.Subscribers, rep.FanoutP50ms, rep.FanoutP99ms, rep.Delivered)
			}
			if rep.RelayRSSMB > 0 {
				fmt.Fprintf(e.Stdout, "relay RSS:   %.1f MB (%d idle subscribers)\n", rep.RelayRSSMB, rep.Idle)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Envelopes, "envelopes", 10000, "envelopes to append (`N`)")
	f.IntVar(&o.Writers, "writers", 64, "concurrent writers (`W`)")
	f.IntVar(&o.Subscribers, "subscribers", 0, "live subscribers of the written topic (`S`)")
	f.IntVar(&o.Batch, "batch", 16, "envelopes per signed append")
	f.Float64Var(&o.Rate, "rate", 0, "envelopes/s in all (0: as fast as possible)")
	f.IntVar(&o.Idle, "idle", 0, "idle subscribers, one topic each")
	f.IntVar(&catchup, "catchup", 0, "instead, time a new member catching up on `N` events")
	f.StringVar(&store, "store", "", "sqlite (the default), or nats://HOST:PORT[,…]: a NATS JetStream cluster, measured beside the SQLite relay")
	f.IntVar(&fronts, "fronts", 3, "with a NATS store, the relay fronts of the many-front run")
	return cmd
}

// spawnRelay runs `pursuance relay` from this binary on loopback, with a
// temporary data directory and rate limits out of the way.
func spawnRelay(ctx context.Context) (string, int, func(), error) {
	dir, err := os.MkdirTemp("", "pursuance-bench-relay-")
	if err != nil {
		return "", 0, nil, err
	}
	url, pid, stop, err := spawnRelayWith(ctx, "--data", dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", 0, nil, err
	}
	return url, pid, func() { stop(); os.RemoveAll(dir) }, nil
}

// spawnRelayWith runs `pursuance relay` from this binary on loopback with
// the store args name, rate and per-address limits out of the way.
func spawnRelayWith(ctx context.Context, store ...string) (string, int, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	args := append([]string{"relay", "--listen", "127.0.0.1:0"}, store...)
	cmd := exec.Command(self, append(args,
		"--conn-rate", "1e9", "--topic-rate", "1e9", "--max-connections", "100000", "--log-level", "error",
		// One address drives it all: per-address limits out of the way too.
		"--conns-per-addr", "100000", "--subs-per-addr", "100000", "--reads-per-addr", "1000", "--appends-per-addr", "1000")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	r := bufio.NewReader(stderr)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		stop()
		return "", 0, nil, fmt.Errorf("bench relay: the relay did not start: %q", line)
	}
	go io.Copy(io.Discard, r)
	return strings.TrimSpace(line), cmd.Process.Pid, stop, nil
}

// natsBenchReport is what `bench relay --store nats://…` prints: the
// contract's keys for the many-front NATS run, then every run.
type natsBenchReport struct {
	bench.RelayReport
	Runs      []*bench.RelayReport   `json:"runs"`
	JetStream *bench.JetStreamReport `json:"jetstream"`
	// Overhead is JetStream's publish rate over the relay's ingest through
	// the many fronts (1: none).
	Overhead float64 `json:"jetstream_over_relay"`
}

// benchRelayNATS runs the same load on the SQLite relay, on the NATS
// relay through one front and through fronts, and on JetStream alone.
func benchRelayNATS(ctx context.Context, e *Env, o bench.RelayOptions, store string, fronts int) error {
	servers, _, err := relay.ParseNATSStore(store)
	if err != nil {
		return usageErrorf("--store: %v", err)
	}
	if fronts < 1 {
		return usageErrorf("--fronts must be at least 1")
	}
	var runs []*bench.RelayReport
	for _, n := range []int{0, 1, fronts} {
		o.Relay = spawnRelay
		name := "sqlite"
		if n > 0 {
			name = "nats"
			o.Relay = func(ctx context.Context) (string, int, func(), error) { return spawnFronts(ctx, store, servers, n) }
		}
		o.Progress(fmt.Sprintf("%s relay, %d front(s)", name, max(n, 1)))
		rep, err := bench.RunRelay(ctx, o)
		if err != nil {
			return err
		}
		rep.Store, rep.Fronts = name, max(n, 1)
		runs = append(runs, rep)
	}
	o.Progress("JetStream alone")
	js, err := bench.RunJetStream(ctx, servers, o.Envelopes, o.Writers, o.Batch)
	if err != nil {
		return err
	}
	out := natsBenchReport{RelayReport: *runs[len(runs)-1], Runs: runs, JetStream: js}
	if out.IngestPerS > 0 {
		out.Overhead = js.PublishPerS / out.IngestPerS
	}
	if e.json {
		return e.printJSON(out)
	}
	for _, r := range runs {
		fmt.Fprintf(e.Stdout, "%-6s %d front(s): ingest %.0f envelopes/s", r.Store, r.Fronts, r.IngestPerS)
		if r.Subscribers > 0 {
			fmt.Fprintf(e.Stdout, "; fan-out to %d: p50 %.1f ms, p99 %.1f ms", r.Subscribers, r.FanoutP50ms, r.FanoutP99ms)
		}
		fmt.Fprintln(e.Stdout)
	}
	fmt.Fprintf(e.Stdout, "JetStream alone (R%d): %.0f envelopes/s (%.2f× the relay through %d fronts)\n", js.Replicas, js.PublishPerS, out.Overhead, fronts)
	return nil
}

// spawnFronts runs n relay fronts over a fresh stream of the NATS store,
// and returns their URLs joined as one relay's name; stopping them deletes
// the stream.
func spawnFronts(ctx context.Context, store, servers string, n int) (string, int, func(), error) {
	var id [4]byte
	rand.Read(id[:])
	stream := "BENCH" + hex.EncodeToString(id[:])
	sep := "?"
	if strings.Contains(store, "?") {
		sep = "&"
	}
	var urls []string
	var stops []func()
	pid := 0
	stop := func() {
		for _, s := range stops {
			s()
		}
		bench.DeleteRelayStream(servers, stream)
	}
	for range n {
		url, p, s, err := spawnRelayWith(ctx, "--store", store+sep+"stream="+stream, "--min-free", "-1")
		if err != nil {
			stop()
			return "", 0, nil, err
		}
		if pid == 0 {
			pid = p
		}
		urls, stops = append(urls, url), append(stops, s)
	}
	return strings.Join(urls, relay.FrontSeparator), pid, stop, nil
}
