package relay

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/profile"
)

// Config is a relay's limits and plumbing. The zero value of a limit means
// its default (docs/relay.md, "Settings", which also says what a client is
// answered at each limit).
type Config struct {
	// ConnRate and TopicRate bound appended envelopes per second, per
	// connection and per topic (token buckets with a burst of twice that).
	ConnRate, TopicRate float64
	// MaxConnections bounds open connections; more wait to be accepted.
	MaxConnections int
	// MaxBody bounds an append's body.
	MaxBody int64
	// Retention bounds what each topic keeps; PruneEvery is how often it
	// is applied.
	Retention  Retention
	PruneEvery time.Duration

	// Per client address (an IPv4 address, or an IPv6 /64): open
	// connections, reads and appends in progress, live subscriptions,
	// and topics created per hour.
	ConnsPerAddr, ReadsPerAddr, AppendsPerAddr, SubsPerAddr int
	NewTopicsPerHour                                        float64
	// MaxReads bounds reads in progress (live subscribers catching up
	// from the store included), AppendMemory the bytes of append bodies
	// held at once; more wait up to 2 s, then are answered 503.
	MaxReads     int
	AppendMemory int64
	// HubBytes and HubTopicBytes bound the live cache of recent entries,
	// in all and per topic.
	HubBytes, HubTopicBytes int64
	// TopicQuota bounds a topic's envelope bytes and StoreQuota all
	// topics' (-1: no bound); MinFree is the space kept free on DataDir's
	// file system (-1: not checked; no DataDir: not checked).
	TopicQuota, StoreQuota, MinFree int64
	DataDir                         string
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client address (none: the header is ignored).
	TrustedProxies []netip.Prefix

	// Logger receives structured logs; nil: slog.Default().
	Logger *slog.Logger
	// Registry receives the metrics; nil: a new one, served on /metrics,
	// with the Go runtime's, the process's and pursuance_build_info.
	Registry *prometheus.Registry
	// Admit, when set, is asked about each envelope of an append; those
	// it refuses are not stored (the answer counts them as refused). A
	// member's node embeds a relay that stores only what opens to events
	// its member may need (app.Admitter); a public relay leaves it nil.
	// It must be safe for concurrent use, and keep no reference to
	// envelope (its memory is reused).
	Admit func(topic keys.Topic, envelope []byte) bool

	// Directory lists the public profiles the relay holds (GET
	// /v1/directory, /directory): the operator's opt-in. Profile records
	// and knocks are taken either way (directory.go).
	Directory bool
	// MaxProfiles bounds the profile keys held; KnockWork is the proof of
	// work asked of a knock, in bits (-1: none); KnocksPerHour bounds the
	// knocks of one client address; KnockQuota the bytes of one
	// profile's knock topic.
	MaxProfiles   int
	KnockWork     int
	KnocksPerHour float64
	KnockQuota    int64
}

// Defaults of Config.
const (
	DefaultConnRate         = 20_000
	DefaultTopicRate        = 50_000
	DefaultMaxConnections   = 4096
	DefaultPruneEvery       = time.Minute
	DefaultConnsPerAddr     = 256
	DefaultReadsPerAddr     = 4
	DefaultAppendsPerAddr   = 8
	DefaultSubsPerAddr      = 256
	DefaultNewTopicsPerHour = 256
	DefaultMaxReads         = 64
	DefaultAppendMemory     = 32 << 20
	DefaultHubBytes         = 32 << 20
	DefaultHubTopicBytes    = 4 << 20
	DefaultTopicQuota       = 1 << 30
	DefaultMinFree          = 1 << 30
)

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def64 := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	if c.ConnRate == 0 {
		c.ConnRate = DefaultConnRate
	}
	if c.TopicRate == 0 {
		c.TopicRate = DefaultTopicRate
	}
	def(&c.MaxConnections, DefaultMaxConnections)
	def64(&c.MaxBody, MaxBatchSize)
	if c.PruneEvery == 0 {
		c.PruneEvery = DefaultPruneEvery
	}
	def(&c.ConnsPerAddr, DefaultConnsPerAddr)
	def(&c.ReadsPerAddr, DefaultReadsPerAddr)
	def(&c.AppendsPerAddr, DefaultAppendsPerAddr)
	def(&c.SubsPerAddr, DefaultSubsPerAddr)
	if c.NewTopicsPerHour == 0 {
		c.NewTopicsPerHour = DefaultNewTopicsPerHour
	}
	def(&c.MaxReads, DefaultMaxReads)
	def64(&c.AppendMemory, DefaultAppendMemory)
	c.AppendMemory = max(c.AppendMemory, c.MaxBody) // one append of the largest body fits
	def64(&c.HubBytes, DefaultHubBytes)
	def64(&c.HubTopicBytes, DefaultHubTopicBytes)
	def64(&c.TopicQuota, DefaultTopicQuota)
	def64(&c.MinFree, DefaultMinFree)
	def(&c.MaxProfiles, DefaultMaxProfiles)
	switch {
	case c.KnockWork == 0:
		c.KnockWork = DefaultKnockWork
	case c.KnockWork < 0:
		c.KnockWork = 0
	}
	c.KnockWork = min(c.KnockWork, profile.MaxStampBits)
	if c.KnocksPerHour == 0 {
		c.KnocksPerHour = DefaultKnocksPerHour
	}
	def64(&c.KnockQuota, DefaultKnockQuota)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	return c
}
