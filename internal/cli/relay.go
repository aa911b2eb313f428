package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/internal/tor"
	"github.com/pursuance/pursuance/relay"
)

// relayFile is the relay's optional config file (docs/relay.md); flags
// given on the command line override it.
type relayFile struct {
	Listen         string  `yaml:"listen"`
	Data           string  `yaml:"data"`
	Store          string  `yaml:"store"`
	ConnRate       float64 `yaml:"conn-rate"`
	TopicRate      float64 `yaml:"topic-rate"`
	MaxConnections int     `yaml:"max-connections"`
	MaxBody        int64   `yaml:"max-body"`
	RetentionAge   string  `yaml:"retention-age"`
	RetentionBytes int64   `yaml:"retention-bytes"`
	PruneEvery     string  `yaml:"prune-every"`
	LogFormat      string  `yaml:"log-format"`
	LogLevel       string  `yaml:"log-level"`
	// Limits against anonymous clients (docs/relay.md, "Limits").
	ConnsPerAddr     int      `yaml:"conns-per-addr"`
	ReadsPerAddr     int      `yaml:"reads-per-addr"`
	AppendsPerAddr   int      `yaml:"appends-per-addr"`
	SubsPerAddr      int      `yaml:"subs-per-addr"`
	NewTopicsPerHour float64  `yaml:"new-topics-per-hour"`
	MaxReads         int      `yaml:"max-reads"`
	AppendMemory     int64    `yaml:"append-memory"`
	HubBytes         int64    `yaml:"live-cache-bytes"`
	HubTopicBytes    int64    `yaml:"live-cache-topic-bytes"`
	TopicQuota       int64    `yaml:"topic-quota"`
	StoreQuota       int64    `yaml:"store-quota"`
	MinFree          int64    `yaml:"min-free"`
	BlobTopicQuota   int64    `yaml:"blob-topic-quota"`
	BlobStoreQuota   int64    `yaml:"blob-store-quota"`
	TrustedProxies   []string `yaml:"trusted-proxy"`
	MemoryLimit      int64    `yaml:"memory-limit"`
	// Tor (docs/tor.md): the relay as an onion service.
	Onion     bool   `yaml:"onion"`
	OnionOnly bool   `yaml:"onion-only"`
	TorCtl    string `yaml:"tor-control"`

	Directory     bool    `yaml:"directory"`
	KnockWork     int     `yaml:"knock-work"`
	KnocksPerHour float64 `yaml:"knocks-per-hour"`

	// TLS (docs/operating.md, "TLS"): certificate files, or ACME.
	TLSCert       string   `yaml:"tls-cert"`
	TLSKey        string   `yaml:"tls-key"`
	ACMEDomains   []string `yaml:"acme-domain"`
	ACMEEmail     string   `yaml:"acme-email"`
	ACMECache     string   `yaml:"acme-cache"`
	ACMEDirectory string   `yaml:"acme-directory"`
	ACMEHTTP      string   `yaml:"acme-http"`
}

