package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/coder/websocket"

	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// get does a GET and returns the status, the JSON error (if any) and the
// body.
func get(t *testing.T, hc *http.Client, url string) (int, string, []byte) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiError
	json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error, b
}

// A cursor beyond what stores keep is the client's error (400, the
// protocol's words), not the store's (it answered 500 with the SQL
// driver's text).
func TestCursorOutOfRange(t *testing.T) { forEachStore(t, testCursorOutOfRange) }

func testCursorOutOfRange(t *testing.T, be backend) {
	r := newTestRelay(t, be, Config{})
	topic, key := testTopic(t, 1)
	if _, err := r.c.Append(context.Background(), topic, key, [][]byte{envelope(1024, 1)}); err != nil {
		t.Fatal(err)
	}
	base := r.ts.URL + "/v1/topics/" + TopicHex(topic)
	for _, u := range []string{
		base + "?after=9223372036854775808",
		base + "?after=18446744073709551615",
		base + "/live?after=9223372036854775808",
	} {
		status, msg, body := get(t, r.ts.Client(), u)
		if status != http.StatusBadRequest || !strings.Contains(msg, "bad cursor") {
			t.Errorf("%s: %d %s", u, status, body)
		}
		if bytes.Contains(bytes.ToLower(body), []byte("sql")) || bytes.Contains(body, []byte("overflow")) {
			t.Errorf("%s: a store's words reached the client: %s", u, body)
		}
	}
	// The largest cursor is a cursor.
	res, err := r.c.Read(context.Background(), topic, MaxCursor, 10)
	if err != nil || len(res.Entries) != 0 || res.Last != 1 {
		t.Fatalf("read after the largest cursor: %+v %v", res, err)
	}
}

// failingStore fails as a broken database would, with words of its own.
type failingStore struct {
	Store
}

const driverWords = "SQL logic error: no such table: envelopes (secret detail)"

func (failingStore) Append(context.Context, keys.Topic, [][]byte) (AppendResult, error) {
	return AppendResult{}, errors.New(driverWords)
}

func (failingStore) Read(context.Context, keys.Topic, uint64, int, int) (ReadResult, error) {
	return ReadResult{}, errors.New(driverWords)
}

// A store's failure reaches the client as a 500 with the relay's own
// words; its detail goes to the log.
func TestStoreFailureNotTold(t *testing.T) { forEachStore(t, testStoreFailureNotTold) }

