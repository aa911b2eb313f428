package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// TestAdmitHook: a server with Config.Admit stores only what it admits and
// says how many it refused; without one, it stores everything.
func TestAdmitHook(t *testing.T) { forEachStore(t, testAdmitHook) }

func testAdmitHook(t *testing.T, be backend) {
	ctx := context.Background()
	st, err := be.open(t)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	admit := func(_ keys.Topic, env []byte) bool { return env[0] == 'y' }
	srv := NewServer(st, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Admit: admit})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	key, err := identity.NewSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	topic := keys.TopicOf(key.Public())
	env := func(c byte) []byte {
		b := make([]byte, 1024)
		b[0] = c
		rand.Read(b[1:])
		return b
	}
	post := func(envs ...[]byte) AppendResult {
		t.Helper()
		body, err := EncodeAppend(topic, key, envs)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(ts.URL+"/v1/topics/"+TopicHex(topic), "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("append: %s", resp.Status)
		}
		var res AppendResult
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := post(env('y'), env('n'), env('y')); res.Stored != 2 || res.Refused != 1 || res.Last != 2 || fmt.Sprint(res.Cursors) != "[1 0 2]" {
		t.Fatalf("mixed append: %+v", res)
	}
	if res := post(env('n')); res.Stored != 0 || res.Refused != 1 || res.Last != 2 || fmt.Sprint(res.Cursors) != "[0]" {
		t.Fatalf("all refused: %+v", res)
	}
	page, err := st.Read(ctx, topic, 0, 10, 1<<20)
	if err != nil || len(page.Entries) != 2 {
		t.Fatalf("stored %d entries (%v), want 2", len(page.Entries), err)
	}
	for _, e := range page.Entries {
		if e.Envelope[0] != 'y' {
			t.Errorf("stored a refused envelope")
		}
	}
}
