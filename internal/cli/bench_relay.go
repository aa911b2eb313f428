package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/internal/bench"
)

func newBenchRelayCmd(e *Env) *cobra.Command {
	var o bench.RelayOptions
	var catchup int
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
stderr.`,
		Example: `  pursuance bench relay --envelopes 100000 --writers 64 --subscribers 0
  pursuance bench relay --envelopes 10000 --writers 4 --subscribers 500 --rate 1000
  pursuance bench relay --envelopes 1000 --writers 1 --subscribers 0 --idle 1000
  pursuance bench relay --catchup 100000`,
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
	return cmd
}

// spawnRelay runs `pursuance relay` from this binary on loopback, with a
// temporary data directory and rate limits out of the way.
func spawnRelay(ctx context.Context) (string, int, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	dir, err := os.MkdirTemp("", "pursuance-bench-relay-")
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(self, "relay", "--listen", "127.0.0.1:0", "--data", dir,
		"--conn-rate", "1e9", "--topic-rate", "1e9", "--max-connections", "100000", "--log-level", "error",
		// One address drives it all: per-address limits out of the way too.
		"--conns-per-addr", "100000", "--subs-per-addr", "100000", "--reads-per-addr", "1000", "--appends-per-addr", "1000")
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
		os.RemoveAll(dir)
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
