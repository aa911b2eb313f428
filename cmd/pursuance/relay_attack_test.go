package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
)

// The attacks of issue 11 §2 against a real relay process. Each runs for
// attackTime against a fresh relay (so the peak RSS, VmHWM, is that
// attack's), from loopback source addresses 127.0.0.2 and up, while an
// honest member on 127.0.0.1 appends to and reads back its own topic and
// a prober times GET /healthz. The targets: the relay's peak RSS stays
// under 256 MB, /healthz answers within 100 ms, and the honest member
// keeps syncing: every round succeeds (retrying as a member's sync does),
// at least one a second.
//
// PURSUANCE_ATTACK_SECONDS=N runs each attack for N seconds instead of 3;
// PURSUANCE_ATTACK_RELAY_ARGS adds flags to every relay attacked (to
// measure settings).
const (
	maxRelayRSS     = 256_000_000
	maxHealthzDelay = 100 * time.Millisecond
	megaEnvelope    = 1 << 20 // the largest envelope size
)

func attackTime() time.Duration {
	if s := os.Getenv("PURSUANCE_ATTACK_SECONDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return 3 * time.Second
}

// buildRelay builds the command without -race (the race detector would
// multiply the relay's memory, which is what is measured).
func buildRelay(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pursuance")
	cmd := exec.Command(goCommand(t), "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// goCommand returns the go command that runs this test.
func goCommand(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("this test builds the relay: %v", err)
	}
	return gobin
}

// runWithoutRace runs the tests named by pattern in this package's test
// binary built without -race, and fails if they fail.
func runWithoutRace(t *testing.T, pattern string) {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "pursuance.test")
	build := exec.Command(goCommand(t), "test", "-c", "-o", exe, ".")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	cmd := exec.Command(exe, "-test.run="+pattern, "-test.v", "-test.count=1")
	out, err := cmd.CombinedOutput()
	t.Logf("without -race:\n%s", out)
	if err != nil {
		t.Fatalf("%s without -race: %v", pattern, err)
	}
}

// attackedRelay is a relay process under attack.
type attackedRelay struct {
	cmd  *exec.Cmd
	url  string
	addr string
	logs *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startAttackedRelay(t *testing.T, bin string, args ...string) *attackedRelay {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"relay", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stderr)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("relay did not print its URL: %q %v", line, err)
	}
	logs := &lockedBuffer{}
	go io.Copy(logs, r)
	p := &attackedRelay{cmd: cmd, url: strings.TrimSpace(line), logs: logs}
	p.addr = strings.TrimPrefix(p.url, "http://")
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	return p
}

// memory returns the process's resident set now and at its peak.
func (p *attackedRelay) memory(t *testing.T) (rss, hwm int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading the relay's memory: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmRSS:":
				rss = n << 10
			case "VmHWM:":
				hwm = n << 10
			}
		}
	}
	return rss, hwm
}

// from returns an HTTP client whose connections come from source address
// 127.0.0.(2+i): an attacker's address, distinct from the honest
// member's 127.0.0.1. Linux routes all of 127/8 to loopback.
func from(i int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         attackerDialer(i).DialContext,
		MaxIdleConnsPerHost: 1024,
	}}
}

func attackerDialer(i int) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}, Timeout: 5 * time.Second}
}

// topicKey returns a fresh topic and its key: anyone can make one.
func topicKey(t testing.TB) (keys.Topic, *identity.SigningKey) {
	t.Helper()
	k := keys.Key{Scope: keys.Scope{Pursuance: event.ID{0xa7}}, Gen: 1}
	rand.Read(k.Seed[:])
	topic, key, err := k.Topic()
	if err != nil {
		t.Fatal(err)
	}
	return topic, key
}

// randomEnvelopes returns n distinct envelopes of size bytes.
func randomEnvelopes(n, size int) [][]byte {
	envs := make([][]byte, n)
	for i := range envs {
		envs[i] = make([]byte, size)
		rand.Read(envs[i][:64])
	}
	return envs
}

