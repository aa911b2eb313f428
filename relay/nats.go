package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pursuance/pursuance/keys"
)

// NATS is a relay store on a NATS JetStream cluster (docs/relay.md,
// "A relay cluster on NATS JetStream"). Every topic is a set of subjects
// of one file-backed stream, replicated (3 ways by default), and a
// topic's cursors are the stream sequences of its entries: they rise, and
// skip the numbers other topics took. An append is answered once the
// stream's leader has acknowledged it, that is once a quorum of servers
// stored it. Any number of NATS stores (one per relay front) may share
// one stream: each feeds its server's live subscribers from a JetStream
// consumer of the whole stream, so a subscriber on one front sees what
// was appended through another.
type NATS struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   string
	prefix   string // of every subject: prefix.TOPICHEX.SIZE
	instance string
	log      *slog.Logger

	mu       sync.Mutex // guards onCommit, closed
	onCommit func(map[keys.Topic][]Entry)
	closed   bool
	cons     jetstream.ConsumeContext

	fmu       sync.Mutex // guards the live feed's entries waiting, lastFed
	feed      map[keys.Topic][]Entry
	feedN     int
	feedTimer *time.Timer
	lastFed   uint64        // the stream sequence of the last entry the feed took
	watchDone chan struct{} // closed by Close: stops watchFeed

	kmu   sync.Mutex
	known map[keys.Topic]uint64 // the highest cursor this front knows a topic holds: a read must reach it

	umu   sync.Mutex
	usage map[keys.Topic]cachedUsage
	total atomic.Int64 // stream bytes at the last look
	totAt atomic.Int64 // when (unix ns)
	prune atomic.Bool  // a byte-bounded prune is running
}

type cachedUsage struct {
	bytes int64
	at    time.Time
}

// NATSOptions configure a NATS store; the zero value is usable.
type NATSOptions struct {
	// Stream is the JetStream stream's name (default DefaultNATSStream).
	// Fronts of one relay name the same stream; relays that share a
	// cluster name different ones.
	Stream string
	// Replicas is the stream's replication factor when the store creates
	// it: 0 means 3 on a cluster and 1 on a single server.
	Replicas int
	// Duplicates is the window within which an envelope appended again
	// is recognised by content (default DefaultNATSDuplicates).
	Duplicates time.Duration
	// MaxAge, when set, makes JetStream itself drop entries older than it.
	MaxAge time.Duration
	// Logger receives the connection's events; nil: slog.Default().
	Logger *slog.Logger
}

// Defaults and bounds of the NATS store.
const (
	DefaultNATSStream     = "PURSUANCE"
	DefaultNATSDuplicates = 2 * time.Minute
	natsReplicasCluster   = 3
	natsRequestTimeout    = 10 * time.Second // of one JetStream request
	natsAckTimeout        = 5 * time.Second  // for an envelope's acknowledgement: past it, the append fails (500) and the client sends it again
	natsStaleRetries      = 40               // reads of a lagging replica retried before answering what it holds
	natsStaleWait         = 5 * time.Millisecond
	natsUsageTTL          = time.Second // a topic's bytes are looked up at most this often (own appends counted between)
	natsInstanceKey       = "pursuance_instance"
	natsScanBatch         = 1000 // entries a prune reads at a time
	natsMaxKnownTopics    = 1 << 16
	natsMinPayload        = 1<<20 + 1<<10
	natsFeedBatch         = 1024                   // live entries handed on at once at most
	natsFeedWait          = 2 * time.Millisecond   // for more live entries the consumer says are pending
	natsFeedExpiry        = 5 * time.Second        // of the live feed's pull requests
	natsFeedHeartbeat     = time.Second            // the server's heartbeats on them
	natsOpenAttempt       = 2 * time.Second        // one try at the stream while a cluster elects its leaders
	natsFeedWatch         = 2 * time.Second        // how often the live feed is checked for a stall
	natsPeerWait          = 250 * time.Millisecond // between asks while the cluster's servers come up
	natsFeedStalled       = 4 * time.Second        // behind the stream and taking nothing this long: restarted
)

