package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A relay whose certificate this machine does not trust is reported with
// what to do (SSL_CERT_FILE for an operator's own CA), not Go's raw text.
func TestRelayErrorUntrustedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler()) // a certificate of httptest's own CA
	defer srv.Close()
	_, err := HTTPClient(nil, "").Get(srv.URL + "/v1")
	if err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
	msg := RelayError(err)
	for _, want := range []string{"its TLS certificate is not trusted on this machine (", "set SSL_CERT_FILE", "docs/operating.md"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if strings.HasPrefix(msg, "Get ") || strings.Contains(msg, "tls: failed to verify") {
		t.Errorf("%q: Go's raw text", msg)
	}
}