// outcome is what the honest member and the prober saw during an attack.
type outcome struct {
	rounds, failed int
	lastErr        error
	probes         []time.Duration
}

// watch runs the honest member and the healthz prober until ctx ends.
func watch(ctx context.Context, t *testing.T, url string) func() outcome {
	t.Helper()
	var o outcome
	var mu sync.Mutex
	var wg sync.WaitGroup
	honest := relay.NewClient(url, &http.Client{Timeout: 10 * time.Second})
	topic, key := topicKey(t)
	wg.Go(func() {
		var cursor uint64
		for ctx.Err() == nil {
			env := randomEnvelopes(1, 1024)
			err := retryHonest(func() error {
				rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err := honest.Append(rctx, topic, key, env)
				return err
			})
			if err == nil {
				err = retryHonest(func() error {
					rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					res, err := honest.Read(rctx, topic, cursor, 100)
					if err != nil {
						return err
					}
					if len(res.Entries) != 1 || !bytes.Equal(res.Entries[0].Envelope, env[0]) {
						return fmt.Errorf("read back %d entries after %d, not the one appended", len(res.Entries), cursor)
					}
					cursor = res.Entries[0].Cursor
					return nil
				})
			}
			mu.Lock()
			o.rounds++
			if err != nil {
				o.failed++
				o.lastErr = err
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	// A new connection per probe: a probe also measures being accepted.
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	wg.Go(func() {
		for ctx.Err() == nil {
			start := time.Now()
			resp, err := probe.Get(url + "/healthz")
			d := time.Since(start)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					d = probe.Timeout
				}
			} else {
				d = probe.Timeout
			}
			mu.Lock()
			o.probes = append(o.probes, d)
			mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(150 * time.Millisecond):
			}
		}
	})
	return func() outcome {
		wg.Wait()
		return o
	}
}

// retryHonest retries what a member's sync retries (app's retry: a
// refusal that says "later", four attempts over about 1.5 s).
func retryHonest(fn func() error) error {
	delay := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt == 3 || !relay.IsRetryable(err) {
			return err
		}
		time.Sleep(delay)
		delay *= 2
	}
}

type attack struct {
	name string
	args []string // relay flags for this attack
	// setup runs before the clock starts; run attacks until ctx ends and
	// returns a line for the log.
	setup func(t *testing.T, p *attackedRelay) any
	run   func(ctx context.Context, t *testing.T, p *attackedRelay, state any) string
}

// TestRelayUnderAttack: each attack of issue 11 §2 against a real relay
// process, with the targets checked.
//
// How /healthz is judged: the median of probes every 150 ms over the
// attack, each on a new connection, must be under 100 ms. The median, not
// the maximum: this machine (2 cores) also runs the attacker, the honest
// member and, in CI, other packages' tests under -race; a single probe
// that waits for a core says nothing about the relay. A relay that keeps
// /healthz waiting behind the attack (a full connection table, a stalled
// accept loop) fails most probes, and so the median.
func TestRelayUnderAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc and uses loopback addresses beyond 127.0.0.1")
	}
	if raceEnabled {
		// The relay under test is built without -race; so is this
		// harness (attacker, honest member, prober), run as a child:
		// the race detector's cost here would slow the attack and delay
		// the probes, measuring the harness instead of the relay.
		runWithoutRace(t, "^TestRelayUnderAttack$")
		return
	}
	bin := buildRelay(t)
	d := attackTime()
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			p := startAttackedRelay(t, bin, append(a.args, strings.Fields(os.Getenv("PURSUANCE_ATTACK_RELAY_ARGS"))...)...)
			var state any
			if a.setup != nil {
				state = a.setup(t, p)
			}
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			done := watch(ctx, t, p.url)
			line := a.run(ctx, t, p, state)
			o := done()
			_, hwm := p.memory(t)
			slices.Sort(o.probes)
			var p50, worst time.Duration
			if len(o.probes) > 0 {
				p50, worst = o.probes[len(o.probes)/2], o.probes[len(o.probes)-1]
			}
			t.Logf("%s: peak RSS %.1f MB; healthz p50 %v, max %v (%d probes); honest rounds %d, failed %d; %s",
				a.name, float64(hwm)/1e6, p50.Round(time.Millisecond), worst.Round(time.Millisecond), len(o.probes), o.rounds, o.failed, line)
			if hwm > maxRelayRSS {
				t.Errorf("peak RSS %.1f MB, over %d MB", float64(hwm)/1e6, maxRelayRSS/1_000_000)
			}
			if len(o.probes) == 0 || p50 > maxHealthzDelay {
				t.Errorf("healthz p50 %v over %v", p50, maxHealthzDelay)
			}
			if o.rounds < int(d/time.Second) || o.failed > 0 {
				t.Errorf("honest member: %d of %d rounds failed (at least %d wanted, one a second); last: %v", o.failed, o.rounds, int(d/time.Second), o.lastErr)
			}
			if t.Failed() {
				t.Logf("relay log:\n%.4000s", p.logs.String())
			}
		})
	}
}