// relayGCPercent is the relay's GOGC unless the environment sets one: what
// it holds is mostly envelopes, byte slices the collector does not scan,
// so collecting when the heap has grown by half (not doubled) costs
// little and keeps its memory near what is live (docs/relay.md, "Memory").
const relayGCPercent = 50

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
			if err := resolveRelayStore(&f); err != nil {
				return err
			}
			if f.OnionOnly {
				if f.Listen != "" {
					return usageErrorf("--onion-only refuses clear-net listeners: leave out --listen (the relay then listens only where its tor forwards to)")
				}
				f.Onion = true
			}
			if f.TorCtl != "" {
				e.tor.control = f.TorCtl
			}
			if f.Listen == "" && !f.OnionOnly {
				f.Listen = "127.0.0.1:8765"
			}
			cfg := relay.Config{ConnRate: f.ConnRate, TopicRate: f.TopicRate, MaxConnections: f.MaxConnections, MaxBody: f.MaxBody,
				ConnsPerAddr: f.ConnsPerAddr, ReadsPerAddr: f.ReadsPerAddr, AppendsPerAddr: f.AppendsPerAddr, SubsPerAddr: f.SubsPerAddr,
				NewTopicsPerHour: f.NewTopicsPerHour, MaxReads: f.MaxReads, AppendMemory: f.AppendMemory,
				HubBytes: f.HubBytes, HubTopicBytes: f.HubTopicBytes,
				TopicQuota: f.TopicQuota, StoreQuota: f.StoreQuota, MinFree: f.MinFree, BlobTopicQuota: f.BlobTopicQuota, BlobStoreQuota: f.BlobStoreQuota, DataDir: f.storeDir(),
				Directory: f.Directory, KnockWork: f.KnockWork, KnocksPerHour: f.KnocksPerHour}
			for _, p := range f.TrustedProxies {
				prefix, err := parsePrefix(p)
				if err != nil {
					return usageErrorf("--trusted-proxy %q: want an address or a CIDR prefix such as 10.0.0.0/8", p)
				}
				cfg.TrustedProxies = append(cfg.TrustedProxies, prefix)
			}
			if err := checkRelayLimits(f); err != nil {
				return err
			}
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
			tlsConf, acmeHTTP, err := relayTLS(f, f.Data, logger)
			if err != nil {
				return err
			}
			if tlsConf != nil && f.Listen == "" {
				return usageErrorf("TLS needs a clear-net listener (--listen); an onion service is encrypted by Tor already")
			}
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(relayGCPercent)
			}
			if f.MemoryLimit > 0 {
				debug.SetMemoryLimit(f.MemoryLimit)
			}
			cfg.Logger = logger
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// Tor first: without it, nothing listens.
			var torc *tor.Tor
			if f.Onion {
				torc, err = e.startTor(ctx, filepath.Join(f.Data, torDir), logger.With("component", "tor"), false)
				if err != nil {
					return err
				}
				defer torc.Close()
			}
			// What follows tor in the background ends before tor is closed.
			torCtx, torCancel := context.WithCancel(ctx)
			var torWG sync.WaitGroup
			defer func() {
				torCancel()
				torWG.Wait()
			}()
			if torc != nil {
				torWG.Go(func() {
					if err := torc.WaitBootstrapped(torCtx, nil); err != nil && torCtx.Err() == nil {
						logger.Error("tor", "err", oneLine(err.Error()))
					}
				})
			}
			if f.Data != "" {
				lock, err := lockRelayData(f.Data)
				if err != nil {
					return err
				}
				defer lock.Close()
			}
			st, err := openRelayStore(ctx, f, cfg.Retention, logger)
			if err != nil {
				return err
			}
			defer st.Close()
			var lns []net.Listener
			scheme := "http"
			if f.Listen != "" {
				ln, err := net.Listen("tcp", f.Listen)
				if err != nil {
					return err
				}
				if tlsConf != nil {
					ln, scheme = relay.TLSListener(ln, tlsConf), "https"
				}
				lns = append(lns, ln)
			}
			if acmeHTTP != nil && f.ACMEHTTP != "" {
				stopACME, _, err := serveACMEHTTP(f.ACMEHTTP, acmeHTTP, logger)
				if err != nil {
					for _, l := range lns {
						l.Close()
					}
					return err
				}
				defer stopACME()
			}
			target := ""
			if torc != nil {
				oln, t, err := onionListener(filepath.Join(f.Data, "onion.sock"), torc.Owned())
				if err != nil {
					for _, l := range lns {
						l.Close()
					}
					return fmt.Errorf("the onion service's listener: %w", err)
				}
				lns, target = append(lns, oln), t
			}
			srv := relay.NewServer(st, cfg)
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ctx, mergeListeners(lns...)) }()
			if f.Listen != "" {
				url := scheme + "://" + lns[0].Addr().String()
				fmt.Fprintln(e.Stderr, url)
				logger.Info("relay ready", "url", url, "data", f.Data, "protocol", relay.Version, "acme_domains", f.ACMEDomains)
			}
			if torc != nil {
				onion, err := torc.Publish(ctx, filepath.Join(f.Data, "onion.key"), onionPort, target)
				if err != nil {
					stop()
					<-served
					return fmt.Errorf("publishing the relay as an onion service: %w", err)
				}
				logger.Info("relay ready as an onion service; its URL follows once tor has published it", "onion", onion, "listens", target, "data", f.Data, "protocol", relay.Version, "clear-net", f.Listen != "")
				e.announceOnion(torCtx, &torWG, torc, onion, logger, nil)
			}
			err = <-served
			logger.Info("relay stopped")
			return err
		},
	}
	cmd.AddCommand(newRelayBackupCmd(e), newRelayRestoreCmd(e), newRelayHealthCmd(e))
	fl := cmd.Flags()
	fl.StringVar(&config, "config", "", "read settings from `FILE` (YAML; flags override it)")
	fl.StringVar(&f.Listen, "listen", "", "the `ADDR` to listen on (default 127.0.0.1:8765; port 0 picks one)")
	fl.StringVar(&f.Data, "data", "", "the `DIR` to keep envelopes in (the SQLite store), and the onion service's key")
	fl.StringVar(&f.Store, "store", "", "the relay's store: sqlite:DIR (the default, as --data DIR) or nats://HOST:PORT[,HOST:PORT…] (a NATS JetStream cluster; docs/relay.md)")
	fl.Float64Var(&f.ConnRate, "conn-rate", 0, "envelopes/s one connection may append (default 20000)")
	fl.Float64Var(&f.TopicRate, "topic-rate", 0, "envelopes/s one topic may take (default 50000)")
	fl.IntVar(&f.MaxConnections, "max-connections", 0, "open connections at most (default 4096)")
	fl.Int64Var(&f.MaxBody, "max-body", 0, "bytes of one append at most (default 16 MiB)")
	fl.StringVar(&f.RetentionAge, "retention-age", "", "drop envelopes older than this, and blobs last put longer ago (30d, 12h; default: keep)")
	fl.Int64Var(&f.RetentionBytes, "retention-bytes", 0, "keep at most this many bytes per topic, dropping the oldest (default: no bound)")
	fl.StringVar(&f.PruneEvery, "prune-every", "", "how often retention runs (default 1m)")
	fl.IntVar(&f.ConnsPerAddr, "conns-per-addr", 0, fmt.Sprintf("open connections from one client address (default %d)", relay.DefaultConnsPerAddr))
	fl.IntVar(&f.ReadsPerAddr, "reads-per-addr", 0, fmt.Sprintf("reads at once from one client address (default %d)", relay.DefaultReadsPerAddr))
	fl.IntVar(&f.AppendsPerAddr, "appends-per-addr", 0, fmt.Sprintf("appends at once from one client address (default %d)", relay.DefaultAppendsPerAddr))
	fl.IntVar(&f.SubsPerAddr, "subs-per-addr", 0, fmt.Sprintf("live subscriptions from one client address (default %d)", relay.DefaultSubsPerAddr))
	fl.Float64Var(&f.NewTopicsPerHour, "new-topics-per-hour", 0, fmt.Sprintf("topics one client address may create per hour (default %d)", relay.DefaultNewTopicsPerHour))
	fl.IntVar(&f.MaxReads, "max-reads", 0, fmt.Sprintf("reads at once in all (default %d)", relay.DefaultMaxReads))
	fl.Int64Var(&f.AppendMemory, "append-memory", 0, fmt.Sprintf("bytes of append bodies held at once in all (default %d MiB)", relay.DefaultAppendMemory>>20))
	fl.Int64Var(&f.HubBytes, "live-cache-bytes", 0, fmt.Sprintf("bytes of recent entries kept for live subscribers (default %d MiB)", relay.DefaultHubBytes>>20))
	fl.Int64Var(&f.HubTopicBytes, "live-cache-topic-bytes", 0, fmt.Sprintf("of which for one topic (default %d MiB)", relay.DefaultHubTopicBytes>>20))
	fl.Int64Var(&f.TopicQuota, "topic-quota", 0, fmt.Sprintf("envelope bytes one topic may hold (default %d GiB; -1: no bound)", relay.DefaultTopicQuota>>30))
	fl.Int64Var(&f.StoreQuota, "store-quota", 0, "envelope bytes all topics may hold (default: no bound)")
	fl.Int64Var(&f.BlobTopicQuota, "blob-topic-quota", 0, fmt.Sprintf("bytes of attachment blobs one topic may hold (default %d GiB; -1: no bound)", relay.DefaultBlobTopicQuota>>30))
	fl.Int64Var(&f.BlobStoreQuota, "blob-store-quota", 0, "bytes of attachment blobs the relay may hold in all (default: no bound)")
	fl.Int64Var(&f.MinFree, "min-free", 0, fmt.Sprintf("bytes to keep free on the data directory's disk (default %d GiB; -1: do not check)", relay.DefaultMinFree>>30))
	fl.StringSliceVar(&f.TrustedProxies, "trusted-proxy", nil, "a proxy (`ADDR or CIDR`; repeat, or separate with commas) whose X-Forwarded-For names the client (default: none, the header is ignored)")
	fl.Int64Var(&f.MemoryLimit, "memory-limit", 0, "a soft limit on the relay's memory in bytes, as GOMEMLIMIT (default: none)")
	fl.StringVar(&f.LogFormat, "log-format", "", "text or json (default text)")
	fl.StringVar(&f.LogLevel, "log-level", "", "debug, info, warn or error (default info)")
	fl.BoolVar(&f.Onion, "onion", false, "also publish the relay as a Tor onion service (its key kept in the data directory: a stable address); prints its http://….onion URL once reachable")
	fl.BoolVar(&f.OnionOnly, "onion-only", false, "publish the relay as an onion service only: no clear-net listener")
	fl.StringVar(&f.TorCtl, "tor-control", "", "with --onion, use the running tor whose control port is at `ADDR` (HOST:PORT or unix:/path) instead of starting one")
	fl.BoolVar(&f.Directory, "directory", false, "list the public profiles this relay holds in its directory (GET /directory?q=words; docs/directory.md)")
	fl.IntVar(&f.KnockWork, "knock-work", 0, fmt.Sprintf("proof of work a join request needs, in bits (default %d; -1: none)", relay.DefaultKnockWork))
	fl.Float64Var(&f.KnocksPerHour, "knocks-per-hour", 0, fmt.Sprintf("join requests one client address may send per hour (default %d)", relay.DefaultKnocksPerHour))
	fl.StringVar(&f.TLSCert, "tls-cert", "", "serve HTTPS with the certificate chain in `FILE` (PEM; reloaded when it changes)")
	fl.StringVar(&f.TLSKey, "tls-key", "", "the private key of --tls-cert, in `FILE` (PEM)")
	fl.StringSliceVar(&f.ACMEDomains, "acme-domain", nil, "serve HTTPS with a certificate for `NAME` obtained and renewed by ACME (Let's Encrypt unless --acme-directory); repeat for more names")
	fl.StringVar(&f.ACMEEmail, "acme-email", "", "with --acme-domain, the `ADDRESS` the certificate authority may write to about the certificates")
	fl.StringVar(&f.ACMECache, "acme-cache", "", "with --acme-domain, where to keep the account key and certificates (`DIR`; default DATA/acme)")
	fl.StringVar(&f.ACMEDirectory, "acme-directory", "", "with --acme-domain, the ACME directory `URL` of the certificate authority (default Let's Encrypt's)")
	fl.StringVar(&f.ACMEHTTP, "acme-http", "", "with --acme-domain, also answer ACME HTTP-01 challenges on `ADDR` (port 80), redirecting other requests to https (default: TLS-ALPN-01 on --listen, which must then be port 443)")
	return cmd
}

