package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pursuance/pursuance/keys"
)

// Fixed limits.
const (
	maxReadBytes     = 16 << 20 // envelope bytes of one read answer
	readPageBytes    = 1 << 20  // of a read answer taken from the store at a time: a page holds one envelope of the largest size anyway
	liveMessageBytes = 256 << 10
	writeTimeout     = 15 * time.Second // to hand one page or message to a slow client
	busyWait         = 2 * time.Second  // for a relay-wide limit, before a 503
	maxRateTopics    = 1 << 16          // per-topic rate buckets kept
)

// Server serves the relay protocol over a Store.
type Server struct {
	st      Store
	cfg     Config
	log     *slog.Logger
	hub     *hub
	mux     *http.ServeMux
	h       http.Handler // mux, with the instance header on every answer
	m       metrics
	now     func() time.Time
	mu      sync.Mutex
	rate    map[keys.Topic]*bucket // per topic
	clients *clients
	appends *budget // bytes of append bodies
	reads   *budget // reads in progress
	disk    diskCheck
	logs    *bucket // refusals logged per second
	quiet   atomic.Int64
	upMu    sync.Mutex
	uploads map[*upload]struct{} // append bodies being read
	// writeTimeout is how long a client may take to take one page of a
	// read or one live message (writeTimeout; tests shorten it).
	writeTimeout time.Duration
	dir          directory // public profiles (directory.go)
}

// NewServer makes a server over st. It feeds live subscribers from st's
// commits, so st must not be shared with another server.
func NewServer(st Store, cfg Config) *Server {
	ownRegistry := cfg.Registry == nil
	cfg = cfg.withDefaults()
	s := &Server{st: st, cfg: cfg, log: cfg.Logger, hub: newHub(cfg.HubBytes, cfg.HubTopicBytes), now: time.Now, rate: map[keys.Topic]*bucket{}, uploads: map[*upload]struct{}{}, writeTimeout: writeTimeout}
	var limits [numHoldings]int
	limits[holdConn], limits[holdRead], limits[holdAppend], limits[holdSub] = cfg.ConnsPerAddr, cfg.ReadsPerAddr, cfg.AppendsPerAddr, cfg.SubsPerAddr
	s.clients = newClients(max(maxTrackedAddrs, 2*cfg.MaxConnections), cfg.NewTopicsPerHour, limits)
	s.appends = newBudget(cfg.AppendMemory)
	s.reads = newBudget(int64(cfg.MaxReads))
	s.logs = newBucket(refusalLogRate, s.now())
	if cfg.DataDir != "" && cfg.MinFree > 0 {
		s.disk.dir, s.disk.stat = cfg.DataDir, diskFree
	}
	s.m = newMetrics(cfg.Registry, s)
	if ownRegistry {
		registerProcess(cfg.Registry) // a registry given is the caller's to fill
	}
	st.OnCommit(s.hub.publish)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, rootText)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1", s.info)
	mux.HandleFunc("POST /v1/topics/{topic}", s.appendHandler)
	mux.HandleFunc("GET /v1/topics/{topic}", s.readHandler)
	mux.HandleFunc("GET /v1/topics/{topic}/live", s.liveHandler)
	mux.HandleFunc("PUT /v1/profiles/{key}", s.putProfile)
	mux.HandleFunc("GET /v1/profiles/{key}", s.getProfile)
	mux.HandleFunc("GET /v1/profiles", s.profilesOf)
	mux.HandleFunc("GET /v1/directory", s.directoryHandler)
	mux.HandleFunc("GET /directory", s.directoryHandler)
	mux.HandleFunc("POST /v1/knocks/{key}", s.knockHandler)
	mux.HandleFunc("PUT /v1/blobs/{id}", s.putBlob)
	mux.HandleFunc("GET /v1/blobs/{id}", s.getBlob)
	mux.HandleFunc("POST /v1/blobs/have", s.haveBlobs)
	s.mux = mux
	instance := st.Instance()
	s.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderInstance, instance)
		mux.ServeHTTP(w, r)
	})
	return s
}

// rootText is what GET / answers: a person who opens the relay's URL in a
// browser learns what it is.
const rootText = "This is a Pursuance relay: it carries sealed envelopes for Pursuance clients (protocol /v1); it is not a web page.\n"

// Handler returns the HTTP handler of the protocol.
func (s *Server) Handler() http.Handler { return s.h }

