package main

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/testca"
	"github.com/pursuance/pursuance/relay"
)

// TestRelayTLSEndToEnd runs a real `pursuance relay --tls-cert --tls-key`
// with a certificate of a CA made here, and a client built as the app's
// (Go's default transport, which offers HTTP/2) that trusts that CA:
// requests go over HTTP/2, and a live subscription (a WebSocket, which
// needs HTTP/1.1) gets an entry appended while it follows.
func TestRelayTLSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteFiles(dir, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	p := startRelay(t, filepath.Join(dir, "data"), "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
	defer func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}()
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("relay URL %s", p.url)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool()}
	hc := &http.Client{Transport: tr}
	resp, err := hc.Get(p.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("healthz over %s, want HTTP/2", resp.Proto)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := relay.NewClient(p.url, hc)
	topic, key := topicKey(t)
	envs := randomEnvelopes(2, 1024)
	if _, err := c.Append(ctx, topic, key, envs[:1]); err != nil {
		t.Fatal(err)
	}
	got := make(chan relay.Entry, 2)
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	go c.Subscribe(sctx, topic, 0, func(es []relay.Entry) error {
		for _, e := range es {
			got <- e
		}
		return nil
	})
	for want := uint64(1); want <= 2; want++ {
		select {
		case e := <-got:
			if e.Cursor != want {
				t.Fatalf("live entry %d, want %d", e.Cursor, want)
			}
			if want == 1 {
				if _, err := c.Append(ctx, topic, key, envs[1:]); err != nil {
					t.Fatal(err)
				}
			}
		case <-ctx.Done():
			t.Fatalf("no live entry %d over TLS", want)
		}
	}
}
