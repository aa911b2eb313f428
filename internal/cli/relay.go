package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/relay"
)

// relayFile is the relay's optional config file (docs/relay.md); flags
// given on the command line override it.
type relayFile struct {
	Listen         string  `yaml:"listen"`
	Data           string  `yaml:"data"`
	ConnRate       float64 `yaml:"conn-rate"`
	TopicRate      float64 `yaml:"topic-rate"`
	MaxConnections int     `yaml:"max-connections"`
	MaxBody        int64   `yaml:"max-body"`
	RetentionAge   string  `yaml:"retention-age"`
	RetentionBytes int64   `yaml:"retention-bytes"`
	PruneEvery     string  `yaml:"prune-every"`
	LogFormat      string  `yaml:"log-format"`
	LogLevel       string  `yaml:"log-level"`
}

func newRelayCmd(e *Env) *cobra.Command {
	var f relayFile
	var config string
	cmd := &cobra.Command{
		Use:   "relay --listen ADDR --data DIR [--config FILE]",
		Short: "Run a relay until SIGINT or SIGTERM",
		Long: `Run an untrusted store-and-forward relay: topics of sealed envelopes that
members append to, read and follow live (docs/relay-protocol.md). It learns
nothing of the pursuances it carries. When it is ready it prints its URL on
stderr; GET /healthz then answers 200. Operating it: docs/relay.md.`,
		Example: `  pursuance relay --listen 127.0.0.1:8443 --data /var/lib/pursuance-relay
  pursuance relay --config relay.yaml --retention-age 90d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if config != "" {
				var file relayFile
				b, err := os.ReadFile(config)
				if err != nil {
					return err
				}
				if err := yaml.UnmarshalWithOptions(b, &file, yaml.Strict()); err != nil {
					return fmt.Errorf("%s: %v", config, err)
				}
				mergeRelayFile(cmd, &f, file)
			}
			if f.Data == "" {
				return usageErrorf("missing --data DIR (where the relay keeps its envelopes)")
			}
			if f.Listen == "" {
				f.Listen = "127.0.0.1:8765"
			}
			cfg := relay.Config{ConnRate: f.ConnRate, TopicRate: f.TopicRate, MaxConnections: f.MaxConnections, MaxBody: f.MaxBody}
			cfg.Retention.MaxBytes = f.RetentionBytes
			if f.PruneEvery != "" {
				d, err := time.ParseDuration(f.PruneEvery)
				if err != nil || d <= 0 {
					return usageErrorf("--prune-every: want a duration such as 1m")
				}
				cfg.PruneEvery = d
			}
			if f.RetentionAge != "" {
				secs, err := charter.ParsePeriod(f.RetentionAge)
				if err != nil {
					return usageErrorf("--retention-age: %v", err)
				}
				cfg.Retention.MaxAge = time.Duration(secs) * time.Second
			}
			logger, err := relayLogger(e, f.LogFormat, f.LogLevel)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			st, err := relay.OpenSQLite(ctx, filepath.Join(f.Data, "relay.db"))
			if err != nil {
				return fmt.Errorf("relay store in %s: %w", f.Data, err)
			}
			defer st.Close()
			ln, err := net.Listen("tcp", f.Listen)
			if err != nil {
				return err
			}
			srv := relay.NewServer(st, cfg)
			fmt.Fprintf(e.Stderr, "http://%s\n", ln.Addr())
			logger.Info("relay ready", "url", "http://"+ln.Addr().String(), "data", f.Data, "protocol", relay.Version)
			err = srv.Serve(ctx, ln)
			logger.Info("relay stopped")
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&config, "config", "", "read settings from `FILE` (YAML; flags override it)")
	fl.StringVar(&f.Listen, "listen", "", "the `ADDR` to listen on (default 127.0.0.1:8765; port 0 picks one)")
	fl.StringVar(&f.Data, "data", "", "the `DIR` to keep envelopes in")
	fl.Float64Var(&f.ConnRate, "conn-rate", 0, "envelopes/s one connection may append (default 20000)")
	fl.Float64Var(&f.TopicRate, "topic-rate", 0, "envelopes/s one topic may take (default 50000)")
	fl.IntVar(&f.MaxConnections, "max-connections", 0, "open connections at most (default 4096)")
	fl.Int64Var(&f.MaxBody, "max-body", 0, "bytes of one append at most (default 16 MiB)")
	fl.StringVar(&f.RetentionAge, "retention-age", "", "drop envelopes older than this (30d, 12h; default: keep)")
	fl.Int64Var(&f.RetentionBytes, "retention-bytes", 0, "keep at most this many bytes per topic, dropping the oldest (default: no bound)")
	fl.StringVar(&f.PruneEvery, "prune-every", "", "how often retention runs (default 1m)")
	fl.StringVar(&f.LogFormat, "log-format", "", "text or json (default text)")
	fl.StringVar(&f.LogLevel, "log-level", "", "debug, info, warn or error (default info)")
	return cmd
}

// mergeRelayFile fills the settings not given as flags from the file.
func mergeRelayFile(cmd *cobra.Command, f *relayFile, file relayFile) {
	set := func(name string) bool { return cmd.Flags().Changed(name) }
	if !set("listen") {
		f.Listen = file.Listen
	}
	if !set("data") {
		f.Data = file.Data
	}
	if !set("conn-rate") {
		f.ConnRate = file.ConnRate
	}
	if !set("topic-rate") {
		f.TopicRate = file.TopicRate
	}
	if !set("max-connections") {
		f.MaxConnections = file.MaxConnections
	}
	if !set("max-body") {
		f.MaxBody = file.MaxBody
	}
	if !set("retention-age") {
		f.RetentionAge = file.RetentionAge
	}
	if !set("retention-bytes") {
		f.RetentionBytes = file.RetentionBytes
	}
	if !set("prune-every") {
		f.PruneEvery = file.PruneEvery
	}
	if !set("log-format") {
		f.LogFormat = file.LogFormat
	}
	if !set("log-level") {
		f.LogLevel = file.LogLevel
	}
}

func relayLogger(e *Env, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if level != "" {
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return nil, usageErrorf("--log-level: %v", err)
		}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(e.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.Stderr, opts)), nil
	}
	return nil, usageErrorf("--log-format must be text or json, not %q", format)
}