var attacks = []attack{
	{
		// Readers that never read: 64 GETs of a 20 MiB topic from 8
		// addresses, their sockets' receive buffers small.
		name:  "slow_readers",
		setup: fillTopic(20),
		run: func(ctx context.Context, t *testing.T, p *attackedRelay, state any) string {
			topic := state.(keys.Topic)
			var wg sync.WaitGroup
			var opened, answered atomic.Int64
			for i := range 64 {
				wg.Go(func() {
					d := attackerDialer(i % 8)
					d.Control = smallReceiveBuffer
					c, err := d.DialContext(ctx, "tcp", p.addr)
					if err != nil {
						return
					}
					defer c.Close()
					opened.Add(1)
					fmt.Fprintf(c, "GET /v1/topics/%s?limit=%d HTTP/1.1\r\nHost: relay\r\n\r\n", relay.TopicHex(topic), relay.MaxReadLimit)
					// Read the status line only, then nothing more.
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					if line, err := bufio.NewReaderSize(c, 16).ReadString('\n'); err == nil && strings.Contains(line, " 200 ") {
						answered.Add(1)
					}
					<-ctx.Done()
				})
			}
			wg.Wait()
			return fmt.Sprintf("%d readers connected, %d answered 200", opened.Load(), answered.Load())
		},
	},
	{
		// One topic, two subscribers (one reading, one not), and as many
		// 15 MiB appends of distinct 1 MiB envelopes as the relay takes.
		name: "live_hub",
		run: func(ctx context.Context, t *testing.T, p *attackedRelay, _ any) string {
			topic, key := topicKey(t)
			hc := from(0)
			sctx, stop := context.WithCancel(context.Background())
			defer stop()
			var wg sync.WaitGroup
			var delivered atomic.Int64
			wg.Go(func() {
				relay.NewClient(p.url, hc).Subscribe(sctx, topic, 0, func(es []relay.Entry) error {
					delivered.Add(int64(len(es)))
					return nil
				})
			})
			u := fmt.Sprintf("ws://%s/v1/topics/%s/live", p.addr, relay.TopicHex(topic))
			if c, _, err := websocket.Dial(sctx, u, &websocket.DialOptions{HTTPClient: hc}); err == nil {
				defer c.CloseNow() // never read
			}
			stored := appendFlood(ctx, relay.NewClient(p.url, hc), 4, func() (keys.Topic, *identity.SigningKey) { return topic, key })
			stop()
			wg.Wait()
			return fmt.Sprintf("%d MiB stored, %d envelopes delivered", stored>>20, delivered.Load())
		},
	},
	{
		// Fresh topics, each written with 15 MiB appends, from 2
		// addresses as fast as the relay takes them, against an
		// operator's quotas: 2 new topics an hour per address, 16 MiB a
		// topic. What the attackers store is bounded by them (64 MiB).
		name: "disk_fill",
		args: []string{"--new-topics-per-hour", "2", "--topic-quota", strconv.Itoa(16 << 20)},
		run: func(ctx context.Context, t *testing.T, p *attackedRelay, _ any) string {
			var stored atomic.Int64
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Go(func() {
					topic, key := topicKey(t)
					writes := 0
					stored.Add(appendFlood(ctx, relay.NewClient(p.url, from(i)), 2, func() (keys.Topic, *identity.SigningKey) {
						// A topic takes one append; then a fresh one.
						if writes++; writes > 1 {
							topic, key = topicKey(t)
						}
						return topic, key
					}))
				})
			}
			wg.Wait()
			if n := stored.Load(); n > 2*2*16<<20 {
				t.Errorf("the attackers stored %d MiB, over their quotas' 64", n>>20)
			}
			return fmt.Sprintf("%d MiB stored", stored.Load()>>20)
		},
	},
	{
		// 64 appends of 15 MiB at once, again and again, from 8
		// addresses (the same body: each is read and checked in full,
		// then found to be a replay).
		name: "big_appends",
		run: func(ctx context.Context, t *testing.T, p *attackedRelay, _ any) string {
			topic, key := topicKey(t)
			body, err := relay.EncodeAppend(topic, key, randomEnvelopes(15, megaEnvelope))
			if err != nil {
				t.Fatal(err)
			}
			var sent, refused atomic.Int64
			var wg sync.WaitGroup
			for i := range 64 {
				hc := from(i % 8)
				wg.Go(func() {
					for ctx.Err() == nil {
						req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/v1/topics/"+relay.TopicHex(topic), bytes.NewReader(body))
						resp, err := hc.Do(req)
						if err != nil {
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							sent.Add(1)
						} else {
							refused.Add(1)
							time.Sleep(20 * time.Millisecond)
						}
					}
				})
			}
			wg.Wait()
			return fmt.Sprintf("%d appends taken, %d refused", sent.Load(), refused.Load())
		},
	},
	{
		// 64 appends that announce 15 MiB and send the first 1 MiB of a
		// well-formed body, from 8 addresses.
		name: "slow_uploads",
		run: func(ctx context.Context, t *testing.T, p *attackedRelay, _ any) string {
			topic, key := topicKey(t)
			body, err := relay.EncodeAppend(topic, key, randomEnvelopes(15, megaEnvelope))
			if err != nil {
				t.Fatal(err)
			}
			chunk := body[:1<<20]
			var opened atomic.Int64
			var wg sync.WaitGroup
			for i := range 64 {
				wg.Go(func() {
					c, err := attackerDialer(i%8).DialContext(ctx, "tcp", p.addr)
					if err != nil {
						return
					}
					defer c.Close()
					fmt.Fprintf(c, "POST /v1/topics/%s HTTP/1.1\r\nHost: relay\r\nContent-Length: %d\r\n\r\n", relay.TopicHex(topic), len(body))
					c.SetWriteDeadline(time.Now().Add(time.Second))
					if _, err := c.Write(chunk); err == nil {
						opened.Add(1)
					}
					<-ctx.Done()
				})
			}
			wg.Wait()
			return fmt.Sprintf("%d uploads stalled after 1 MiB", opened.Load())
		},
	},
	{
		// 1,500 live subscriptions, each to its own topic, from 3
		// addresses.
		name: "many_subscriptions",
		run: func(ctx context.Context, t *testing.T, p *attackedRelay, _ any) string {
			var open atomic.Int64
			var wg sync.WaitGroup
			for i := range 3 {
				hc := from(i)
				for range 500 {
					wg.Go(func() {
						var topic keys.Topic
						rand.Read(topic[:])
						u := fmt.Sprintf("ws://%s/v1/topics/%s/live", p.addr, relay.TopicHex(topic))
						c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc})
						if err != nil {
							return
						}
						defer c.CloseNow()
						open.Add(1)
						<-ctx.Done()
					})
				}
			}
			wg.Wait()
			return fmt.Sprintf("%d subscriptions opened", open.Load())
		},
	},
	{
		// 600 connections that send nothing, from one address, to a
		// relay of 512 connections at most.
		name: "connection_flood",
		args: []string{"--max-connections", "512"},
		run: func(ctx context.Context, t *testing.T, p *attackedRelay, _ any) string {
			var open atomic.Int64
			var wg sync.WaitGroup
			for range 600 {
				wg.Go(func() {
					c, err := attackerDialer(0).DialContext(ctx, "tcp", p.addr)
					if err != nil {
						return
					}
					defer c.Close()
					open.Add(1)
					<-ctx.Done()
				})
			}
			wg.Wait()
			return fmt.Sprintf("%d connections opened", open.Load())
		},
	},
}

