package torbench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/internal/tortest"
)

// TestTorRaw measures the private network itself, without Pursuance's
// protocol: the round trip of a small request and the throughput of one
// large answer through an onion service (a plain HTTP server published
// with the product's tor.Publish, fetched through another member's tor),
// beside the same over loopback. It is the floor under the catch-up's
// ratio. PURSUANCE_TOR_BENCH=1, like TestTorBench.
func TestTorRaw(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skipf("set %s=1 (docs/benchmarks.md)", benchEnv)
	}
	tortest.Skip(t)
	n := tortest.Shared(t)
	svc, cli := memberTor(t, n), memberTor(t, n)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 16<<20)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(blob[:min(size, len(blob))])
	})}
	go srv.Serve(ln)
	sock := filepath.Join(t.TempDir(), "s.sock")
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(uln)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), reachTimeout)
	defer cancel()
	onion, err := svc.Publish(ctx, filepath.Join(t.TempDir(), "onion.key"), 80, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.WaitPublished(ctx, onion); err != nil {
		t.Fatal(err)
	}
	onionU, err := svc.Publish(ctx, filepath.Join(t.TempDir(), "onion.key"), 80, "unix:"+sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.WaitPublished(ctx, onionU); err != nil {
		t.Fatal(err)
	}
	hcTor := app.HTTPClient(torDial(cli), "raw")
	hcLo := app.HTTPClient(nil, "")
	torURL, loURL := "http://"+onion, "http://"+ln.Addr().String()
	get := func(hc *http.Client, url string, size int) time.Duration {
		t.Helper()
		start := time.Now()
		resp, err := hc.Get(fmt.Sprintf("%s/?n=%d", url, size))
		if err != nil {
			t.Fatal(err)
		}
		k, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || int(k) != size {
			t.Fatalf("%d of %d bytes: %v", k, size, err)
		}
		return time.Since(start)
	}
	// Reach the services (tor may need its retry), then warm both paths.
	unixURL := "http://" + onionU
	for _, u := range []string{torURL, unixURL} {
		if err := waitReachable(ctx, hcTor, u); err != nil {
			t.Fatal(err)
		}
	}
	get(hcTor, unixURL, 1<<20)
	get(hcTor, torURL, 1<<20)
	get(hcLo, loURL, 1<<20)
	var rttLo, rttTor []time.Duration
	for range 20 {
		rttLo = append(rttLo, get(hcLo, loURL, 100))
		rttTor = append(rttTor, get(hcTor, torURL, 100))
	}
	t.Logf("request of 100 bytes (20): loopback p50 %s, Tor p50 %s, p99 %s", quantile(rttLo, 0.5), quantile(rttTor, 0.5), quantile(rttTor, 0.99))
	for _, size := range []int{256 << 10, 1 << 20, 10 << 20} {
		var lo, tr, tu []time.Duration
		for range 3 {
			lo = append(lo, get(hcLo, loURL, size))
			tr = append(tr, get(hcTor, torURL, size))
			tu = append(tu, get(hcTor, unixURL, size))
		}
		mb := float64(size) / (1 << 20)
		t.Logf("%6.2f MiB: loopback %s (%.0f MiB/s), Tor to a TCP port %s (%.2f MiB/s), to a Unix socket %s (%.2f MiB/s)", mb, runs(lo), mb/mean(lo).Seconds(), runs(tr), mb/mean(tr).Seconds(), runs(tu), mb/mean(tu).Seconds())
	}
}
