package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/heapprobe"
)

// BenchmarkUpRetained starts `pursuance up --offline` in this process on a
// filled home (PURSUANCE_BENCH_HOME: `pursuance bench fill`, passphrase
// "pw"; it may write a checkpoint into it, so give it a copy), waits until
// it serves a page of the first pursuance's tasks, and reports the heap it
// then holds after a GC ("held-MiB") and the process's peak RSS so far
// ("hwm-MiB", VmHWM, the test binary included). Then it asks for the
// inbox, which loads the state's events from the store as the first round
// would ("load-s", and the highest heap sampled meanwhile,
// "load-peak-heap-MiB"), and posts a task, which extends the state and
// starts a round (the highest heap in the 2 s after,
// "write-peak-heap-MiB"), and reports the RSS then ("loaded-rss-MiB"),
// the heap held and the peak RSS ("loaded-held-MiB", "loaded-hwm-MiB").
// Last, once that round is over ("round-s": a first push to an empty
// relay sends the whole log) and the node has been quiet for settleFor,
// the RSS and the heap held ("settled-rss-MiB", "settled-held-MiB").
// With PURSUANCE_HEAP_PROFILE set, it writes a heap profile there at the
// end (docs/benchmarks.md, "Smaller folds").
//
//	cp -a HOME /tmp/copy
//	PURSUANCE_BENCH_HOME=/tmp/copy go test ./internal/cli -run '^$' -bench UpRetained -benchtime 1x
func BenchmarkUpRetained(b *testing.B) {
	home := os.Getenv(benchHomeVar)
	if home == "" {
		b.Skip(benchHomeVar + " names no filled home")
	}
	for i := 0; i < b.N; i++ {
		os.Remove(home + "/running.json")
		ctx, cancel := context.WithCancel(context.Background())
		e, _, _ := testEnv(map[string]string{"PURSUANCE_HOME": home, "PURSUANCE_PASSPHRASE": "pw"}, nil)
		e.Stdout, e.Stderr = &syncBuffer{}, &syncBuffer{}
		e.Context = ctx
		done := make(chan int)
		start := time.Now()
		go func() {
			done <- Run([]string{"up", "--offline", "--interval", "1h", "--listen", "127.0.0.1:0"}, e)
		}()
		var rf runFile
		for deadline := time.Now().Add(30 * time.Minute); ; {
			var ok bool
			if rf, ok = runningNode(home); ok && rf.Bearer != "" {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("up did not start: %s", e.Stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
		ui := strings.TrimSuffix(rf.UI, "/")
		get := func(path string) []byte {
			req, _ := http.NewRequest("GET", ui+path, nil)
			req.Header.Set("Authorization", "Bearer "+rf.Bearer)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				b.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
			}
			return body
		}
		var ps []struct{ Pursuance string }
		if err := json.Unmarshal(get("/api/pursuances"), &ps); err != nil || len(ps) == 0 {
			b.Fatalf("pursuances: %v", err)
		}
		get("/api/p/" + ps[0].Pursuance + "/tasks?per_status=50")
		serving := time.Since(start)
		held := heapprobe.Held()
		b.ReportMetric(float64(held)/(1<<20), "held-MiB")
		b.ReportMetric(vmHWM()/(1<<20), "hwm-MiB")
		b.ReportMetric(serving.Seconds(), "serving-s")

		// The inbox reads the whole log: the state's events are loaded
		// from the store, as the first round would. Then a write, which
		// extends the state and starts a round.
		p := ps[0].Pursuance
		stop := heapprobe.Peak(10 * time.Millisecond)
		start = time.Now()
		get("/api/p/" + p + "/inbox")
		b.ReportMetric(time.Since(start).Seconds(), "load-s")
		b.ReportMetric(float64(stop())/(1<<20), "load-peak-heap-MiB")
		status := func() (st struct {
			Rounds  uint64 `json:"rounds"`
			Running bool   `json:"round_running"`
		}) {
			if err := json.Unmarshal(get("/api/status"), &st); err != nil {
				b.Fatal(err)
			}
			return st
		}
		before := status()
		if before.Running {
			before.Rounds++ // the write's round comes after this one
		}
		stop = heapprobe.Peak(10 * time.Millisecond)
		req, _ := http.NewRequest("POST", ui+"/api/p/"+p+"/tasks", strings.NewReader(`{"title": "After the load", "visible_to": ["editor"], "due": ""}`))
		req.Header.Set("Authorization", "Bearer "+rf.Bearer)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("POST a task: %d %s", resp.StatusCode, body)
		}
		get("/api/p/" + p + "/tasks?per_status=50")
		time.Sleep(2 * time.Second) // the round the write started
		b.ReportMetric(float64(stop())/(1<<20), "write-peak-heap-MiB")
		b.ReportMetric(procStatus("VmRSS")/(1<<20), "loaded-rss-MiB") // before Held's collections
		held = heapprobe.Held()
		heapprobe.WriteProfile(b)
		b.ReportMetric(float64(held)/(1<<20), "loaded-held-MiB")
		b.ReportMetric(vmHWM()/(1<<20), "loaded-hwm-MiB")

		// Settled: the write's round over (a first push to an empty
		// relay sends the whole log), then a quiet while. This is what
		// the node holds serving a loaded state between rounds.
		start = time.Now()
		for deadline := start.Add(10 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			if st := status(); st.Rounds > before.Rounds && !st.Running {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the write's round did not end")
			}
		}
		b.ReportMetric(time.Since(start).Seconds(), "round-s")
		time.Sleep(settleFor)
		b.ReportMetric(procStatus("VmRSS")/(1<<20), "settled-rss-MiB")
		b.ReportMetric(float64(heapprobe.Held())/(1<<20), "settled-held-MiB")
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatal("up did not stop")
		}
	}
}

// settleFor is how long BenchmarkUpRetained leaves the node quiet before
// it samples what the node holds between rounds.
const settleFor = 5 * time.Second

// vmHWM returns the process's peak resident set size (Linux), 0 elsewhere.
func vmHWM() float64 { return procStatus("VmHWM") }

// procStatus returns a size /proc/self/status gives (VmHWM, VmRSS), in
// bytes; 0 where there is none (not Linux).
func procStatus(name string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == name+":" {
			var kb float64
			if err := json.Unmarshal([]byte(f[1]), &kb); err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}
