package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// testTopic returns a group generation's topic and signing key.
func testTopic(t testing.TB, b byte) (keys.Topic, *identity.SigningKey) {
	t.Helper()
	k := keys.Key{Scope: keys.Scope{Pursuance: event.ID{b}}, Gen: 1}
	k.Seed[0] = b
	topic, sk, err := k.Topic()
	if err != nil {
		t.Fatal(err)
	}
	return topic, sk
}

func envelope(size int, fill byte) []byte {
	e := bytes.Repeat([]byte{fill}, size)
	e[0], e[1] = byte(fill>>4), fill // distinct contents for distinct fills
	return e
}

type testRelay struct {
	st  Store
	srv *Server
	ts  *httptest.Server
	c   *Client
}

func newTestRelay(t testing.TB, b backend, cfg Config) *testRelay {
	t.Helper()
	st, err := b.open(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := NewServer(st, cfg)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		st.Close()
	})
	return &testRelay{st: st, srv: srv, ts: ts, c: NewClient(ts.URL, ts.Client())}
}

func TestAppendRead(t *testing.T) { forEachStore(t, testAppendRead) }

func testAppendRead(t *testing.T, be backend) {
	ctx := context.Background()
	r := newTestRelay(t, be, Config{})
	topic, key := testTopic(t, 1)
	envs := [][]byte{envelope(1024, 1), envelope(4096, 2), envelope(1024, 3)}
	res, err := r.c.Append(ctx, topic, key, envs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 3 || res.Duplicates != 0 || res.Last != 3 {
		t.Fatalf("append: %+v", res)
	}
	// A replay is idempotent.
	res, err = r.c.Append(ctx, topic, key, envs[1:])
	if err != nil || res.Stored != 0 || res.Duplicates != 2 || res.Last != 3 {
		t.Fatalf("replay: %+v %v", res, err)
	}
	got, err := r.c.Read(ctx, topic, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got.Last != 3 || got.First != 1 || len(got.Entries) != 3 {
		t.Fatalf("read: last %d first %d, %d entries", got.Last, got.First, len(got.Entries))
	}
	for i, e := range got.Entries {
		if e.Cursor != uint64(i+1) || !bytes.Equal(e.Envelope, envs[i]) {
			t.Errorf("entry %d: cursor %d", i, e.Cursor)
		}
	}
	// From a cursor, with a limit.
	got, err = r.c.Read(ctx, topic, 1, 1)
	if err != nil || len(got.Entries) != 1 || got.Entries[0].Cursor != 2 {
		t.Fatalf("read after 1: %+v %v", got.Entries, err)
	}
	// Another topic is empty.
	other, _ := testTopic(t, 2)
	got, err = r.c.Read(ctx, other, 0, 10)
	if err != nil || len(got.Entries) != 0 || got.Last != 0 {
		t.Fatalf("other topic: %+v %v", got, err)
	}
}

func TestRefusals(t *testing.T) { forEachStore(t, testRefusals) }

func testRefusals(t *testing.T, be backend) {
	ctx := context.Background()
	r := newTestRelay(t, be, Config{MaxBody: 64 << 10})
	topic, key := testTopic(t, 1)
	_, stranger := testTopic(t, 9)
	status := func(err error) int {
		var se *StatusError
		if errors.As(err, &se) {
			return se.Status
		}
		t.Fatalf("not a status error: %v", err)
		return 0
	}
	// Signed by a key that is not the topic's.
	if _, err := r.c.Append(ctx, topic, stranger, [][]byte{envelope(1024, 1)}); status(err) != http.StatusForbidden {
		t.Errorf("stranger: %v", err)
	}
	// Tampered after signing.
	body, _ := EncodeAppend(topic, key, [][]byte{envelope(1024, 1)})
	body[len(body)-1] ^= 1
	if code := post(t, r, topic, body); code != http.StatusForbidden {
		t.Errorf("tampered: %d", code)
	}
	// Not an envelope size.
	if _, err := r.c.Append(ctx, topic, key, [][]byte{envelope(1000, 1)}); status(err) != http.StatusBadRequest {
		t.Errorf("odd size: %v", err)
	}
	// Garbage and truncation.
	for _, b := range [][]byte{nil, []byte("hello"), body[:len(body)-10]} {
		if code := post(t, r, topic, b); code != http.StatusBadRequest && code != http.StatusForbidden {
			t.Errorf("garbage of %d bytes: %d", len(b), code)
		}
	}
	// Too large a body.
	if _, err := r.c.Append(ctx, topic, key, [][]byte{envelope(64<<10, 1), envelope(1024, 2)}); status(err) != http.StatusRequestEntityTooLarge {
		t.Errorf("too large: %v", err)
	}
	// A bad topic, a bad cursor.
	for _, u := range []string{"/v1/topics/zz", "/v1/topics/" + TopicHex(topic) + "?after=x", "/v1/topics/" + TopicHex(topic) + "?limit=0"} {
		resp, err := r.ts.Client().Get(r.ts.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d", u, resp.StatusCode)
		}
	}
	// Nothing was stored.
	if got, _ := r.c.Read(ctx, topic, 0, 10); len(got.Entries) != 0 {
		t.Errorf("stored %d refused envelopes", len(got.Entries))
	}
}

func post(t *testing.T, r *testRelay, topic keys.Topic, body []byte) int {
	t.Helper()
	resp, err := r.ts.Client().Post(r.ts.URL+"/v1/topics/"+TopicHex(topic), "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRateLimit(t *testing.T) { forEachStore(t, testRateLimit) }

func testRateLimit(t *testing.T, be backend) {
	ctx := context.Background()
	r := newTestRelay(t, be, Config{TopicRate: 5})
	topic, key := testTopic(t, 1)
	var limited bool
	for i := range 20 {
		_, err := r.c.Append(ctx, topic, key, [][]byte{envelope(1024, byte(i))})
		var se *StatusError
		if errors.As(err, &se) && se.Status == http.StatusTooManyRequests {
			limited = true
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !limited {
		t.Fatal("20 appends at once to a topic limited to 5/s (burst 10) were all taken")
	}
}

// Many writers at once: every append is acknowledged, cursors are unique
// and dense, nothing is lost (group commit).
func TestConcurrentAppends(t *testing.T) { forEachStore(t, testConcurrentAppends) }

func testConcurrentAppends(t *testing.T, be backend) {
	ctx := context.Background()
	r := newTestRelay(t, be, Config{})
	topic, key := testTopic(t, 1)
	const writers, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := r.c.Append(ctx, topic, key, [][]byte{envelope(1024, byte(w)), envelope(1024, byte(i+100))}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Envelopes repeat across writers (the fills are shared), so count
	// distinct contents.
	distinct := map[string]bool{}
	for w := range writers {
		distinct[string(envelope(1024, byte(w)))] = true
	}
	for i := range each {
		distinct[string(envelope(1024, byte(i+100)))] = true
	}
	got, err := r.c.Read(ctx, topic, 0, MaxReadLimit)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != len(distinct) || got.Last != uint64(len(distinct)) {
		t.Fatalf("%d entries, last %d, want %d", len(got.Entries), got.Last, len(distinct))
	}
}

func TestLive(t *testing.T) { forEachStore(t, testLive) }

func testLive(t *testing.T, be backend) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := newTestRelay(t, be, Config{})
	topic, key := testTopic(t, 1)
	if _, err := r.c.Append(ctx, topic, key, [][]byte{envelope(1024, 1), envelope(1024, 2)}); err != nil {
		t.Fatal(err)
	}
	got := make(chan Entry, 100)
	done := make(chan error, 1)
	sctx, stop := context.WithCancel(ctx)
	go func() {
		done <- r.c.Subscribe(sctx, topic, 1, func(es []Entry) error {
			for _, e := range es {
				got <- e
			}
			return nil
		})
	}()
	want := func(cursor uint64) {
		t.Helper()
		select {
		case e := <-got:
			if e.Cursor != cursor {
				t.Fatalf("got cursor %d, want %d", e.Cursor, cursor)
			}
		case <-ctx.Done():
			t.Fatalf("no entry %d", cursor)
		}
	}
	want(2) // the backlog after the cursor
	for i := range 5 {
		if _, err := r.c.Append(ctx, topic, key, [][]byte{envelope(1024, byte(10+i))}); err != nil {
			t.Fatal(err)
		}
		want(uint64(3 + i))
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("subscribe ended with %v", err)
	}
	// The hub forgets a topic nobody follows.
	for range 100 {
		if r.srv.hub.subscribers() == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.srv.hub.subscribers(); n != 0 {
		t.Errorf("%d subscribers left", n)
	}
}

func TestRetention(t *testing.T) { forEachStore(t, testRetention) }

func testRetention(t *testing.T, be backend) {
	ctx := context.Background()
	r := newTestRelay(t, be, Config{})
	topic, key := testTopic(t, 1)
	for i := range 10 {
		if _, err := r.c.Append(ctx, topic, key, [][]byte{envelope(1024, byte(i))}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := r.st.Prune(ctx, time.Now(), Retention{MaxBytes: 4 * 1024})
	if err != nil || n != 6 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	got, err := r.c.Read(ctx, topic, 0, 100)
	if err != nil || got.First != 7 || got.Last != 10 || len(got.Entries) != 4 {
		t.Fatalf("after pruning: first %d last %d, %d entries, %v", got.First, got.Last, len(got.Entries), err)
	}
	// By age: everything is older than a moment from now.
	if n, err := r.st.Prune(ctx, time.Now().Add(time.Hour), Retention{MaxAge: time.Minute}); err != nil || n != 4 {
		t.Fatalf("pruned by age %d, %v", n, err)
	}
	// Cursors go on rising after pruning.
	res, err := r.c.Append(ctx, topic, key, [][]byte{envelope(1024, 99)})
	if err != nil || res.Last != 11 {
		t.Fatalf("append after pruning: %+v %v", res, err)
	}
}

func TestReopen(t *testing.T) { forEachStore(t, testReopen) }

func testReopen(t *testing.T, be backend) {
	ctx := context.Background()
	path := be.place(t)
	st, err := be.openAt(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	topic, _ := testTopic(t, 1)
	if _, err := st.Append(ctx, topic, [][]byte{envelope(1024, 1), envelope(1024, 2)}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := st.Append(ctx, topic, [][]byte{envelope(1024, 3)}); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
	st, err = be.openAt(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := st.Append(ctx, topic, [][]byte{envelope(1024, 2), envelope(1024, 3)})
	if err != nil || res.Stored != 1 || res.Duplicates != 1 || res.Last != 3 {
		t.Fatalf("after reopening: %+v %v", res, err)
	}
}

func TestInfoHealthMetrics(t *testing.T) { forEachStore(t, testInfoHealthMetrics) }

func testInfoHealthMetrics(t *testing.T, be backend) {
	r := newTestRelay(t, be, Config{})
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/v1":      `"protocol":1`,
		"/metrics": "pursuance_relay_envelopes_stored_total",
		// The Go runtime's, the process's (Linux; CI's) and the build's
		// (docs/operating.md, "Monitoring").
		"/metrics ":   "go_goroutines",
		"/metrics  ":  "process_resident_memory_bytes",
		"/metrics   ": `pursuance_build_info{commit="",goversion="go1.`,
	} {
		path = strings.TrimSpace(path)
		resp, err := r.ts.Client().Get(r.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, fmt.Sprintf("%.200s", b))
		}
	}
}

// An append answers each envelope's cursor, a duplicate's the cursor of
// the entry that holds it; every answer names the store's instance,
// which survives reopening the store and differs for a new one.
func TestAppendCursorsAndInstance(t *testing.T) { forEachStore(t, testAppendCursorsAndInstance) }

func testAppendCursorsAndInstance(t *testing.T, be backend) {
	ctx := context.Background()
	r := newTestRelay(t, be, Config{})
	topic, key := testTopic(t, 1)
	a, b, c := envelope(1024, 1), envelope(1024, 2), envelope(1024, 3)
	res, err := r.c.Append(ctx, topic, key, [][]byte{a, b})
	if err != nil || !slices.Equal(res.Cursors, []uint64{1, 2}) {
		t.Fatalf("append: %+v %v", res, err)
	}
	res, err = r.c.Append(ctx, topic, key, [][]byte{c, b, c})
	if err != nil || !slices.Equal(res.Cursors, []uint64{3, 2, 3}) || res.Stored != 1 || res.Duplicates != 2 {
		t.Fatalf("append with duplicates: %+v %v", res, err)
	}
	inst := r.st.Instance()
	if len(inst) != 2*instanceBytes || res.Instance != inst {
		t.Fatalf("instance %q, answered %q", inst, res.Instance)
	}
	got, err := r.c.Read(ctx, topic, 0, 10)
	if err != nil || got.Instance != inst {
		t.Fatalf("read's instance %q, %v", got.Instance, err)
	}
	for _, path := range []string{"/healthz", "/v1", "/v1/topics/xyz"} {
		resp, err := r.ts.Client().Get(r.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get(HeaderInstance) != inst {
			t.Errorf("%s (%d): instance header %q", path, resp.StatusCode, resp.Header.Get(HeaderInstance))
		}
	}
	// Reopened (as after a restart, or a restore from a backup): the same.
	path := be.place(t)
	st, err := be.openAt(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	first := st.Instance()
	st.Close()
	if st, err = be.openAt(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Instance() != first || first == inst {
		t.Errorf("instances: %q reopened as %q; another store's %q", first, st.Instance(), inst)
	}
}

// hangingListener accepts connections (the kernel does, from its
// backlog) and never reads or writes: a censored or overloaded relay.
func hangingListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String()
}

// A relay that never answers fails every call with ErrStalled after the
// stall time (measured with a wide margin: the point is "not never").
func TestClientStalls(t *testing.T) {
	ctx := context.Background()
	c := NewClient(hangingListener(t), nil).Stall(300 * time.Millisecond)
	topic, key := testTopic(t, 1)
	calls := map[string]func() error{
		"read": func() error { _, err := c.Read(ctx, topic, 0, 10); return err },
		"info": func() error { _, err := c.Info(ctx); return err },
		"append": func() error {
			_, err := c.Append(ctx, topic, key, [][]byte{envelope(1024, 1)})
			return err
		},
		"subscribe": func() error {
			return c.Subscribe(ctx, topic, 0, func([]Entry) error { return nil })
		},
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, ErrStalled) || IsRetryable(err) {
			t.Errorf("%s: %v (retryable %v)", name, err, IsRetryable(err))
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s took %s", name, d)
		}
	}
}

// A slow but steady answer is not a stall: the timer restarts with every
// byte.
func TestClientSlowIsNotStalled(t *testing.T) {
	topic, _ := testTopic(t, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderLast, "4")
		w.WriteHeader(http.StatusOK)
		for i := range 4 {
			w.Write(AppendEntry(nil, Entry{Cursor: uint64(i + 1), Envelope: envelope(1024, byte(i))}))
			w.(http.Flusher).Flush()
			time.Sleep(400 * time.Millisecond)
		}
	}))
	defer ts.Close()
	// Each gap is 0.4 of the stall time (a margin of 600 ms for a loaded
	// machine); the whole answer takes longer than it.
	got, err := NewClient(ts.URL, nil).Stall(time.Second).Read(context.Background(), topic, 0, 10)
	if err != nil || len(got.Entries) != 4 {
		t.Fatalf("%d entries, %v", len(got.Entries), err)
	}
}