// ParseNATSStore splits a --store value nats://HOST:PORT[,HOST:PORT…][?stream=S&replicas=R&duplicates=D]
// into the servers' URLs for nats.Connect and the options.
func ParseNATSStore(s string) (servers string, o NATSOptions, err error) {
	if !strings.HasPrefix(s, "nats://") {
		return "", o, fmt.Errorf("a NATS store is named nats://HOST:PORT[,HOST:PORT…], not %q", s)
	}
	rest, query, _ := strings.Cut(strings.TrimPrefix(s, "nats://"), "?")
	var urls []string
	for _, h := range strings.Split(rest, ",") {
		h = strings.TrimPrefix(strings.TrimSpace(h), "nats://")
		if h == "" {
			continue
		}
		urls = append(urls, "nats://"+strings.TrimSuffix(h, "/"))
	}
	if len(urls) == 0 {
		return "", o, errors.New("a NATS store needs at least one server: nats://HOST:PORT")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", o, fmt.Errorf("the NATS store's options %q: %w", query, err)
	}
	for k, v := range q {
		switch k {
		case "stream":
			o.Stream = v[0]
		case "replicas":
			if o.Replicas, err = strconv.Atoi(v[0]); err != nil || o.Replicas < 1 || o.Replicas > 5 {
				return "", o, fmt.Errorf("replicas=%q: JetStream replicates a stream 1 to 5 ways", v[0])
			}
		case "duplicates":
			if o.Duplicates, err = time.ParseDuration(v[0]); err != nil || o.Duplicates <= 0 {
				return "", o, fmt.Errorf("duplicates=%q: a duration such as 2m", v[0])
			}
		default:
			return "", o, fmt.Errorf("unknown NATS store option %q (stream, replicas, duplicates)", k)
		}
	}
	return strings.Join(urls, ","), o, nil
}