// mergeRelayFile fills the settings not given as flags from the file.
func mergeRelayFile(cmd *cobra.Command, f *relayFile, file relayFile) {
	keep(cmd, "listen", &f.Listen, file.Listen)
	keep(cmd, "data", &f.Data, file.Data)
	keep(cmd, "store", &f.Store, file.Store)
	keep(cmd, "conn-rate", &f.ConnRate, file.ConnRate)
	keep(cmd, "topic-rate", &f.TopicRate, file.TopicRate)
	keep(cmd, "max-connections", &f.MaxConnections, file.MaxConnections)
	keep(cmd, "max-body", &f.MaxBody, file.MaxBody)
	keep(cmd, "retention-age", &f.RetentionAge, file.RetentionAge)
	keep(cmd, "retention-bytes", &f.RetentionBytes, file.RetentionBytes)
	keep(cmd, "prune-every", &f.PruneEvery, file.PruneEvery)
	keep(cmd, "log-format", &f.LogFormat, file.LogFormat)
	keep(cmd, "log-level", &f.LogLevel, file.LogLevel)
	keep(cmd, "conns-per-addr", &f.ConnsPerAddr, file.ConnsPerAddr)
	keep(cmd, "reads-per-addr", &f.ReadsPerAddr, file.ReadsPerAddr)
	keep(cmd, "appends-per-addr", &f.AppendsPerAddr, file.AppendsPerAddr)
	keep(cmd, "subs-per-addr", &f.SubsPerAddr, file.SubsPerAddr)
	keep(cmd, "new-topics-per-hour", &f.NewTopicsPerHour, file.NewTopicsPerHour)
	keep(cmd, "max-reads", &f.MaxReads, file.MaxReads)
	keep(cmd, "append-memory", &f.AppendMemory, file.AppendMemory)
	keep(cmd, "live-cache-bytes", &f.HubBytes, file.HubBytes)
	keep(cmd, "live-cache-topic-bytes", &f.HubTopicBytes, file.HubTopicBytes)
	keep(cmd, "topic-quota", &f.TopicQuota, file.TopicQuota)
	keep(cmd, "store-quota", &f.StoreQuota, file.StoreQuota)
	keep(cmd, "min-free", &f.MinFree, file.MinFree)
	keep(cmd, "blob-topic-quota", &f.BlobTopicQuota, file.BlobTopicQuota)
	keep(cmd, "blob-store-quota", &f.BlobStoreQuota, file.BlobStoreQuota)
	keep(cmd, "trusted-proxy", &f.TrustedProxies, file.TrustedProxies)
	keep(cmd, "memory-limit", &f.MemoryLimit, file.MemoryLimit)
	keep(cmd, "onion", &f.Onion, file.Onion)
	keep(cmd, "onion-only", &f.OnionOnly, file.OnionOnly)
	keep(cmd, "tor-control", &f.TorCtl, file.TorCtl)
	keep(cmd, "directory", &f.Directory, file.Directory)
	keep(cmd, "knock-work", &f.KnockWork, file.KnockWork)
	keep(cmd, "knocks-per-hour", &f.KnocksPerHour, file.KnocksPerHour)
	keep(cmd, "tls-cert", &f.TLSCert, file.TLSCert)
	keep(cmd, "tls-key", &f.TLSKey, file.TLSKey)
	keep(cmd, "acme-domain", &f.ACMEDomains, file.ACMEDomains)
	keep(cmd, "acme-email", &f.ACMEEmail, file.ACMEEmail)
	keep(cmd, "acme-cache", &f.ACMECache, file.ACMECache)
	keep(cmd, "acme-directory", &f.ACMEDirectory, file.ACMEDirectory)
	keep(cmd, "acme-http", &f.ACMEHTTP, file.ACMEHTTP)
}

