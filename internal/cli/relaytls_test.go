package cli

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pursuance/pursuance/internal/testca"
	"github.com/pursuance/pursuance/relay"
)

// With --acme-domain, the relay serves the certificate its ACME cache
// holds for the domain, refuses handshakes for other names, and contacts
// no certificate authority while the certificate is valid: tested on
// loopback with a certificate of a test CA placed in the cache as ACME
// would have left it, and a "directory" on loopback that counts requests
// (no ACME server is ever contacted).
func TestRelayACMEServesCachedCertificate(t *testing.T) {
	var contacted atomic.Int64
	dirSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		contacted.Add(1)
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer dirSrv.Close()

	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("relay.test")
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	cache := filepath.Join(data, acmeCacheDir)
	os.MkdirAll(cache, 0o700)
	// autocert's cache entry for an ECDSA certificate: the key, then the
	// chain, under the domain's name.
	if err := os.WriteFile(filepath.Join(cache, "relay.test"), append(leaf.KeyPEM, leaf.CertPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	conf, acmeHTTP, err := relayTLS(relayFile{ACMEDomains: []string{"relay.test"}, ACMEDirectory: dirSrv.URL}, data, log)
	if err != nil || conf == nil || acmeHTTP == nil {
		t.Fatalf("relayTLS: %v", err)
	}

	st, err := relay.OpenSQLite(context.Background(), filepath.Join(data, "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.NewServer(st, relay.Config{Logger: log}).Serve(ctx, relay.TLSListener(ln, conf)) }()
	defer func() { cancel(); <-done }()

	client := func(name string) *http.Client {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool(), ServerName: name}
		return &http.Client{Transport: tr}
	}
	resp, err := client("relay.test").Get("https://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("the cached certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("healthz: %d %s", resp.StatusCode, resp.Proto)
	}
	if _, err := client("other.test").Get("https://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Fatal("a handshake for a name not in --acme-domain succeeded")
	}

	// --acme-http: plain requests are sent to https; a challenge for a
	// name not listed is forbidden, one for a token never asked for not
	// found; the CA is not asked.
	stopHTTP, bound, err := serveACMEHTTP("127.0.0.1:0", acmeHTTP, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stopHTTP()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get("http://" + bound.String() + "/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://") {
		t.Errorf("a plain request on --acme-http: %d %q", resp.StatusCode, loc)
	}
	for host, want := range map[string]int{"other.test": http.StatusForbidden, "relay.test": http.StatusNotFound} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+bound.String()+"/.well-known/acme-challenge/unasked", nil)
		req.Host = host
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("an unasked challenge for %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	if n := contacted.Load(); n != 0 {
		t.Fatalf("the ACME directory was contacted %d times", n)
	}
}

// TLS settings that cannot be meant are refused with what to do.
func TestRelayTLSSettings(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		f    relayFile
		want string
	}{
		{relayFile{TLSCert: "c.pem"}, "go together"},
		{relayFile{TLSCert: "c.pem", TLSKey: "k.pem", ACMEDomains: []string{"a.test"}}, "exclude each other"},
		{relayFile{ACMEEmail: "ops@a.test"}, "need --acme-domain"},
		{relayFile{TLSCert: "/nonexistent/c.pem", TLSKey: "/nonexistent/k.pem"}, "no such file"},
	} {
		if _, _, err := relayTLS(c.f, t.TempDir(), log); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.f, err, c.want)
		}
	}
	if conf, _, err := relayTLS(relayFile{}, t.TempDir(), log); conf != nil || err != nil {
		t.Errorf("no TLS settings: %v %v", conf, err)
	}
}