// Serve serves on ln until ctx ends (over TLS, with HTTP/2, where ln or a
// listener merged into it is a TLSListener), then stops gracefully: it stops
// accepting, ends live streams, and waits (up to 10 s) for requests in
// flight, whose appends are durable before they are answered.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ln = tlsStarter{s.limitListener(ln)} // TLS for TLSListener's connections
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	hs := &http.Server{
		Handler:           s.h,
		ReadHeaderTimeout: 10 * time.Second, // slowloris
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, newBucket(s.cfg.ConnRate, s.now()))
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),

		// An answer within writeTimeout of its request (a read's answer
		// and an append's acknowledgement extend it, a live stream clears
		// it); each request sets it anew.
		WriteTimeout: s.writeTimeout,
	}
	go s.pruneLoop(base)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("relay stopping")
	cancel() // ends live streams
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		hs.Close()
	}
	return nil
}

func (s *Server) pruneLoop(ctx context.Context) {
	if s.cfg.Retention == (Retention{}) {
		return
	}
	t := time.NewTicker(s.cfg.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.st.Prune(ctx, s.now(), s.cfg.Retention)
			if err != nil {
				s.log.Error("prune", "err", err)
				continue
			}
			if n > 0 {
				s.m.pruned.Add(float64(n))
				s.log.Info("pruned", "envelopes", n)
			}
			s.pruneBlobs(ctx)
		}
	}
}

// pruneBlobs drops the blobs last put longer ago than the retention age,
// when the relay keeps blobs in a store that can (docs/attachments.md).
func (s *Server) pruneBlobs(ctx context.Context) {
	if s.cfg.Retention.MaxAge <= 0 || s.cfg.Blobs != nil {
		return // a member's node serves its home's cache: never pruned here
	}
	bp, ok := s.st.(BlobPruner)
	if !ok {
		return
	}
	n, bytes, err := bp.PruneBlobs(ctx, s.now().Add(-s.cfg.Retention.MaxAge))
	if err != nil {
		s.log.Error("prune blobs", "err", err)
		return
	}
	if n > 0 {
		s.m.blobsPruned.Add(float64(n))
		s.log.Info("pruned", "blobs", n, "bytes", bytes)
	}
}

type connKey struct{}

// Info is what GET /v1 answers: the protocol and the relay's limits.
type Info struct {
	Protocol    int   `json:"protocol"`
	MaxBatch    int   `json:"max_batch"`
	MaxBody     int64 `json:"max_body"`
	Envelopes   []int `json:"envelope_sizes"`
	MaxReadSize int   `json:"max_read_limit"`
	// Directory: the relay lists public profiles; KnockWork: the proof
	// of work (bits) a knock needs.
	Directory bool `json:"directory"`
	KnockWork int  `json:"knock_work"`
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Info{Protocol: Version, MaxBatch: MaxBatch, MaxBody: s.cfg.MaxBody, Envelopes: keys.Buckets(), MaxReadSize: MaxReadLimit, Directory: s.cfg.Directory, KnockWork: s.cfg.KnockWork})
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// fail answers a refusal: status, and err's text as the JSON error, except
// for a failure of the relay itself (500), whose detail (a store's or a
// driver's text) goes to the log only.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, reason string, err error) {
	s.refused(reason)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = "the relay failed to serve this request (its operator's log says why); nothing was acknowledged; retry later"
	}
	if status >= 500 && status != http.StatusServiceUnavailable && status != http.StatusInsufficientStorage {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "reason", reason, "err", err)
	} else {
		s.logLimited("request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "reason", reason, "err", err)
	}
	writeJSON(w, status, apiError{Error: msg})
}

// logLimited logs at level info what any client can cause (a refusal, a
// dropped subscriber), at most refusalLogRate lines a second: an
// attacker's would fill the disk otherwise. The next line logged says how
// many were not.
func (s *Server) logLimited(msg string, args ...any) {
	if !s.logs.take(s.now(), 1) {
		s.quiet.Add(1)
		return
	}
	if n := s.quiet.Swap(0); n > 0 {
		args = append(args, "unlogged", n)
	}
	s.log.Info(msg, args...)
}

// refusalLogRate is how many lines a second logLimited logs (burst twice).
const refusalLogRate = 20

// refused counts a refusal.
func (s *Server) refused(reason string) { s.m.rejected.WithLabelValues(reason).Inc() }

