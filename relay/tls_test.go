package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/testca"
)

// tlsRelay serves a relay on loopback over TLS with a certificate of a
// test CA, as `pursuance relay --tls-cert --tls-key` does, and returns
// its https URL and the CA.
func tlsRelay(t *testing.T) (string, *testca.CA) {
	t.Helper()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(st, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, TLSListener(ln, &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	return "https://" + ln.Addr().String(), ca
}

// clientTrusting is an HTTP client like the app's (Go's default
// transport: HTTP/2 when the server offers it) that trusts ca.
func clientTrusting(ca *testca.CA) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool()}
	return &http.Client{Transport: tr}
}

// Over TLS the relay speaks HTTP/2 to a client that offers it, and live
// subscriptions (WebSockets, which need HTTP/1.1) still work from the same
// client: Go's transport makes the upgrade on an HTTP/1.1 connection.
func TestTLSHTTP2AndLive(t *testing.T) {
	url, ca := tlsRelay(t)
	hc := clientTrusting(ca)
	resp, err := hc.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || resp.TLS == nil {
		t.Fatalf("healthz over TLS: %d %s", resp.StatusCode, resp.Proto)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := NewClient(url, hc)
	topic, key := testTopic(t, 1)
	if _, err := c.Append(ctx, topic, key, [][]byte{envelope(1024, 1)}); err != nil {
		t.Fatal(err)
	}
	// A paged read over HTTP/2 (its deadlines set per page).
	if res, err := c.Read(ctx, topic, 0, 10); err != nil || len(res.Entries) != 1 || res.Last != 1 {
		t.Fatalf("read over HTTP/2: %+v %v", res, err)
	}
	got := make(chan []Entry, 4)
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	subErr := make(chan error, 1)
	go func() {
		subErr <- c.Subscribe(sctx, topic, 0, func(es []Entry) error { got <- es; return nil })
	}()
	want := uint64(1)
	appended := false
	for want <= 2 {
		select {
		case es := <-got:
			for _, e := range es {
				if e.Cursor != want {
					t.Fatalf("live entry %d, want %d", e.Cursor, want)
				}
				want++
			}
			if !appended {
				// The stored entry came: now one appended while following.
				appended = true
				if _, err := c.Append(ctx, topic, key, [][]byte{envelope(1024, 2)}); err != nil {
					t.Fatal(err)
				}
			}
		case err := <-subErr:
			t.Fatalf("live stream over TLS: %v", err)
		case <-ctx.Done():
			t.Fatalf("live stream over TLS: only up to %d", want-1)
		}
	}
}

// A client that does not trust the relay's CA is refused by its own TLS
// check: nothing is sent.
func TestTLSUntrustedCA(t *testing.T) {
	url, _ := tlsRelay(t)
	other, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	_, err = clientTrusting(other).Get(url + "/healthz")
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) {
		t.Fatalf("a client trusting another CA: %v", err)
	}
}

// A renewed certificate is served without a restart, once the files
// change; a half-written pair keeps the old one.
func TestCertFilesReload(t *testing.T) {
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(l *testca.Leaf) {
		if err := os.WriteFile(certFile, l.CertPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, l.KeyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := ca.Issue("relay.test")
	write(first)
	cf, err := LoadCertFiles(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cf.now = func() time.Time { return now }
	var reloadErr error
	cf.OnReloadError = func(err error) { reloadErr = err }
	serial := func() string {
		c, _ := cf.GetCertificate(nil)
		return string(c.Certificate[0])
	}
	if serial() != string(first.TLS.Certificate[0]) {
		t.Fatal("not the first certificate")
	}
	second, _ := ca.Issue("relay.test")
	write(second)
	// The mtime may not move on a coarse clock: the size or time must.
	os.Chtimes(certFile, now.Add(time.Minute), now.Add(time.Minute))
	if serial() != string(first.TLS.Certificate[0]) {
		t.Fatal("reloaded before certCheckEvery")
	}
	now = now.Add(certCheckEvery)
	if serial() != string(second.TLS.Certificate[0]) {
		t.Fatal("the renewed certificate is not served")
	}
	// A renewal caught half-way: the old certificate stays.
	os.WriteFile(keyFile, []byte("-----BEGIN EC PRIVATE KEY-----\n"), 0o600)
	now = now.Add(certCheckEvery)
	if serial() != string(second.TLS.Certificate[0]) || reloadErr == nil {
		t.Fatalf("a broken pair: %v", reloadErr)
	}
	if _, err := LoadCertFiles(certFile, keyFile); err == nil || !strings.Contains(err.Error(), "does not load") {
		t.Fatalf("loading a broken pair: %v", err)
	}
}
