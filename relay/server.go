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
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pursuance/pursuance/keys"
)

// Config is a relay's limits and plumbing. The zero value of a limit means
// its default (docs/relay.md).
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
	// Logger receives structured logs; nil: slog.Default().
	Logger *slog.Logger
	// Registry receives the metrics; nil: a new one, served on /metrics.
	Registry *prometheus.Registry
	// Admit, when set, is asked about each envelope of an append; those
	// it refuses are not stored (the answer counts them as refused). A
	// member's node embeds a relay that stores only what opens to events
	// its member may need (app.Admitter); a public relay leaves it nil.
	// It must be safe for concurrent use.
	Admit func(topic keys.Topic, envelope []byte) bool
}

// Defaults of Config.
const (
	DefaultConnRate       = 20_000
	DefaultTopicRate      = 50_000
	DefaultMaxConnections = 4096
	DefaultPruneEvery     = time.Minute
	maxReadBytes          = 16 << 20
	liveMessageBytes      = 256 << 10
	recentPerTopic        = 2048
	writeTimeout          = 15 * time.Second
)

func (c Config) withDefaults() Config {
	if c.ConnRate == 0 {
		c.ConnRate = DefaultConnRate
	}
	if c.TopicRate == 0 {
		c.TopicRate = DefaultTopicRate
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxBody == 0 {
		c.MaxBody = MaxBatchSize
	}
	if c.PruneEvery == 0 {
		c.PruneEvery = DefaultPruneEvery
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	return c
}

// Server serves the relay protocol over a Store.
type Server struct {
	st   Store
	cfg  Config
	log  *slog.Logger
	hub  *hub
	mux  *http.ServeMux
	h    http.Handler // mux, with the instance header on every answer
	m    metrics
	now  func() time.Time
	mu   sync.Mutex
	rate map[keys.Topic]*bucket // per topic
}

// NewServer makes a server over st. It feeds live subscribers from st's
// commits, so st must not be shared with another server.
func NewServer(st Store, cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{st: st, cfg: cfg, log: cfg.Logger, hub: newHub(), now: time.Now, rate: map[keys.Topic]*bucket{}}
	s.m = newMetrics(cfg.Registry, s.hub)
	st.OnCommit(s.hub.publish)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1", s.info)
	mux.HandleFunc("POST /v1/topics/{topic}", s.appendHandler)
	mux.HandleFunc("GET /v1/topics/{topic}", s.readHandler)
	mux.HandleFunc("GET /v1/topics/{topic}/live", s.liveHandler)
	s.mux = mux
	instance := st.Instance()
	s.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderInstance, instance)
		mux.ServeHTTP(w, r)
	})
	return s
}

// Handler returns the HTTP handler of the protocol.
func (s *Server) Handler() http.Handler { return s.h }

// Serve serves on ln until ctx ends, then stops gracefully: it stops
// accepting, ends live streams, and waits (up to 10 s) for requests in
// flight, whose appends are durable before they are answered.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ln = limitListener(ln, s.cfg.MaxConnections)
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
		}
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
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Info{Protocol: Version, MaxBatch: MaxBatch, MaxBody: s.cfg.MaxBody, Envelopes: keys.Buckets(), MaxReadSize: MaxReadLimit})
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

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, reason string, err error) {
	s.m.rejected.WithLabelValues(reason).Inc()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "reason", reason, "err", err)
	writeJSON(w, status, apiError{Error: err.Error()})
}

func (s *Server) appendHandler(w http.ResponseWriter, r *http.Request) {
	topic, err := ParseTopic(r.PathValue("topic"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "topic", err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("append body over %d bytes", s.cfg.MaxBody))
			return
		}
		s.fail(w, r, http.StatusBadRequest, "read", err)
		return
	}
	envs, err := DecodeAppend(topic, body)
	switch {
	case errors.Is(err, ErrUnauthorized):
		s.fail(w, r, http.StatusForbidden, "unauthorized", err)
		return
	case err != nil:
		s.fail(w, r, http.StatusBadRequest, "malformed", err)
		return
	}
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
	start := time.Now()
	res, err := s.st.Append(r.Context(), topic, envs)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrClosed) {
			status = http.StatusServiceUnavailable
		}
		s.fail(w, r, status, "store", err)
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
		if len(s.rate) > 100_000 {
			clear(s.rate) // bounded memory; buckets refill anyway
		}
		b = newBucket(s.cfg.TopicRate, now)
		s.rate[t] = b
	}
	return b
}

// cursorParams reads after= and limit= of a read.
func cursorParams(r *http.Request) (after uint64, limit int, err error) {
	if v := r.URL.Query().Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("%w: bad cursor %q", ErrFrame, v)
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
	res, err := s.st.Read(r.Context(), topic, after, limit, maxReadBytes)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "store", err)
		return
	}
	size := 0
	for _, e := range res.Entries {
		size += len(e.Envelope) + 2*10
	}
	out := make([]byte, 0, size)
	for _, e := range res.Entries {
		out = AppendEntry(out, e)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(HeaderLast, strconv.FormatUint(res.Last, 10))
	w.Header().Set(HeaderFirst, strconv.FormatUint(res.First, 10))
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
	s.m.read.Add(float64(len(res.Entries)))
}

func (s *Server) liveHandler(w http.ResponseWriter, r *http.Request) {
	topic, err := ParseTopic(r.PathValue("topic"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "topic", err)
		return
	}
	after, _, err := cursorParams(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "params", err)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Info("websocket refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	ctx := c.CloseRead(r.Context()) // the client sends nothing; its close ends ctx
	sub := s.hub.subscribe(topic)
	defer s.hub.unsubscribe(topic, sub)
	err = s.stream(ctx, c, topic, after, sub)
	if ctx.Err() != nil {
		c.Close(websocket.StatusGoingAway, "relay stopping or client gone")
		return
	}
	s.log.Info("live stream ended", "remote", r.RemoteAddr, "err", err)
	c.Close(websocket.StatusInternalError, "stream ended")
}

// stream sends a topic's entries after cursor, then every new one, as
// binary messages of entry frames. A caught-up subscriber sends the
// messages the hub encoded once for all.
func (s *Server) stream(ctx context.Context, c *websocket.Conn, topic keys.Topic, cursor uint64, sub *subscriber) error {
	var msg []byte
	send := func(data []byte, n int, last uint64) error {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		err := c.Write(wctx, websocket.MessageBinary, data)
		cancel()
		if err != nil {
			return fmt.Errorf("a slow or gone subscriber: %w", err)
		}
		s.m.delivered.Add(float64(n))
		cursor = last
		return nil
	}
	for {
		if msgs, ok := s.hub.since(topic, cursor); ok {
			if len(msgs) == 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-sub.notify:
					continue
				}
			}
			for _, m := range msgs {
				if err := send(m.data, len(m.entries), m.entries[len(m.entries)-1].Cursor); err != nil {
					return err
				}
			}
			continue
		}
		res, err := s.st.Read(ctx, topic, cursor, MaxReadLimit, liveMessageBytes)
		if err != nil {
			return err
		}
		if len(res.Entries) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-sub.notify:
				continue
			}
		}
		entries := res.Entries
		for len(entries) > 0 {
			msg = msg[:0]
			n := 0
			for n < len(entries) && (n == 0 || len(msg)+len(entries[n].Envelope) <= liveMessageBytes) {
				msg = AppendEntry(msg, entries[n])
				n++
			}
			if err := send(msg, n, entries[n-1].Cursor); err != nil {
				return err
			}
			entries = entries[n:]
		}
	}
}