// OpenNATS connects to the NATS servers (a comma-separated list of
// nats:// URLs) and opens the relay's stream, creating it if needed.
func OpenNATS(ctx context.Context, servers string, o NATSOptions) (_ *NATS, err error) {
	if o.Stream == "" {
		o.Stream = DefaultNATSStream
	}
	if o.Duplicates == 0 {
		o.Duplicates = DefaultNATSDuplicates
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	n := &NATS{stream: o.Stream, prefix: "pursuance." + strings.ToLower(o.Stream), log: o.Logger, known: map[keys.Topic]uint64{}, usage: map[keys.Topic]cachedUsage{}}
	n.nc, err = nats.Connect(servers,
		nats.Name("pursuance-relay"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.Timeout(5*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				n.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { n.log.Info("nats reconnected", "server", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { n.log.Warn("nats", "err", err) }),
	)
	if err != nil {
		return nil, fmt.Errorf("relay store: connecting to NATS at %s: %w", servers, err)
	}
	defer func() {
		if err != nil {
			n.nc.Close()
		}
	}()
	if mp := n.nc.MaxPayload(); mp < natsMinPayload {
		return nil, fmt.Errorf("relay store: the NATS servers take messages of at most %d bytes; the relay needs %d (an envelope of 1 MiB and its header): set max_payload: 2MB in their configuration", mp, natsMinPayload)
	}
	if n.js, err = jetstream.New(n.nc, jetstream.WithPublishAsyncTimeout(natsAckTimeout), jetstream.WithDefaultTimeout(natsRequestTimeout)); err != nil {
		return nil, fmt.Errorf("relay store: %w", err)
	}
	replicas := o.Replicas
	if replicas == 0 {
		replicas = 1
		if n.nc.ConnectedClusterName() != "" {
			replicas = natsReplicasCluster
		}
	}
	var id [instanceBytes]byte
	rand.Read(id[:])
	cfg := jetstream.StreamConfig{
		Name:        o.Stream,
		Description: "Pursuance relay topics (sealed envelopes)",
		Subjects:    []string{n.prefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      o.MaxAge,
		Duplicates:  o.Duplicates,
		AllowDirect: true,
		Metadata:    map[string]string{natsInstanceKey: hex.EncodeToString(id[:])},
	}
	// A cluster that has just started answers nothing until it has
	// elected its leaders: ask again, each time for a short while.
	var st jetstream.Stream
	for {
		actx, cancel := context.WithTimeout(ctx, natsOpenAttempt)
		st, err = n.openStream(actx, cfg)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) && !noPeersYet(err) {
			break
		}
		n.log.Info("waiting for the NATS cluster's JetStream", "err", err)
		if noPeersYet(err) { // answered at once: ask again in a moment
			select {
			case <-ctx.Done():
			case <-time.After(natsPeerWait):
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("relay store: the JetStream stream %s: %w", o.Stream, err)
	}
	n.instance = st.CachedInfo().Config.Metadata[natsInstanceKey]
	if len(n.instance) != 2*instanceBytes {
		return nil, fmt.Errorf("relay store: the JetStream stream %s is not a Pursuance relay's (no instance in its metadata); name another with ?stream=", o.Stream)
	}
	// The live feed: every entry stored from now on, whichever front
	// appended it.
	n.lastFed = st.CachedInfo().State.LastSeq
	if n.cons, err = n.follow(ctx, 0); err != nil {
		return nil, fmt.Errorf("relay store: the live feed: %w", err)
	}
	n.watchDone = make(chan struct{})
	go n.watchFeed()
	return n, nil
}

func (n *NATS) subject(t keys.Topic, size int) string {
	return fmt.Sprintf("%s.%x.%0*d", n.prefix, t[:], natsSizeDigits, size)
}

// natsSizeDigits is the width of the size in a subject: every subject of
// a stream has one length, so that what JetStream adds to each message is
// known (msgOverhead).
const natsSizeDigits = 8

// msgOverhead is what JetStream's file store counts for a message besides
// its envelope: the record's fixed fields, the subject and the header
// (one Nats-Msg-Id of msgIDLen characters).
func (n *NATS) msgOverhead() int64 {
	const record = 22 + 4 + 8 // length, sequence, time, subject length; header length; hash
	hdr := len("NATS/1.0\r\n") + len(jetstream.MsgIDHeader+": ") + msgIDLen + len("\r\n\r\n")
	return int64(record + len(n.subject(keys.Topic{}, 0)) + hdr)
}

// msgIDLen is the length of a message ID (msgID).
const msgIDLen = 24

func (n *NATS) topicFilter(t keys.Topic) string {
	return n.prefix + "." + hex.EncodeToString(t[:]) + ".*"
}

// parseSubject returns a subject's topic and envelope size.
func (n *NATS) parseSubject(s string) (keys.Topic, int, bool) {
	var t keys.Topic
	rest, ok := strings.CutPrefix(s, n.prefix+".")
	if !ok {
		return t, 0, false
	}
	th, sz, ok := strings.Cut(rest, ".")
	size, err := strconv.Atoi(sz)
	if !ok || err != nil || hex.DecodedLen(len(th)) != len(t) {
		return t, 0, false
	}
	if _, err := hex.Decode(t[:], []byte(th)); err != nil {
		return t, 0, false
	}
	return t, size, true
}

// msgID is an envelope's identity in its topic, for JetStream's
// duplicate detection.
func msgID(t keys.Topic, env []byte) string {
	h := sha256.New()
	h.Write(t[:])
	h.Write(env)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:msgIDLen*3/4])
}

// OnCommit implements Store: fn gets every entry the stream stores from
// now on, whichever front appended it.
func (n *NATS) OnCommit(fn func(map[keys.Topic][]Entry)) {
	n.mu.Lock()
	n.onCommit = fn
	n.mu.Unlock()
}

// Instance implements Store: the ID kept in the stream's metadata.
func (n *NATS) Instance() string { return n.instance }

func (n *NATS) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// Append implements Store. The envelopes are published in order, each
// with its identity as the message ID (so that JetStream stores an
// envelope the topic already holds once, within the duplicate window),
// and the append returns once JetStream acknowledged each: stored by a
// quorum of the stream's servers.
func (n *NATS) Append(ctx context.Context, t keys.Topic, envs [][]byte) (AppendResult, error) {
	var res AppendResult
	if n.isClosed() {
		return res, ErrClosed
	}
	res.Cursors = make([]uint64, len(envs))
	futs := make([]jetstream.PubAckFuture, len(envs))
	same := make([]int, len(envs)) // for an envelope sent before in this batch, 1 + its index
	first := map[string]int{}
	for i, env := range envs {
		id := msgID(t, env)
		if j, ok := first[id]; ok {
			same[i] = j + 1
			continue
		}
		first[id] = i
		m := nats.NewMsg(n.subject(t, len(env)))
		m.Data = env
		m.Header.Set(jetstream.MsgIDHeader, id)
		f, err := n.js.PublishMsgAsync(m)
		if err != nil {
			return AppendResult{}, fmt.Errorf("relay store: publishing: %w", err)
		}
		futs[i] = f
	}
	var added int64
	for i, f := range futs {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			res.Cursors[i] = ack.Sequence
			if ack.Duplicate {
				res.Duplicates++
			} else {
				res.Stored++
				added += int64(len(envs[i]))
			}
		case err := <-f.Err():
			return AppendResult{}, fmt.Errorf("relay store: appending: %w", err)
		case <-ctx.Done():
			return AppendResult{}, ctx.Err()
		}
	}
	for i, j := range same {
		if j > 0 {
			res.Cursors[i] = res.Cursors[j-1]
			res.Duplicates++
		}
	}
	for _, c := range res.Cursors {
		n.sawCursor(t, c)
	}
	res.Last = n.knownCursor(t)
	n.umu.Lock()
	if u, ok := n.usage[t]; ok {
		u.bytes += added
		n.usage[t] = u
	}
	n.umu.Unlock()
	n.total.Add(added)
	return res, nil
}

// natsGetRequest is JetStream's (direct) get request.
type natsGetRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	LastFor   string     `json:"last_by_subj,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	MaxBytes  int        `json:"max_bytes,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

// directGet asks any of the stream's servers (they may lag the leader)
// for what req names: one message, or with Batch a page of them and the
// number that match after it (pending). Found is false when none
// matched.
func (n *NATS) directGet(ctx context.Context, req natsGetRequest) (msgs []*nats.Msg, pending uint64, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, natsRequestTimeout)
	defer cancel()
	inbox := n.nc.NewRespInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, 0, err
	}
	defer sub.Unsubscribe()
	if err := n.nc.PublishRequest("$JS.API.DIRECT.GET."+n.stream, inbox, body); err != nil {
		return nil, 0, err
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, 0, err
		}
		switch status := m.Header.Get("Status"); status {
		case "":
			msgs = append(msgs, m)
			if req.Batch == 0 {
				return msgs, 0, nil
			}
		case "404":
			return msgs, 0, nil
		case "204": // the end of a batch
			pending, _ = strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return msgs, pending, nil
		default:
			return nil, 0, fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
		}
	}
}