func (s *Server) appendHandler(w http.ResponseWriter, r *http.Request) {
	topic, err := ParseTopic(r.PathValue("topic"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "topic", err)
		return
	}
	envs, release, ok := s.readAppend(w, r, topic)
	if !ok {
		return
	}
	recycle := true // the envelopes, unless a failed store may still hold them
	defer func() { release(recycle) }()
	now := s.now()
	if b, ok := r.Context().Value(connKey{}).(*bucket); ok && !b.take(now, len(envs)) {
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusTooManyRequests, "conn_rate", fmt.Errorf("over %g envelopes/s on this connection", s.cfg.ConnRate))
		return
	}
	if !s.topicBucket(topic, now).take(now, len(envs)) {
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusTooManyRequests, "topic_rate", fmt.Errorf("over %g envelopes/s on this topic", s.cfg.TopicRate))
		return
	}
	refused := 0
	var admitted []bool // by position in the batch, when some were refused
	if s.cfg.Admit != nil {
		admitted = make([]bool, len(envs))
		kept := make([][]byte, 0, len(envs))
		for i, e := range envs {
			if admitted[i] = s.cfg.Admit(topic, e); admitted[i] {
				kept = append(kept, e)
			}
		}
		refused, envs = len(envs)-len(kept), kept
		if refused > 0 {
			s.m.rejected.WithLabelValues("not_admitted").Add(float64(refused))
		}
		if len(envs) == 0 {
			// Nothing to store: answer with the topic's last cursor as it is.
			page, err := s.st.Read(r.Context(), topic, 1<<62, 1, 1) // past any cursor: only Last
			if err != nil {
				s.fail(w, r, http.StatusInternalServerError, "store", errors.New("the relay's store failed; retry"))
				return
			}
			writeJSON(w, http.StatusOK, AppendResult{Refused: refused, Last: page.Last, Cursors: make([]uint64, refused)})
			return
		}
	}
	if !s.checkQuotas(w, r, topic, envs) {
		return
	}
	start := time.Now()
	res, err := s.st.Append(r.Context(), topic, envs)
	if err != nil {
		recycle = false
		if errors.Is(err, ErrClosed) {
			w.Header().Set("Retry-After", "5")
			s.fail(w, r, http.StatusServiceUnavailable, "closed", errors.New("the relay is stopping; retry later"))
			return
		}
		s.fail(w, r, http.StatusInternalServerError, "store", err)
		return
	}
	if refused > 0 {
		// Cursors by position in the batch as sent: 0 for a refused one.
		all := make([]uint64, len(admitted))
		k := 0
		for i, ok := range admitted {
			if ok && k < len(res.Cursors) {
				all[i] = res.Cursors[k]
				k++
			}
		}
		res.Refused, res.Cursors = refused, all
	}
	s.m.appendSeconds.Observe(time.Since(start).Seconds())
	s.m.stored.Add(float64(res.Stored))
	s.m.duplicates.Add(float64(res.Duplicates))
	for _, e := range envs {
		s.m.bytes.Add(float64(len(e)))
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) topicBucket(t keys.Topic, now time.Time) *bucket {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.rate[t]
	if b == nil {
		if len(s.rate) >= maxRateTopics {
			// Bounded memory: a full bucket carries nothing, so drop those;
			// if every topic is busy, all (they refill within 2 s anyway).
			for t, b := range s.rate {
				if b.full(now) {
					delete(s.rate, t)
				}
			}
			if len(s.rate) >= maxRateTopics {
				clear(s.rate)
			}
		}
		b = newBucket(s.cfg.TopicRate, now)
		s.rate[t] = b
	}
	return b
}

// cursorParams reads after= and limit= of a read.
func cursorParams(r *http.Request) (after uint64, limit int, err error) {
	if v := r.URL.Query().Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil || after > MaxCursor {
			return 0, 0, fmt.Errorf("%w: bad cursor %.40q (0 to %d)", ErrFrame, v, uint64(MaxCursor))
		}
	}
	limit = DefaultLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxReadLimit {
			return 0, 0, fmt.Errorf("%w: limit must be 1 to %d", ErrFrame, MaxReadLimit)
		}
		limit = n
	}
	return after, limit, nil
}

// Response headers of a read; HeaderInstance is on every answer.
const (
	HeaderLast     = "Pursuance-Relay-Last"
	HeaderFirst    = "Pursuance-Relay-First"
	HeaderInstance = "Pursuance-Relay-Instance"
)

func (s *Server) readHandler(w http.ResponseWriter, r *http.Request) {
	topic, err := ParseTopic(r.PathValue("topic"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "topic", err)
		return
	}
	after, limit, err := cursorParams(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "params", err)
		return
	}
	release, ok := s.admitRead(w, r)
	if !ok {
		return
	}
	defer release()
	s.writeRead(w, r, topic, after, limit)
}
