package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// Client speaks the relay protocol to one relay, through one of its
// fronts when it has several.
type Client struct {
	base   string
	fronts []string
	cur    atomic.Int64 // the front in use, an index into fronts
	hc     *http.Client
	stall  time.Duration
	// onionStall, when set, replaces OnionConnectStall (OnionStall).
	onionStall time.Duration
}

// OnionStall sets the least time the client gives a connection to an
// onion service (0: OnionConnectStall): a member's node, often off, is
// given up on sooner than a relay.
func (c *Client) OnionStall(d time.Duration) *Client {
	c.onionStall = d
	return c
}

func (c *Client) onionConnect() time.Duration {
	if c.onionStall > 0 {
		return c.onionStall
	}
	return OnionConnectStall
}

// DefaultStall is how long a client waits for a relay that sends nothing:
// to connect and answer, and between bytes of a request's body or of its
// answer. A relay that accepts connections and never answers (censored
// or overloaded) fails with ErrStalled after this long, not never.
const DefaultStall = 15 * time.Second

// ErrStalled is wrapped by the error of a request that made no progress
// for the client's stall time.
var ErrStalled = errors.New("relay: no answer in time")

// ErrConnectStalled is wrapped by the error of a request that stalled
// before any connection to the relay was made: nothing answered the dial
// (through Tor: the onion service is down or not published, or tor found
// no way to it). It wraps ErrStalled.
var ErrConnectStalled = fmt.Errorf("%w: no connection", ErrStalled)

// OnionConnectStall is the least time a client gives a connection to an
// onion service to be made: tor first fetches the service's descriptor
// from the hidden-service directories, then builds an introduction and a
// rendezvous circuit, which on a slow or busy network takes longer than a
// direct relay's stall (half a minute is not rare). Once connected, the
// client's own stall applies again.
const OnionConnectStall = 45 * time.Second

// NewClient returns a client of the relay at base (http://host:port),
// using hc (nil: a client of its own). Every request fails with
// ErrStalled once it has made no progress for DefaultStall (see Stall).
//
// A relay run as several fronts over one store (docs/relay.md, "A relay
// cluster") is named by their URLs joined with commas
// (http://a:8765,http://b:8765): the client uses one, and moves to the
// next when it cannot reach it, sending the request again there (reads
// and appends are idempotent). Cursors are the relay's, not a front's, so
// a client resumes on another front from where it was.
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	c := &Client{base: strings.TrimRight(base, "/"), hc: hc, stall: DefaultStall}
	for _, f := range strings.Split(base, FrontSeparator) {
		if f = strings.TrimRight(strings.TrimSpace(f), "/"); f != "" {
			c.fronts = append(c.fronts, f)
		}
	}
	if len(c.fronts) == 0 {
		c.fronts = []string{c.base}
	}
	return c
}

// FrontSeparator joins the URLs of one relay's fronts in its name.
const FrontSeparator = ","

// front returns the URL of the front in use.
func (c *Client) front() string { return c.fronts[int(c.cur.Load())%len(c.fronts)] }

// failover moves from the front at URL from to the next, unless another
// request moved already; it returns the front to use.
func (c *Client) failover(from string) string {
	for {
		i := c.cur.Load()
		if c.fronts[int(i)%len(c.fronts)] != from {
			return c.front()
		}
		if c.cur.CompareAndSwap(i, (i+1)%int64(len(c.fronts))) {
			return c.front()
		}
	}
}

// unreachable reports whether err says the front could not be reached
// (refused, reset, no connection made in time) rather than that it
// answered, or that the caller gave up.
func unreachable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return false
	}
	return !errors.Is(err, ErrStalled) || errors.Is(err, ErrConnectStalled)
}

// Stall sets how long a request may go without progress (0:
// DefaultStall), and returns c. Set it before using c.
func (c *Client) Stall(d time.Duration) *Client {
	if d <= 0 {
		d = DefaultStall
	}
	c.stall = d
	return c
}

// URL returns the relay's base URL (its fronts' URLs, for a relay that
// has several).
func (c *Client) URL() string { return c.base }

// do sends req and returns the answer, whose body the caller must close.
// The request fails with ErrStalled when no byte of the request's body
// went out, and no byte of the answer came in, for the stall time.
func (c *Client) do(ctx context.Context, req *http.Request) (*http.Response, error) {
	for range len(c.fronts) - 1 {
		from := c.front()
		if !strings.HasPrefix(req.URL.String(), from) {
			break
		}
		resp, err := c.do1(ctx, req)
		if !unreachable(ctx, err) {
			return resp, err
		}
		// Another front, with the same request.
		next := c.failover(from)
		u, perr := url.Parse(next + strings.TrimPrefix(req.URL.String(), from))
		if perr != nil {
			return nil, err
		}
		r2 := req.Clone(ctx)
		r2.URL, r2.Host = u, ""
		if req.GetBody != nil {
			if r2.Body, perr = req.GetBody(); perr != nil {
				return nil, err
			}
		}
		req = r2
	}
	return c.do1(ctx, req)
}

