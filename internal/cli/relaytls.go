package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/pursuance/pursuance/relay"
)

// acmeCacheDir is where, under the data directory, certificates obtained
// by ACME are kept unless --acme-cache says otherwise.
const acmeCacheDir = "acme"

// relayTLS returns the TLS configuration the settings ask for (nil: plain
// HTTP) and, for ACME's HTTP-01 challenges, the handler to serve on
// --acme-http.
func relayTLS(f relayFile, data string, log *slog.Logger) (*tls.Config, http.Handler, error) {
	files := f.TLSCert != "" || f.TLSKey != ""
	acmeSet := len(f.ACMEDomains) > 0
	switch {
	case files && acmeSet:
		return nil, nil, usageErrorf("--tls-cert/--tls-key and --acme-domain exclude each other: give the certificate's files, or let the relay obtain one by ACME")
	case files && (f.TLSCert == "" || f.TLSKey == ""):
		return nil, nil, usageErrorf("--tls-cert and --tls-key go together: the certificate chain and its private key (PEM files)")
	case !acmeSet && (f.ACMEEmail != "" || f.ACMECache != "" || f.ACMEDirectory != "" || f.ACMEHTTP != ""):
		return nil, nil, usageErrorf("the --acme-* settings need --acme-domain NAME (the domain the relay obtains a certificate for)")
	case files:
		cf, err := relay.LoadCertFiles(f.TLSCert, f.TLSKey)
		if err != nil {
			return nil, nil, err
		}
		cf.OnReloadError = func(err error) {
			log.Warn("the TLS certificate files changed but do not load; the previous certificate is served", "cert", f.TLSCert, "key", f.TLSKey, "err", oneLine(err.Error()))
		}
		return &tls.Config{GetCertificate: cf.GetCertificate}, nil, nil
	case acmeSet:
		cache := f.ACMECache
		if cache == "" {
			cache = filepath.Join(data, acmeCacheDir)
		}
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      autocert.DirCache(cache),
			HostPolicy: autocert.HostWhitelist(f.ACMEDomains...),
			Email:      f.ACMEEmail,
		}
		if f.ACMEDirectory != "" {
			m.Client = &acme.Client{DirectoryURL: f.ACMEDirectory}
		}
		conf := m.TLSConfig()
		get := conf.GetCertificate
		conf.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, err := get(hello)
			if err != nil {
				// A name not in --acme-domain (a scanner's, mostly) or a CA
				// that failed: the client sees a failed handshake.
				log.Debug("no certificate for a TLS handshake", "server_name", hello.ServerName, "err", oneLine(err.Error()))
			}
			return c, err
		}
		return conf, m.HTTPHandler(nil), nil
	}
	return nil, nil, nil
}

// serveACMEHTTP serves ACME's HTTP-01 challenges (and redirects every
// other request to https) on addr until the function it returns is
// called; bound is the address it listens on.
func serveACMEHTTP(addr string, h http.Handler, log *slog.Logger) (stop func(), bound net.Addr, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--acme-http %s: %w", addr, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("acme http listener", "err", oneLine(err.Error()))
		}
	}()
	log.Info("answering ACME HTTP-01 challenges", "listen", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		<-done
	}, ln.Addr(), nil
}