// keep sets *v to the file's value unless the flag was given.
func keep[T any](cmd *cobra.Command, name string, v *T, file T) {
	if !cmd.Flags().Changed(name) {
		*v = file
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

// parsePrefix parses a trusted proxy: a CIDR prefix or one address.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkRelayLimits refuses limits that cannot be meant.
func checkRelayLimits(f relayFile) error {
	for name, v := range map[string]int64{"conns-per-addr": int64(f.ConnsPerAddr), "reads-per-addr": int64(f.ReadsPerAddr),
		"appends-per-addr": int64(f.AppendsPerAddr), "subs-per-addr": int64(f.SubsPerAddr), "max-reads": int64(f.MaxReads),
		"append-memory": f.AppendMemory, "live-cache-bytes": f.HubBytes, "live-cache-topic-bytes": f.HubTopicBytes,
		"max-connections": int64(f.MaxConnections), "max-body": f.MaxBody} {
		if v < 0 {
			return usageErrorf("--%s must be positive (0: the default)", name)
		}
	}
	if f.NewTopicsPerHour < 0 {
		return usageErrorf("--new-topics-per-hour must be positive (0: the default)")
	}
	if f.MemoryLimit < 0 {
		return usageErrorf("--memory-limit must be a number of bytes (0: none)")
	}
	for name, v := range map[string]int64{"topic-quota": f.TopicQuota, "store-quota": f.StoreQuota, "min-free": f.MinFree, "blob-topic-quota": f.BlobTopicQuota, "blob-store-quota": f.BlobStoreQuota} {
		if v < -1 {
			return usageErrorf("--%s must be a number of bytes, 0 for the default or -1 for no bound", name)
		}
	}
	return nil
}
