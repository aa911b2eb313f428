package relay

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pursuance/pursuance/internal/buildinfo"
)

// registerProcess adds to reg what an operator watches of any Go service
// (docs/operating.md, "Monitoring"): the Go runtime's metrics (go_*), the
// process's (process_*: CPU, RSS, open files; on Linux), and
// pursuance_build_info, 1 with the build's version, commit and Go as
// labels.
func registerProcess(reg *prometheus.Registry) {
	in := buildinfo.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pursuance_build_info",
		Help:        "The running build: always 1, with its version, commit and Go toolchain as labels.",
		ConstLabels: prometheus.Labels{"version": in.Version, "commit": in.Commit, "goversion": in.Go}})
	build.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), build)
}

type metrics struct {
	stored, duplicates, bytes, read, delivered, pruned, blobsPruned prometheus.Counter
	rejected                                                        *prometheus.CounterVec
	appendSeconds                                                   prometheus.Histogram
}

func newMetrics(reg *prometheus.Registry, s *Server) metrics {
	c := func(name, help string) prometheus.Counter {
		m := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "pursuance_relay", Name: name, Help: help})
		reg.MustRegister(m)
		return m
	}
	m := metrics{
		stored:      c("envelopes_stored_total", "Envelopes appended and made durable."),
		duplicates:  c("envelopes_duplicate_total", "Envelopes appended that the topic already held (replays)."),
		bytes:       c("append_bytes_total", "Envelope bytes received in accepted appends."),
		read:        c("envelopes_read_total", "Envelopes served by reads."),
		delivered:   c("envelopes_delivered_total", "Envelopes sent to live subscribers."),
		pruned:      c("envelopes_pruned_total", "Envelopes dropped by retention."),
		blobsPruned: c("blobs_pruned_total", "Blobs dropped by retention (their last put older than the retention age)."),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "pursuance_relay", Name: "requests_refused_total",
			Help: "Requests refused, by reason."}, []string{"reason"}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "pursuance_relay", Name: "append_seconds",
			Help: "Time from a decoded append to its durable commit.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	reg.MustRegister(m.rejected, m.appendSeconds)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "pursuance_relay", Name: "subscribers",
		Help: "Open live subscriptions."}, func() float64 { return float64(s.hub.subscribers()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "pursuance_relay", Name: "live_cache_bytes",
		Help: "Bytes the live cache holds (recent entries, and those being sent)."}, func() float64 { return float64(s.hub.held()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "pursuance_relay", Name: "client_addresses",
		Help: "Client addresses the per-address limits track."}, func() float64 { return float64(s.clients.size()) }))
	return m
}