// call sends a request for path on the relay (its front in use), with
// body as an octet stream (nil: none), and returns the answer once its
// status is a success; the caller closes its body. A refusal is the
// relay's StatusError.
func (c *Client) call(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.front()+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := statusError(resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// do1 is do on one front.
func (c *Client) do1(ctx context.Context, req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	var connected atomic.Bool
	connect := c.stall
	if strings.HasSuffix(req.URL.Hostname(), ".onion") {
		connect = max(connect, c.onionConnect())
	}
	var timer *time.Timer
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		if !connected.Swap(true) && connect != c.stall {
			timer.Reset(c.stall)
		}
	}})
	timer = time.AfterFunc(connect, func() {
		if connected.Load() {
			cancel(fmt.Errorf("%w (nothing for %s)", ErrStalled, c.stall))
		} else {
			cancel(fmt.Errorf("%w (none made within %s)", ErrConnectStalled, connect))
		}
	})
	done := func() {
		timer.Stop()
		cancel(nil)
	}
	req = req.WithContext(ctx)
	if req.Body != nil {
		req.Body = &progressReader{r: req.Body, t: timer, d: c.stall}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		done()
		if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
			return nil, cause
		}
		return nil, err
	}
	resp.Body = &progressReader{r: resp.Body, t: timer, d: c.stall, ctx: ctx, done: done}
	return resp, nil
}

// progressReader restarts the stall timer whenever bytes pass; for an
// answer's body it reports a stall as such, and Close ends the request.
type progressReader struct {
	r    io.ReadCloser
	t    *time.Timer
	d    time.Duration
	ctx  context.Context // of the request, for an answer's body
	done func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.t.Reset(p.d)
	}
	if err != nil && err != io.EOF && p.ctx != nil {
		if cause := context.Cause(p.ctx); errors.Is(cause, ErrStalled) {
			err = cause
		}
	}
	return n, err
}

func (p *progressReader) Close() error {
	err := p.r.Close()
	if p.done != nil {
		p.done()
	}
	return err
}

// StatusError is a relay's refusal: its HTTP status and message.
type StatusError struct {
	Status  int
	Message string
	// RetryAfter is how long the relay asked the client to wait before
	// trying again (its Retry-After header, in seconds); 0 when it did
	// not say.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("relay: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Append appends envs to topic, signed with the topic's key; it returns
// once the relay has them on disk.
func (c *Client) Append(ctx context.Context, topic keys.Topic, key *identity.SigningKey, envs [][]byte) (AppendResult, error) {
	body, err := EncodeAppend(topic, key, envs)
	if err != nil {
		return AppendResult{}, err
	}
	resp, err := c.call(ctx, http.MethodPost, "/v1/topics/"+TopicHex(topic), body)
	if err != nil {
		return AppendResult{}, err
	}
	defer resp.Body.Close()
	var res AppendResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAppendAnswer)).Decode(&res); err != nil {
		return AppendResult{}, fmt.Errorf("relay: append answer: %w", err)
	}
	res.Instance = resp.Header.Get(HeaderInstance)
	if len(res.Cursors) != len(envs) {
		// An older relay, or a wrong answer: the client checks on a
		// later read either way.
		res.Cursors = nil
	}
	return res, nil
}

// maxAppendAnswer bounds the JSON answer of an append: a cursor for
// each of up to MaxBatch envelopes, 20 digits and a comma each.
const maxAppendAnswer = 1<<12 + MaxBatch*21

func statusError(resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e apiError
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		// Not a relay's error (a web server's page, a proxy's): say what
		// it was, never pass the page on.
		e.Error = "not a Pursuance relay's answer"
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			e.Error += " (" + strings.TrimSpace(strings.Split(ct, ";")[0]) + ")"
		}
	}
	se := &StatusError{Status: resp.StatusCode, Message: e.Error}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		se.RetryAfter = time.Duration(min(secs, maxRetryAfter)) * time.Second
	}
	return se
}

// maxRetryAfter bounds the Retry-After (seconds) a client takes from a
// relay: a longer wait is the next sync's business.
const maxRetryAfter = 3600

// ErrNotRelay is returned by Info when the server answers, but not as a
// relay of a protocol version this client speaks.
var ErrNotRelay = errors.New("not a Pursuance relay")

