package relay

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/attach"
)

// blob returns a blob of a bucket's size with distinct content.
func blob(size int, fill byte) []byte { return envelope(size, fill) }

// TestBlobs: put, get and have; a replay stores nothing new; the store
// keeps the blob across a reopen.
func TestBlobs(t *testing.T) {
	r := newTestRelay(t, sqliteBackend, Config{})
	ctx := context.Background()
	_, key := testTopic(t, 1)
	b := blob(attach.BlobSize(100_000), 7)
	id := attach.IDOf(b)
	if have, err := r.c.HasBlobs(ctx, []attach.BlobID{id, id}); err != nil || have[0] || have[1] {
		t.Fatalf("have before put: %v, %v", have, err)
	}
	if _, err := r.c.Blob(ctx, id); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("get before put: %v", err)
	}
	stored, err := r.c.PutBlob(ctx, key, b)
	if err != nil || !stored {
		t.Fatalf("put: %v, %v", stored, err)
	}
	if stored, err = r.c.PutBlob(ctx, key, b); err != nil || stored {
		t.Fatalf("put again: %v, %v", stored, err)
	}
	got, err := r.c.Blob(ctx, id)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
	other := attach.IDOf(blob(attach.MinBlob, 8))
	have, err := r.c.HasBlobs(ctx, []attach.BlobID{other, id})
	if err != nil || have[0] || !have[1] {
		t.Fatalf("have: %v, %v", have, err)
	}
	topic, _ := testTopic(t, 1)
	tb, total, err := r.st.(BlobStore).BlobUsage(ctx, topic)
	if err != nil || tb != int64(len(b)) || total != tb {
		t.Fatalf("usage %d %d, %v", tb, total, err)
	}
}

func isStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}

// TestBlobRefusals: every refusal names its limit, and nothing refused
// is stored.
func TestBlobRefusals(t *testing.T) {
	r := newTestRelay(t, sqliteBackend, Config{BlobTopicQuota: 3 * attach.MinBlob})
	ctx := context.Background()
	_, key := testTopic(t, 1)
	_, other := testTopic(t, 2)
	put := func(id string, body []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, r.ts.URL+"/v1/blobs/"+id, bytes.NewReader(body))
		resp, err := r.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e strings.Builder
		buf := make([]byte, 1024)
		n, _ := resp.Body.Read(buf)
		e.Write(buf[:n])
		return resp.StatusCode, e.String()
	}
	good := blob(attach.MinBlob, 1)
	body := EncodeBlobPut(key, good)
	cases := []struct {
		name   string
		id     string
		body   []byte
		status int
		words  string
	}{
		{"bad id", "xyz", body, 400, "blob ID"},
		{"other hash", attach.IDOf(blob(attach.MinBlob, 2)).String(), body, 400, "SHA-256"},
		{"not a bucket", attach.IDOf(good[:attach.MinBlob-1]).String(), EncodeBlobPut(key, good[:attach.MinBlob-1]), 400, "blob sizes"},
		{"bad signature", attach.IDOf(good).String(), append(EncodeBlobPut(other, good)[:32:32], body[32:]...), 403, "signed"},
		{"too large", attach.IDOf(good).String(), make([]byte, MaxBlobBody+1), 413, "limit"},
		{"short", attach.IDOf(good).String(), body[:50], 400, "topic key"},
	}
	for _, c := range cases {
		st, msg := put(c.id, c.body)
		if st != c.status || !strings.Contains(msg, c.words) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, st, msg, c.status, c.words)
		}
	}
	if have, _ := r.c.HasBlobs(ctx, []attach.BlobID{attach.IDOf(good)}); have[0] {
		t.Fatal("a refused blob was stored")
	}
	// The quota: three minimal blobs fit, a fourth does not; a blob held
	// already is accepted (it costs nothing).
	for i := range 3 {
		if _, err := r.c.PutBlob(ctx, key, blob(attach.MinBlob, byte(10+i))); err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.c.PutBlob(ctx, key, blob(attach.MinBlob, 20))
	if !isStatus(err, http.StatusInsufficientStorage) || !strings.Contains(err.Error(), "at most 12288") {
		t.Fatalf("over the quota: %v", err)
	}
	if _, err := r.c.PutBlob(ctx, key, blob(attach.MinBlob, 10)); err != nil {
		t.Fatalf("a held blob over the quota: %v", err)
	}
	// Another topic has its own quota.
	if _, err := r.c.PutBlob(ctx, other, blob(attach.MinBlob, 20)); err != nil {
		t.Fatal(err)
	}
}

// noBlobStore is a Store without a blob area.
type noBlobStore struct{ Store }

// TestNoBlobStore: a store that keeps no blobs answers 501 with words.
func TestNoBlobStore(t *testing.T) {
	r := newTestRelay(t, sqliteBackend, Config{})
	srv := NewServer(noBlobStore{r.st}, Config{Logger: r.srv.log})
	req, _ := http.NewRequest(http.MethodGet, "/v1/blobs/"+strings.Repeat("ab", 32), nil)
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusNotImplemented || !strings.Contains(w.Body.String(), "keeps no blobs") {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

// TestBlobsOnNATS: the NATS store keeps no blobs (yet): a relay run on it
// answers every blob request 501 with words, not a failure.
func TestBlobsOnNATS(t *testing.T) {
	r := newTestRelay(t, natsBackend, Config{})
	ctx := context.Background()
	_, key := testTopic(t, 1)
	_, err := r.c.PutBlob(ctx, key, blob(attach.MinBlob, 1))
	if !isStatus(err, http.StatusNotImplemented) || !strings.Contains(err.Error(), "keeps no blobs") {
		t.Fatalf("a put: %v", err)
	}
	if _, err := r.c.HasBlobs(ctx, []attach.BlobID{{1}}); !isStatus(err, http.StatusNotImplemented) {
		t.Fatalf("a have-query: %v", err)
	}
}

// A relay named by several fronts (docs/relay.md, "A relay cluster")
// serves blobs too: the client asks its front in use, and moves to the
// next when one is down, as for envelopes.
func TestBlobsThroughFronts(t *testing.T) {
	r := newTestRelay(t, sqliteBackend, Config{})
	ctx := context.Background()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // a front that refuses connections
	c := NewClient(down.URL+FrontSeparator+r.ts.URL, r.ts.Client())
	_, key := testTopic(t, 1)
	b := blob(attach.MinBlob, 9)
	if _, err := c.PutBlob(ctx, key, b); err != nil {
		t.Fatalf("put through two fronts, the first down: %v", err)
	}
	if got, err := c.Blob(ctx, attach.IDOf(b)); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("get through two fronts: %d bytes, %v", len(got), err)
	}
	if have, err := c.HasBlobs(ctx, []attach.BlobID{attach.IDOf(b)}); err != nil || !have[0] {
		t.Fatalf("have through two fronts: %v, %v", have, err)
	}
}
