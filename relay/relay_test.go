package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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
	st  *SQLite
	srv *Server
	ts  *httptest.Server
	c   *Client
}

func newTestRelay(t testing.TB, cfg Config) *testRelay {
	t.Helper()
	st, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
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

func TestAppendRead(t *testing.T) {
	ctx := context.Background()
	r := newTestRelay(t, Config{})
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

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	r := newTestRelay(t, Config{MaxBody: 64 << 10})
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

func TestRateLimit(t *testing.T) {
	ctx := context.Background()
	r := newTestRelay(t, Config{TopicRate: 5})
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
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	r := newTestRelay(t, Config{})
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

func TestLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := newTestRelay(t, Config{})
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

func TestRetention(t *testing.T) {
	ctx := context.Background()
	r := newTestRelay(t, Config{})
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

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "relay.db")
	st, err := OpenSQLite(ctx, path)
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
	st, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := st.Append(ctx, topic, [][]byte{envelope(1024, 2), envelope(1024, 3)})
	if err != nil || res.Stored != 1 || res.Duplicates != 1 || res.Last != 3 {
		t.Fatalf("after reopening: %+v %v", res, err)
	}
}

func TestInfoHealthMetrics(t *testing.T) {
	r := newTestRelay(t, Config{})
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/v1":      `"protocol":1`,
		"/metrics": "pursuance_relay_envelopes_stored_total",
	} {
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