func testStoreFailureNotTold(t *testing.T, be backend) {
	st, err := be.open(t)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs bytes.Buffer
	var mu sync.Mutex
	srv := NewServer(failingStore{st}, Config{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	ts := httptestServer(t, srv)
	c := NewClient(ts.URL, ts.Client())
	topic, key := testTopic(t, 1)
	_, appendErr := c.Append(context.Background(), topic, key, [][]byte{envelope(1024, 1)})
	_, readErr := c.Read(context.Background(), topic, 0, 10)
	for _, err := range []error{appendErr, readErr} {
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusInternalServerError {
			t.Fatalf("want a 500, got %v", err)
		}
		if strings.Contains(se.Message, "secret") || strings.Contains(se.Message, "SQL") {
			t.Errorf("the store's words reached the client: %q", se.Message)
		}
		if !strings.Contains(se.Message, "retry") {
			t.Errorf("the client is not told what to do: %q", se.Message)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "secret detail") {
		t.Errorf("the log lacks the store's detail:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// GET / says what the relay is, in one line of plain text.
func TestRoot(t *testing.T) { forEachStore(t, testRoot) }

func testRoot(t *testing.T, be backend) {
	r := newTestRelay(t, be, Config{})
	resp, err := r.ts.Client().Get(r.ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		bytes.Count(b, []byte("\n")) != 1 || !bytes.Contains(b, []byte("Pursuance relay")) || !bytes.Contains(b, []byte("not a web page")) {
		t.Errorf("GET /: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if status, _, _ := get(t, r.ts.Client(), r.ts.URL+"/nothing"); status != http.StatusNotFound {
		t.Errorf("GET /nothing: %d", status)
	}
}

// statusOf returns a relay refusal's status (0: none).
func statusOf(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("not a relay's answer: %v", err)
	}
	return se.Status
}

func envelopes(n, size int, fill byte) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = envelope(size, fill+byte(i))
		out[i][2] = byte(i) // distinct
	}
	return out
}

// The operator's quotas: bytes per topic and in all (507), new topics per
// address and hour (429 with Retry-After), the disk's free space (507).
func TestQuotas(t *testing.T) { forEachStore(t, testQuotas) }

func testQuotas(t *testing.T, be backend) {
	ctx := context.Background()
	r := newTestRelay(t, be, Config{TopicQuota: 8 << 10, StoreQuota: 12 << 10, NewTopicsPerHour: 2})
	a, akey := testTopic(t, 1)
	b, bkey := testTopic(t, 2)
	c, ckey := testTopic(t, 3)
	if _, err := r.c.Append(ctx, a, akey, envelopes(8, 1024, 10)); err != nil {
		t.Fatal(err)
	}
	_, err := r.c.Append(ctx, a, akey, envelopes(1, 1024, 30))
	if statusOf(t, err) != http.StatusInsufficientStorage || !strings.Contains(err.Error(), "8192") {
		t.Errorf("over the topic's quota: %v", err)
	}
	if _, err := r.c.Append(ctx, b, bkey, envelopes(1, 1024, 40)); err != nil {
		t.Fatal(err)
	}
	// A third topic within the hour.
	resp := postRaw(t, r, c, ckey, envelopes(1, 1024, 50))
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || secs < 60 || secs > 3600 {
		t.Errorf("a third new topic: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The store's quota: 9 KiB held, 3 more fit.
	if _, err := r.c.Append(ctx, b, bkey, envelopes(3, 1024, 60)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.Append(ctx, b, bkey, envelopes(1, 1024, 70)); statusOf(t, err) != http.StatusInsufficientStorage || !strings.Contains(err.Error(), "full") {
		t.Errorf("over the store's quota: %v", err)
	}
	for topic, want := range map[keys.Topic]int{a: 8, b: 4, c: 0} {
		if got, _ := r.c.Read(ctx, topic, 0, 100); len(got.Entries) != want {
			t.Errorf("topic holds %d, want %d", len(got.Entries), want)
		}
	}

	// The disk: less free than MinFree.
	d := newTestRelay(t, be, Config{DataDir: t.TempDir(), MinFree: 1 << 30})
	d.srv.disk.stat = func(string) (int64, bool) { return 100 << 20, true }
	if _, err := d.c.Append(ctx, a, akey, envelopes(1, 1024, 1)); statusOf(t, err) != http.StatusInsufficientStorage || !strings.Contains(err.Error(), "disk") {
		t.Errorf("a full disk: %v", err)
	}
	d.srv.disk.stat = func(string) (int64, bool) { return 2 << 30, true }
	d.srv.disk.at = time.Time{}
	if _, err := d.c.Append(ctx, a, akey, envelopes(1, 1024, 1)); err != nil {
		t.Errorf("room on the disk again: %v", err)
	}
}

// postRaw appends envs to topic and returns the answer as it is.
func postRaw(t *testing.T, r *testRelay, topic keys.Topic, key *identity.SigningKey, envs [][]byte) *http.Response {
	t.Helper()
	body, err := EncodeAppend(topic, key, envs)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := r.ts.Client().Post(r.ts.URL+"/v1/topics/"+TopicHex(topic), "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func httptestServer(t *testing.T, srv *Server) *httptest.Server {
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// The client addresses X-Forwarded-For names count only when the
// connection comes from a trusted proxy, and then the nearest untrusted
// hop is the client.
func TestTrustedProxies(t *testing.T) { forEachStore(t, testTrustedProxies) }

func testTrustedProxies(t *testing.T, be backend) {
	newTopicFrom := func(r *testRelay, b byte, xff string) int {
		topic, key := testTopic(t, b)
		body, _ := EncodeAppend(topic, key, envelopes(1, 1024, b))
		req, _ := http.NewRequest(http.MethodPost, r.ts.URL+"/v1/topics/"+TopicHex(topic), bytes.NewReader(body))
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := r.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	behind := newTestRelay(t, be, Config{NewTopicsPerHour: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	for i, c := range []struct {
		xff  string
		want int
	}{
		{"203.0.113.1", 200},
		{"203.0.113.1", 429},               // that client's one topic this hour is taken
		{"198.51.100.7, 203.0.113.2", 200}, // the nearest untrusted hop is the client
		{"203.0.113.1, 203.0.113.2", 429},  // an earlier hop is the client's own word
		{"203.0.113.9, 127.0.0.5", 200},    // a trusted hop is skipped
		{"2001:db8:1:2::1", 200},
		{"2001:db8:1:2::99", 429}, // the same /64
		{"", 200},                 // the proxy's own
	} {
		if got := newTopicFrom(behind, byte(10+i), c.xff); got != c.want {
			t.Errorf("behind a trusted proxy, X-Forwarded-For %q: %d, want %d", c.xff, got, c.want)
		}
	}
	direct := newTestRelay(t, be, Config{NewTopicsPerHour: 1})
	if got := newTopicFrom(direct, 40, "203.0.113.1"); got != 200 {
		t.Fatalf("first topic: %d", got)
	}
	if got := newTopicFrom(direct, 41, "203.0.113.2"); got != 429 {
		t.Errorf("X-Forwarded-For believed without a trusted proxy: %d", got)
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":               "192.0.2.7",
		"::ffff:192.0.2.7":        "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::",
		"2001:db8:1:2:ffff::1":    "2001:db8:1:2::",
		"2001:db8:1:3::1":         "2001:db8:1:3::",
		"[2001:db8:1:2::9]:443":   "2001:db8:1:2::",
		"192.0.2.7:65000":         "192.0.2.7",
		"[::ffff:192.0.2.8]:8765": "192.0.2.8",
	} {
		got, ok := addrOf(in)
		if !ok || got.String() != want {
			t.Errorf("%s: %v %v, want %s", in, got, ok, want)
		}
	}
}

// The table of client addresses stays bounded however many addresses
// come, and never forgets one that holds something.
func TestClientsBounded(t *testing.T) {
	now := time.Now()
	cs := newClients(64, 10, [numHoldings]int{1, 1, 1, 1})
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range 8 { // these hold a connection throughout
		if !cs.acquire(addr(i), holdConn, now) {
			t.Fatal("acquire")
		}
	}
	for i := 8; i < 10_000; i++ {
		a := addr(i)
		if ok, _ := cs.newTopic(a, now); !ok { // each leaves a partial bucket behind
			t.Fatal("new topic")
		}
		if !cs.acquire(a, holdRead, now) {
			t.Fatal("acquire")
		}
		cs.release(a, holdRead, now)
		if n := cs.size(); n > 64 {
			t.Fatalf("%d addresses tracked, bound 64", n)
		}
	}
	for i := range 8 {
		if cs.acquire(addr(i), holdConn, now) {
			t.Errorf("address %d was forgotten while holding a connection", i)
		}
		cs.release(addr(i), holdConn, now)
	}
	// An address that holds nothing and has its full bucket is dropped at
	// once.
	cs.acquire(addr(1), holdSub, now)
	cs.release(addr(1), holdSub, now.Add(2*time.Hour))
	cs.mu.Lock()
	_, kept := cs.m[addr(1)]
	cs.mu.Unlock()
	if kept {
		t.Error("an idle address with a full bucket is kept")
	}
}

func TestBudget(t *testing.T) {
	b := newBudget(10)
	ctx := context.Background()
	if err := b.acquire(ctx, 8); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.acquire(short, 5); err == nil {
		t.Fatal("over the budget")
	}
	// Waiters of lower priority number go first.
	order := make(chan int64, 2)
	var wg sync.WaitGroup
	for _, prio := range []int64{5, 1} {
		wg.Go(func() {
			if err := b.acquireFor(ctx, 6, prio); err != nil {
				t.Error(err)
			}
			order <- prio
		})
		time.Sleep(20 * time.Millisecond) // queued in this order
	}
	b.release(8)
	first := <-order
	b.release(6)
	wg.Wait()
	if first != 1 {
		t.Errorf("priority %d went first", first)
	}
	b.release(6)
	if b.used != 0 || len(b.queue) != 0 {
		t.Errorf("left: used %d, %d waiting", b.used, len(b.queue))
	}
}

// Decoding a body as it arrives, however it arrives, gives what decoding
// it whole gives; a failure of the body's reader is told as such.
func TestDecodeStream(t *testing.T) {
	topic, key := testTopic(t, 1)
	envs := [][]byte{envelope(1024, 1), envelope(4096, 2), envelope(1024, 3)}
	body, err := EncodeAppend(topic, key, envs)
	if err != nil {
		t.Fatal(err)
	}
	alloc := func(n int) []byte { return make([]byte, n) }
	readers := map[string]func([]byte) io.Reader{
		"whole":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"bytewise": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"halves":   func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"data+EOF": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
	}
	for name, rd := range readers {
		got, err := DecodeAppendFrom(topic, rd(body), alloc)
		if err != nil || len(got) != 3 {
			t.Fatalf("%s: %v", name, err)
		}
		for i := range envs {
			if !bytes.Equal(got[i], envs[i]) {
				t.Errorf("%s: envelope %d differs", name, i)
			}
		}
	}
	// Bad bodies fail alike, however read, with the protocol's errors.
	signed := func(rest []byte) []byte { // rest signed as it is
		pub := key.Public()
		b := append(append([]byte{}, pub[:]...), key.Sign(appendMessage(topic, rest))...)
		return append(b, rest...)
	}
	tampered := bytes.Clone(body)
	tampered[len(tampered)-1] ^= 1
	for bad, want := range map[string]string{
		string(body[:len(body)-1]):              "bad signature",
		string(append(bytes.Clone(body), 0)):    "bad signature",
		string(body[:97]):                       "bad signature",
		string(body[:96]):                       "append of 96 bytes",
		string(body[:10]):                       "append of 10 bytes",
		string(tampered):                        "bad signature",
		string(signed([]byte{0})):               "bad envelope count",
		string(signed([]byte{1, 0x80, 8, 1})):   "envelope 1 overruns",
		string(signed([]byte{1, 10, 1, 2})):     "not an envelope size",
		string(signed(append(body[96:], 7, 7))): "2 bytes after the envelopes",
	} {
		for name, rd := range readers {
			_, err := DecodeAppendFrom(topic, rd([]byte(bad)), alloc)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s, %d bytes: %v, want %q", name, len(bad), err, want)
			}
		}
	}
	other, _ := testTopic(t, 2)
	if _, err := DecodeAppend(other, body); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("another topic: %v", err)
	}
	// The reader's own failure.
	failing := io.MultiReader(bytes.NewReader(body[:500]), iotest.ErrReader(errors.New("connection reset")))
	if _, err := DecodeAppendFrom(topic, failing, alloc); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("a failing reader: %v", err)
	}
}

// A read answer larger than a page comes whole, in order, within the
// limit and the answer's size bound.
func TestReadPages(t *testing.T) { forEachStore(t, testReadPages) }

func testReadPages(t *testing.T, be backend) {
	ctx := context.Background()
	r := newTestRelay(t, be, Config{})
	topic, key := testTopic(t, 1)
	for i := range 3 {
		if _, err := r.c.Append(ctx, topic, key, envelopes(100, 4096, byte(i*100))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.c.Read(ctx, topic, 0, MaxReadLimit)
	if err != nil || len(got.Entries) != 300 || got.Last != 300 {
		t.Fatalf("%d entries, last %d, %v", len(got.Entries), got.Last, err)
	}
	for i, e := range got.Entries {
		if e.Cursor != uint64(i+1) || len(e.Envelope) != 4096 {
			t.Fatalf("entry %d: cursor %d", i, e.Cursor)
		}
	}
	if got, err := r.c.Read(ctx, topic, 7, 250); err != nil || len(got.Entries) != 250 || got.Entries[0].Cursor != 8 {
		t.Fatalf("limit 250 after 7: %d entries, %v", len(got.Entries), err)
	}
	// 17 MiB: the answer stops at 16 MiB.
	big, bkey := testTopic(t, 2)
	for i := range 2 {
		if _, err := r.c.Append(ctx, big, bkey, envelopes(9, 1<<20, byte(i*10))); err != nil {
			t.Fatal(err)
		}
	}
	wantLast := uint64(18)
	if be.streamCursors {
		wantLast += 300 // after the first topic's
	}
	if got, err := r.c.Read(ctx, big, 0, MaxReadLimit); err != nil || len(got.Entries) != 16 || got.Last != wantLast {
		t.Fatalf("a large topic: %d entries, last %d, %v", len(got.Entries), got.Last, err)
	}
}

// from returns an HTTP client whose connections come from 127.0.0.(i):
// Linux routes all of 127/8 to loopback.
func from(t *testing.T, i byte) *http.Client {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs loopback addresses beyond 127.0.0.1")
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, i)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// slowReader sends a read of topic from 127.0.0.(i) and never reads the
// answer past its status line; close ends it.
func slowReader(t *testing.T, addr string, i byte, topic keys.Topic) (status string, conn net.Conn) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, i)}, Control: smallReceiveBuffer}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /v1/topics/%s?limit=%d HTTP/1.1\r\nHost: relay\r\n\r\n", TopicHex(topic), MaxReadLimit)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReaderSize(c, 16).ReadString('\n')
	return line, c
}

// Reads at once per address are bounded, and a client that does not take
// its answer is cut off after the write timeout, which frees its place.
func TestReadLimits(t *testing.T) { forEachStore(t, testReadLimits) }

func testReadLimits(t *testing.T, be backend) {
	from(t, 2) // Linux only
	ctx := context.Background()
	r := newTestRelay(t, be, Config{ReadsPerAddr: 1})
	r.srv.writeTimeout = 500 * time.Millisecond
	topic, key := testTopic(t, 1)
	if _, err := r.c.Append(ctx, topic, key, envelopes(12, 1<<20, 0)); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(r.ts.URL, "http://")
	if line, _ := slowReader(t, addr, 2, topic); !strings.Contains(line, " 200 ") {
		t.Fatalf("the slow read: %q", line)
	}
	// Its address's one read is taken; another address reads.
	c3 := NewClient(r.ts.URL, from(t, 3))
	if _, err := c3.Read(ctx, topic, 0, 1); err != nil {
		t.Fatalf("another address: %v", err)
	}
	// The slow reader is cut off within the write timeout: its address
	// reads again (waiting for the place up to 2 s).
	start := time.Now()
	c2 := NewClient(r.ts.URL, from(t, 2))
	if _, err := c2.Read(ctx, topic, 0, 1); err != nil {
		t.Fatalf("after the write timeout: %v", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("the slow reader held its place %v", d)
	}

	// Without the timeout to free it, the place stays taken: 429.
	r2 := newTestRelay(t, be, Config{ReadsPerAddr: 1})
	if _, err := r2.c.Append(ctx, topic, key, envelopes(12, 1<<20, 0)); err != nil {
		t.Fatal(err)
	}
	slowReader(t, strings.TrimPrefix(r2.ts.URL, "http://"), 2, topic)
	_, err := NewClient(r2.ts.URL, from(t, 2)).Read(ctx, topic, 0, 1)
	if statusOf(t, err) != http.StatusTooManyRequests || !strings.Contains(err.Error(), "reads at once") {
		t.Errorf("a second read from the address: %v", err)
	}
}

// Live subscriptions per address are bounded (429 before the upgrade).
func TestSubscriptionsPerAddress(t *testing.T) { forEachStore(t, testSubscriptionsPerAddress) }

func testSubscriptionsPerAddress(t *testing.T, be backend) {
	r := newTestRelay(t, be, Config{SubsPerAddr: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dial := func(hc *http.Client, b byte) (*websocket.Conn, *http.Response, error) {
		u := strings.Replace(r.ts.URL, "http", "ws", 1) + "/v1/topics/" + TopicHex(keys.Topic{b}) + "/live"
		return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc})
	}
	a := from(t, 2)
	for i := range 2 {
		c, _, err := dial(a, byte(i))
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
	}
	if _, resp, err := dial(a, 9); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a third subscription: %v", err)
	}
	c, _, err := dial(from(t, 3), 9)
	if err != nil {
		t.Fatalf("another address: %v", err)
	}
	c.CloseNow()
}

// Connections per address are bounded: one more is answered 429 and
// closed, and other addresses are served.
func TestConnectionsPerAddress(t *testing.T) { forEachStore(t, testConnectionsPerAddress) }

func testConnectionsPerAddress(t *testing.T, be backend) {
	from(t, 2) // Linux only
	st, err := be.open(t)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := NewServer(st, Config{ConnsPerAddr: 3, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	for range 3 {
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(50 * time.Millisecond) // accepted
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, _ := io.ReadAll(c)
	if !bytes.HasPrefix(answer, []byte("HTTP/1.1 429 ")) || !bytes.Contains(answer, []byte("too many connections")) {
		t.Errorf("a fourth connection: %q", answer)
	}
	if status, _, _ := get(t, from(t, 3), "http://"+ln.Addr().String()+"/healthz"); status != 200 {
		t.Errorf("another address: %d", status)
	}
}

// An append whose body stalls gives way to one that waits for the
// relay's append memory: the stalled one is answered 408.
func TestStalledBodyGivesWay(t *testing.T) { forEachStore(t, testStalledBodyGivesWay) }

func testStalledBodyGivesWay(t *testing.T, be backend) {
	from(t, 2) // Linux only
	topic, key := testTopic(t, 1)
	stalled, err := EncodeAppend(topic, key, envelopes(1, 256<<10, 1))
	if err != nil {
		t.Fatal(err)
	}
	// Room for that body, and not for another append beside it.
	r := newTestRelay(t, be, Config{MaxBody: int64(len(stalled)), AppendMemory: int64(len(stalled))})
	addr := strings.TrimPrefix(r.ts.URL, "http://")
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/topics/%s HTTP/1.1\r\nHost: relay\r\nContent-Length: %d\r\n\r\n", TopicHex(topic), len(stalled))
	c.Write(stalled[:10<<10]) // and no more
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if _, err := r.c.Append(context.Background(), topic, key, envelopes(1, 1024, 1)); err != nil {
		t.Fatalf("the append waiting: %v", err)
	}
	if d := time.Since(start); d < bodyStalled/2 {
		t.Errorf("the waiting append went through at once (%v): the stalled one held no memory", d)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, " 408 ") {
		t.Errorf("the stalled append: %q", line)
	}
}

// The live cache holds at most its bytes, per topic and in all, counting
// the messages subscribers are sending; what it drops, subscribers read
// from the store, so each still gets every entry once, in order.
func TestLiveSmallCache(t *testing.T) { forEachStore(t, testLiveSmallCache) }

func testLiveSmallCache(t *testing.T, be backend) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := newTestRelay(t, be, Config{HubBytes: 24 << 10, HubTopicBytes: 12 << 10})
	topic, key := testTopic(t, 1)
	other, okey := testTopic(t, 2)
	const appends = 40
	// The topic's cursors, in order: 1, 2, 3, …, or with stream cursors
	// those left after each append of the other topic took two.
	var cursors []uint64
	seq := uint64(0)
	for i := range appends {
		for range 1 + i%5 {
			seq++
			cursors = append(cursors, seq)
		}
		if be.streamCursors {
			seq += 2
		}
	}
	follow := func(after uint64) chan error {
		done := make(chan error, 1)
		var want []uint64
		for _, c := range cursors {
			if c > after {
				want = append(want, c)
			}
		}
		go func() {
			next := 0 // of want
			sctx, stop := context.WithCancel(ctx)
			defer stop()
			err := r.c.Subscribe(sctx, topic, after, func(es []Entry) error {
				for _, e := range es {
					if next == len(want) || e.Cursor != want[next] {
						return fmt.Errorf("got cursor %d, want %d", e.Cursor, want[min(next, len(want)-1)])
					}
					next++
				}
				if next == len(want) {
					stop()
				}
				return nil
			})
			if next < len(want) {
				done <- fmt.Errorf("ended at %d of %d: %v", next, len(want), err)
				return
			}
			done <- nil
		}()
		return done
	}
	// Subscribers of another topic share the cache.
	otherDone := make(chan struct{})
	go func() {
		defer close(otherDone)
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		r.c.Subscribe(sctx, other, 0, func([]Entry) error { return nil })
	}()
	early := follow(0)
	for r.srv.hub.subscribers() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	var late chan error
	for i := range appends {
		// 1 to 5 envelopes of 4 KiB: some commits are larger than the
		// topic's share of the cache.
		if _, err := r.c.Append(ctx, topic, key, envelopes(1+i%5, 4096, byte(i*5))); err != nil {
			t.Fatal(err)
		}
		if _, err := r.c.Append(ctx, other, okey, envelopes(2, 4096, byte(i*5))); err != nil {
			t.Fatal(err)
		}
		if held := r.srv.hub.held(); held > 24<<10+5*(4096+64)+256 {
			t.Fatalf("the live cache holds %d bytes, bound %d", held, 24<<10)
		}
		if i == appends/2 {
			late = follow(3)
		}
	}
	for _, done := range []chan error{early, late} {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	cancel()
	<-otherDone
}

func TestHubBytes(t *testing.T) {
	h := newHub(64<<10, 16<<10)
	var topics []keys.Topic
	for i := range 8 {
		topics = append(topics, keys.Topic{byte(i)})
		h.subscribe(topics[i])
	}
	cursor := map[keys.Topic]uint64{}
	commit := func(t keys.Topic, n int) {
		var es []Entry
		for range n {
			cursor[t]++
			es = append(es, Entry{Cursor: cursor[t], Envelope: make([]byte, 1024)})
		}
		h.publish(map[keys.Topic][]Entry{t: es})
	}
	for i := range 200 {
		commit(topics[i%8], 1+i%3)
		if h.held() > 64<<10+4<<10 {
			t.Fatalf("held %d", h.held())
		}
		for _, f := range h.topics {
			if f.bytes > 16<<10 {
				t.Fatalf("a topic holds %d", f.bytes)
			}
		}
	}
	// What a topic drops is let go of, though the hub's order of
	// messages still names it (it kept a topic's dropped messages alive).
	{
		h := newHub(1<<20, 4<<10)
		h.subscribe(topics[0])
		for i := range 20 {
			h.publish(map[keys.Topic][]Entry{topics[0]: {{Cursor: uint64(i + 1), Envelope: make([]byte, 1024)}}})
		}
		kept := 0
		for _, m := range h.order {
			if !m.cached && m.data != nil {
				kept++
			}
		}
		if kept > 0 || h.dropped == 0 {
			t.Errorf("%d dropped messages keep their data (%d dropped)", kept, h.dropped)
		}
	}
	// A message being sent stays counted after it is dropped, and is
	// freed when sent.
	m, _, _, ok := h.next(topics[0], cursor[topics[0]]-1)
	if !ok || m == nil {
		t.Fatal("no message to send")
	}
	before := h.held()
	for range 40 {
		commit(topics[0], 3)
	}
	if m.cached {
		t.Fatal("not dropped")
	}
	h.done(m)
	if after := h.held(); after > before {
		t.Errorf("held %d after sending, %d before", after, before)
	}
	// A big commit keeps only its newest part, and the cache no gap.
	commit(topics[1], 40)
	if _, _, _, ok := h.next(topics[1], cursor[topics[1]]-30); ok {
		t.Error("the cache hands out entries after a gap")
	}
	m, data, n, ok := h.next(topics[1], cursor[topics[1]]-2)
	if !ok || n != 2 {
		t.Fatalf("the newest two: %v %d", ok, n)
	}
	es, err := DecodeEntries(data)
	if err != nil || len(es) != 2 || es[1].Cursor != cursor[topics[1]] {
		t.Errorf("the newest two: %v %v", es, err)
	}
	h.done(m)
}

// The store's usage follows appends, replays, pruning and reopening.
func TestUsage(t *testing.T) { forEachStore(t, testUsage) }

func testUsage(t *testing.T, be backend) {
	ctx := context.Background()
	path := be.place(t)
	st, err := be.openAt(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := testTopic(t, 1)
	b, _ := testTopic(t, 2)
	if _, err := st.Append(ctx, a, envelopes(3, 1024, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, a, envelopes(3, 1024, 1)); err != nil { // a replay
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, b, envelopes(1, 4096, 9)); err != nil {
		t.Fatal(err)
	}
	check := func(when string, topic keys.Topic, want Usage) {
		t.Helper()
		if got, err := st.Usage(ctx, topic); err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", when, got, err, want)
		}
	}
	check("appended", a, Usage{TopicBytes: 3072, TopicExists: true, TotalBytes: 7168})
	check("appended", keys.Topic{7}, Usage{TotalBytes: 7168})
	if _, err := st.Prune(ctx, time.Now(), Retention{MaxBytes: 2048}); err != nil {
		t.Fatal(err)
	}
	check("pruned", a, Usage{TopicBytes: 2048, TopicExists: true, TotalBytes: 2048})
	check("pruned", b, Usage{TopicExists: !be.forgetsEmptyTopics, TotalBytes: 2048})
	st.Close()
	if st, err = be.openAt(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	check("reopened", a, Usage{TopicBytes: 2048, TopicExists: true, TotalBytes: 2048})
}

// The relay's write deadlines are a request's: a live stream outlives
// them, and a connection kept alive serves a later request.
func TestDeadlinesStayWithTheirRequest(t *testing.T) {
	forEachStore(t, testDeadlinesStayWithTheirRequest)
}

func testDeadlinesStayWithTheirRequest(t *testing.T, be backend) {
	st, err := be.open(t)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := NewServer(st, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv.writeTimeout = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	c := NewClient("http://"+ln.Addr().String(), nil)
	topic, key := testTopic(t, 1)
	got := make(chan Entry, 10)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go c.Subscribe(sctx, topic, 0, func(es []Entry) error {
		for _, e := range es {
			got <- e
		}
		return nil
	})
	for i := range 2 {
		time.Sleep(4 * srv.writeTimeout) // past any deadline of the last request
		if _, err := c.Append(ctx, topic, key, envelopes(1, 1024, byte(i))); err != nil {
			t.Fatalf("append %d on a connection kept alive: %v", i, err)
		}
		if _, err := c.Read(ctx, topic, 0, 10); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		select {
		case e := <-got:
			if e.Cursor != uint64(i+1) {
				t.Fatalf("live: cursor %d", e.Cursor)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the live stream did not outlive the deadline (entry %d)", i+1)
		}
	}
	// A read, then another request on its connection once the read's
	// deadline has passed (an http.Client would retry on a new one).
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for _, path := range []string{"/v1/topics/" + TopicHex(topic), "/healthz"} {
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: relay\r\n\r\n", path)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s on a connection kept alive: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		time.Sleep(4 * srv.writeTimeout)
	}
}
