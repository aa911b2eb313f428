package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// healthTimeout bounds `relay health`: a container's HEALTHCHECK kills it
// after its own timeout anyway; this one says why.
const healthTimeout = 5 * time.Second

// defaultHealthURL is where a relay with the default --listen answers.
const defaultHealthURL = "http://127.0.0.1:8765/healthz"

func newRelayHealthCmd(e *Env) *cobra.Command {
	var url, tlsName string
	cmd := &cobra.Command{
		Use:   "health [--url URL]",
		Short: "Exit 0 if a relay answers GET /healthz, 1 if not",
		Long: `Ask a relay's /healthz and exit 0 when it answers 200: a health check for
a container (the image's HEALTHCHECK) or a supervisor, in an image with no
shell or curl. An https URL is checked as any client would (SSL_CERT_FILE
for an operator's own CA); --tls-name checks the certificate for the
relay's public name while asking its local address.`,
		Example: `  pursuance relay health
  pursuance relay health --url https://relay.example.org/healthz
  pursuance relay health --url https://127.0.0.1:8765/healthz --tls-name relay.example.org`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), healthTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return usageErrorf("--url %q: want the relay's /healthz URL, such as %s", url, defaultHealthURL)
			}
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.Proxy = nil // the relay itself, never a proxy between
			if tlsName != "" {
				tr.TLSClientConfig = &tls.Config{ServerName: tlsName}
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				return fmt.Errorf("the relay at %s does not answer: %s", url, oneLine(err.Error()))
			}
			defer resp.Body.Close()
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("the relay at %s is not healthy: it answered %s", url, resp.Status)
			}
			fmt.Fprintln(e.Stdout, "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", defaultHealthURL, "the relay's health `URL`")
	cmd.Flags().StringVar(&tlsName, "tls-name", "", "with an https URL, check the certificate for `NAME` instead of the URL's host")
	return cmd
}