// Info asks the relay for its protocol version and limits (GET /v1). A
// server that answers something else is ErrNotRelay.
func (c *Client) Info(ctx context.Context) (Info, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.front()+"/v1", nil)
	if err != nil {
		return Info{}, err
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return Info{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Info{}, fmt.Errorf("%w: GET /v1 answered %d %s", ErrNotRelay, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	var info Info
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&info); err != nil || info.Protocol == 0 {
		return Info{}, fmt.Errorf("%w: GET /v1 did not answer with a relay's description", ErrNotRelay)
	}
	if info.Protocol != Version {
		return Info{}, fmt.Errorf("%w: it speaks protocol version %d, this program %d", ErrNotRelay, info.Protocol, Version)
	}
	return info, nil
}

// Read reads up to limit entries of topic after cursor.
func (c *Client) Read(ctx context.Context, topic keys.Topic, after uint64, limit int) (ReadResult, error) {
	u := fmt.Sprintf("%s/v1/topics/%s?after=%d&limit=%d", c.front(), TopicHex(topic), after, limit)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ReadResult{}, err
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return ReadResult{}, err
	}
	defer resp.Body.Close()
	if err := statusError(resp); err != nil {
		return ReadResult{}, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReadBytes+MaxReadLimit*20+(1<<20)))
	if err != nil {
		return ReadResult{}, err
	}
	var res ReadResult
	if res.Entries, err = DecodeEntries(b); err != nil {
		return ReadResult{}, err
	}
	if len(res.Entries) > limit {
		return ReadResult{}, fmt.Errorf("%w: %d entries for a limit of %d", ErrFrame, len(res.Entries), limit)
	}
	res.Last, _ = strconv.ParseUint(resp.Header.Get(HeaderLast), 10, 64)
	res.First, _ = strconv.ParseUint(resp.Header.Get(HeaderFirst), 10, 64)
	res.Instance = resp.Header.Get(HeaderInstance)
	for _, e := range res.Entries {
		if e.Cursor <= after {
			return ReadResult{}, fmt.Errorf("%w: entry %d at or before the cursor %d", ErrFrame, e.Cursor, after)
		}
	}
	return res, nil
}

// Subscribe follows topic from cursor: fn gets every entry after it, in
// order, then every new one as it is committed, until ctx ends, fn fails
// or the connection drops (the error says which).
func (c *Client) Subscribe(ctx context.Context, topic keys.Topic, after uint64, fn func([]Entry) error) error {
	conn, err := c.dialLive(ctx, topic, after)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(liveMessageBytes + (1 << 20) + 64)
	last := after
	var buf bytes.Buffer // reused: a subscriber reads many messages
	for {
		typ, r, err := conn.Reader(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if typ != websocket.MessageBinary {
			return fmt.Errorf("%w: a text message", ErrFrame)
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		// fn may keep the entries: they must not alias the reused buffer.
		b := bytes.Clone(buf.Bytes())
		es, err := DecodeEntries(b)
		if err != nil {
			return err
		}
		if len(es) > 0 && es[0].Cursor <= last {
			return fmt.Errorf("%w: live entry %d at or before %d", ErrFrame, es[0].Cursor, last)
		}
		if len(es) > 0 {
			last = es[len(es)-1].Cursor
		}
		if err := fn(es); err != nil {
			conn.Close(websocket.StatusNormalClosure, "")
			return err
		}
	}
}

// dialLive opens a live stream, on the next front when one cannot be
// reached.
func (c *Client) dialLive(ctx context.Context, topic keys.Topic, after uint64) (*websocket.Conn, error) {
	for try := 0; ; try++ {
		from := c.front()
		u := fmt.Sprintf("%s/v1/topics/%s/live?after=%d", strings.Replace(from, "http", "ws", 1), TopicHex(topic), after)
		// The handshake has the stall time; the stream may then be quiet
		// for as long as nobody writes.
		dctx, cancel := context.WithTimeoutCause(ctx, c.stall, fmt.Errorf("%w (no handshake in %s)", ErrStalled, c.stall))
		conn, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: c.hc})
		if cause := context.Cause(dctx); err != nil && errors.Is(cause, ErrStalled) {
			err = cause
		}
		cancel()
		if err == nil || try == len(c.fronts)-1 || !unreachable(ctx, err) {
			return conn, err
		}
		c.failover(from)
	}
}

// IsRetryable reports whether an error from a relay is worth retrying
// soon (down, overloaded, rate-limited) rather than a refusal. A relay
// that stalled is not: waiting for it again would only double the wait.
//
// A full relay (507: a quota, or its disk) is not: it will not have room
// in seconds.
func IsRetryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status == http.StatusTooManyRequests || se.Status >= 500 && se.Status != http.StatusInsufficientStorage
	}
	if errors.Is(err, ErrStalled) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return err != nil
}