// fillTopic returns a setup that writes mib MiB into a fresh topic (as
// anyone can) and returns the topic.
func fillTopic(mib int) func(t *testing.T, p *attackedRelay) any {
	return func(t *testing.T, p *attackedRelay) any {
		topic, key := topicKey(t)
		c := relay.NewClient(p.url, from(7))
		for i := 0; i < mib; i += 10 {
			if _, err := c.Append(context.Background(), topic, key, randomEnvelopes(min(10, mib-i), megaEnvelope)); err != nil {
				t.Fatalf("filling the topic: %v", err)
			}
		}
		return topic
	}
}

// appendFlood appends batches of 15 distinct 1 MiB envelopes with
// writers goroutines until ctx ends, each batch to next()'s topic, and
// returns the bytes the relay took.
func appendFlood(ctx context.Context, c *relay.Client, writers int, next func() (keys.Topic, *identity.SigningKey)) int64 {
	var stored atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			envs := randomEnvelopes(15, megaEnvelope)
			for ctx.Err() == nil {
				for _, e := range envs {
					rand.Read(e[:32])
				}
				topic, key := next()
				res, err := c.Append(ctx, topic, key, envs)
				var se *relay.StatusError
				switch {
				case err == nil:
					stored.Add(int64(res.Stored) * megaEnvelope)
				case errors.As(err, &se):
					time.Sleep(20 * time.Millisecond) // refused: try again shortly
				}
			}
		})
	}
	wg.Wait()
	return stored.Load()
}

// TestRelayLimitsFromConfig: the limits are read from the config file
// (here a trusted proxy and one new topic an hour per client), and GET /
// says what the relay is.
func TestRelayLimitsFromConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "relay.yaml")
	if err := os.WriteFile(cfg, []byte("new-topics-per-hour: 1\ntrusted-proxy: [127.0.0.1, \"::1\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startRelay(t, filepath.Join(dir, "data"), "--config", cfg)
	defer func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}()
	newTopic := func(client string) *http.Response {
		topic, key := topicKey(t)
		body, err := relay.EncodeAppend(topic, key, randomEnvelopes(1, 1024))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, p.url+"/v1/topics/"+relay.TopicHex(topic), bytes.NewReader(body))
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := newTopic("203.0.113.1"); resp.StatusCode != 200 {
		t.Fatalf("a first topic: %d", resp.StatusCode)
	}
	if resp := newTopic("203.0.113.1"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a second topic in the hour: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := newTopic("203.0.113.2"); resp.StatusCode != 200 {
		t.Errorf("another client behind the proxy: %d", resp.StatusCode)
	}
	resp, err := http.Get(p.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("Pursuance relay")) {
		t.Errorf("GET /: %d %q", resp.StatusCode, b)
	}
}
