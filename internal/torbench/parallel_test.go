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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/internal/tortest"
)

// parallelTotal is what TestTorRawParallel moves each time: the size of
// a 10,000-event catch-up.
const parallelTotal = 10 << 20

// TestTorRawParallel asks whether one onion circuit's transfer is bound
// by Tor's windows (one circuit's flow control: then several circuits in
// parallel carry more) or by the machine's CPU (every tor of the network
// on two cores: then nothing on the client's side helps). It moves
// 10 MiB through an onion service split across 1, 2, 4 and 8 streams,
// each on its own circuit (its own isolation credentials), and across
// 2, 4 and 8 streams on one circuit, and reports the throughput and the
// CPU the network's tor processes (and this process) used meanwhile.
// PURSUANCE_TOR_BENCH=1, like TestTorRaw.
func TestTorRawParallel(t *testing.T) {
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
	blob := make([]byte, parallelTotal)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.Atoi(r.URL.Query().Get("n"))
		size = min(max(size, 0), len(blob))
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(blob[:size])
	})}
	go srv.Serve(ln)
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
	url := "http://" + onion
	// client returns an HTTP client whose connections share one
	// isolation string (one circuit), keeping up to 8 idle.
	client := func(isolation string) *http.Client {
		hc := app.HTTPClient(torDial(cli), isolation)
		hc.Transport.(*http.Transport).MaxIdleConnsPerHost = 8
		return hc
	}
	get := func(hc *http.Client, size int) error {
		resp, err := hc.Get(fmt.Sprintf("%s/?n=%d", url, size))
		if err != nil {
			return err
		}
		k, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && int(k) != size {
			err = fmt.Errorf("%d of %d bytes", k, size)
		}
		return err
	}
	// parallel makes one GET of size on each client at once and
	// returns when all are read.
	parallel := func(hcs []*http.Client, size int) time.Duration {
		t.Helper()
		start := time.Now()
		errs := make([]error, len(hcs))
		var wg sync.WaitGroup
		for i, hc := range hcs {
			wg.Go(func() { errs[i] = get(hc, size) })
		}
		wg.Wait()
		d := time.Since(start)
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	if err := waitReachable(ctx, client("warm"), url); err != nil {
		t.Fatal(err)
	}
	type config struct {
		name string
		hcs  []*http.Client
	}
	var configs []config
	for _, k := range []int{1, 2, 4, 8} {
		hcs := make([]*http.Client, k)
		for i := range hcs {
			hcs[i] = client(fmt.Sprintf("circuits-%d-%d", k, i))
		}
		configs = append(configs, config{fmt.Sprintf("%d stream(s), %d circuit(s)", k, k), hcs})
	}
	for _, k := range []int{2, 4, 8} {
		hc := client(fmt.Sprintf("one-circuit-%d", k))
		hcs := make([]*http.Client, k)
		for i := range hcs {
			hcs[i] = hc
		}
		configs = append(configs, config{fmt.Sprintf("%d streams, 1 circuit", k), hcs})
	}
	// Build every circuit and open every stream before timing: a small
	// request on each, then 1 MiB to open the windows.
	for _, c := range configs {
		parallel(c.hcs, 100)
		parallel(c.hcs, (1<<20)/len(c.hcs))
	}
	t.Logf("load average %s; %d tor processes in this namespace", loadavg(), len(torPIDs()))
	const rounds = 3
	for _, c := range configs {
		var ds []time.Duration
		var torCPU, selfCPU, machineBusy float64
		for range rounds {
			before := takeCPU()
			ds = append(ds, parallel(c.hcs, parallelTotal/len(c.hcs)))
			after := takeCPU()
			torCPU += after.tor - before.tor
			selfCPU += after.self - before.self
			machineBusy += after.busyShare(before)
		}
		wall := mean(ds).Seconds() * rounds
		mib := float64(parallelTotal) / (1 << 20)
		t.Logf("%-24s %s: %.2f MiB/s; tor CPU %.2f cores, this process %.2f, machine busy %.0f%%",
			c.name+":", runs(ds), mib/mean(ds).Seconds(), torCPU/wall, selfCPU/wall, 100*machineBusy/rounds)
	}
}

// cpu is a snapshot of CPU time used, in seconds.
type cpu struct {
	tor, self     float64 // tor processes of this namespace; this process
	machine, idle float64 // every CPU of the machine (/proc/stat): total, idle
}

// clockTicks is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTicks = 100

func takeCPU() cpu {
	var c cpu
	for _, pid := range torPIDs() {
		c.tor += procCPU(strconv.Itoa(pid))
	}
	c.self = procCPU("self")
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		for i, f := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			c.machine += v / clockTicks
			if i == 3 || i == 4 { // idle, iowait
				c.idle += v / clockTicks
			}
		}
	}
	return c
}

// busyShare is the share of the machine's CPU time that was not idle
// between b and c.
func (c cpu) busyShare(b cpu) float64 {
	total := c.machine - b.machine
	if total <= 0 {
		return 0
	}
	return 1 - (c.idle-b.idle)/total
}

// procCPU is /proc/<pid>/stat's utime+stime in seconds (0 if gone).
func procCPU(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64) // field 14, utime
	k, _ := strconv.ParseFloat(f[12], 64) // field 15, stime
	return (u + k) / clockTicks
}

// torPIDs lists the tor processes in this process's network namespace
// (inside tortest's namespace: the private network's and the members').
func torPIDs() []int {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "tor" {
			continue
		}
		if ns, _ := os.Readlink("/proc/" + e.Name() + "/ns/net"); ns == self {
			out = append(out, pid)
		}
	}
	return out
}