func msgSeq(m *nats.Msg) uint64 {
	seq, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	return seq
}

// Read implements Store. A page comes from any of the stream's servers;
// one that lags behind what this front knows the topic holds (its own
// appends, its live feed) is asked again.
func (n *NATS) Read(ctx context.Context, t keys.Topic, after uint64, limit, maxBytes int) (ReadResult, error) {
	if n.isClosed() {
		return ReadResult{}, ErrClosed
	}
	want := n.knownCursor(t)
	for try := 0; ; try++ {
		res, err := n.read(ctx, t, after, limit, maxBytes)
		if err != nil || res.Last >= want {
			return res, err
		}
		if try == natsStaleRetries {
			// Not lagging: the entries are gone (another front's
			// retention dropped them). Expect no more of this topic.
			n.forgetCursor(t, res.Last)
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(natsStaleWait):
		}
	}
}

func (n *NATS) read(ctx context.Context, t keys.Topic, after uint64, limit, maxBytes int) (ReadResult, error) {
	var res ReadResult
	filter := n.topicFilter(t)
	msgs, pending, err := n.directGet(ctx, natsGetRequest{Seq: after + 1, NextFor: filter, Batch: limit, MaxBytes: maxBytes})
	if err != nil {
		return res, fmt.Errorf("relay store: reading: %w", err)
	}
	size := 0
	for _, m := range msgs {
		if len(res.Entries) > 0 && size+len(m.Data) > maxBytes {
			pending++ // left for the next page
			continue
		}
		size += len(m.Data)
		res.Entries = append(res.Entries, Entry{Cursor: msgSeq(m), Envelope: m.Data})
	}
	if len(res.Entries) > 0 && pending == 0 {
		res.Last = res.Entries[len(res.Entries)-1].Cursor
	} else {
		last, _, err := n.directGet(ctx, natsGetRequest{LastFor: filter})
		if err != nil {
			return res, fmt.Errorf("relay store: reading: %w", err)
		}
		if len(last) > 0 {
			res.Last = msgSeq(last[0])
		}
	}
	if len(res.Entries) > 0 && after == 0 {
		res.First = res.Entries[0].Cursor
	} else if res.Last > 0 {
		first, _, err := n.directGet(ctx, natsGetRequest{NextFor: filter})
		if err != nil {
			return res, fmt.Errorf("relay store: reading: %w", err)
		}
		if len(first) > 0 {
			res.First = msgSeq(first[0])
		}
	}
	return res, nil
}

// streamInfo asks the stream's leader for its state, with the subjects
// matching filter ("": none).
func (n *NATS) streamInfo(ctx context.Context, filter string) (*jetstream.StreamInfo, error) {
	st, err := n.js.Stream(ctx, n.stream)
	if err != nil {
		return nil, err
	}
	if filter == "" {
		return st.Info(ctx)
	}
	return st.Info(ctx, jetstream.WithSubjectFilter(filter))
}

// Close stops the live feed and closes the connection.
func (n *NATS) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	cons := n.cons
	n.mu.Unlock()
	close(n.watchDone)
	cons.Stop()
	n.nc.Close()
	return nil
}

// natsNoPeers is JetStream's error code for a stream it cannot place yet:
// too few of the cluster's servers known to be up (a cluster starting, or
// one server just restarted).
const natsNoPeers jetstream.ErrorCode = 10005

// noPeersYet reports whether err is JetStream finding too few servers up
// to place the stream, which a cluster coming up answers for a moment.
func noPeersYet(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && ae.ErrorCode == natsNoPeers
}
