package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
)

// relayProc is a `pursuance relay` process.
type relayProc struct {
	cmd *exec.Cmd
	url string
}

func startRelay(t *testing.T, data string, args ...string) *relayProc {
	t.Helper()
	bin, err := exec.LookPath("pursuance")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"relay", "--listen", "127.0.0.1:0", "--data", data, "--log-level", "warn"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") && !strings.HasPrefix(line, "https://") {
		cmd.Process.Kill()
		t.Fatalf("relay did not print its URL: %q %v", line, err)
	}
	go func() { // keep draining its logs
		b := make([]byte, 4096)
		for {
			if _, err := stderr.Read(b); err != nil {
				return
			}
		}
	}()
	return &relayProc{cmd: cmd, url: strings.TrimSpace(line)}
}

// TestRelaySurvivesSIGKILL runs a real relay process, appends to it from
// several writers, kills it with SIGKILL at a random instant, restarts it
// on the same data, and checks that every acknowledged envelope is there;
// three times over.
func TestRelaySurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	data := t.TempDir()
	k := keys.Key{Scope: keys.Scope{Pursuance: event.ID{7}}, Gen: 1}
	k.Seed[0] = 7
	topic, key, err := k.Topic()
	if err != nil {
		t.Fatal(err)
	}
	acked := map[[32]byte]bool{}
	var mu sync.Mutex
	for round := range 3 {
		p := startRelay(t, data)
		c := relay.NewClient(p.url, nil)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for ctx.Err() == nil {
					envs := make([][]byte, 4)
					for i := range envs {
						envs[i] = make([]byte, 1024)
						rand.Read(envs[i])
					}
					if _, err := c.Append(ctx, topic, key, envs); err != nil {
						return // the relay died: not acknowledged
					}
					mu.Lock()
					for _, e := range envs {
						acked[sha256.Sum256(e)] = true
					}
					mu.Unlock()
				}
			})
		}
		var d [1]byte
		rand.Read(d[:])
		time.Sleep(150*time.Millisecond + time.Duration(d[0])*2*time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.cmd.Wait()
		cancel()
		wg.Wait()
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n == 0 {
			t.Fatalf("round %d: nothing was acknowledged before the kill", round)
		}
		// Restart and read everything back.
		p = startRelay(t, data)
		c = relay.NewClient(p.url, nil)
		have := map[[32]byte]bool{}
		var after uint64
		for {
			res, err := c.Read(context.Background(), topic, after, relay.MaxReadLimit)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Entries) == 0 {
				break
			}
			for _, e := range res.Entries {
				have[sha256.Sum256(e.Envelope)] = true
			}
			after = res.Entries[len(res.Entries)-1].Cursor
		}
		lost := 0
		for h := range acked {
			if !have[h] {
				lost++
			}
		}
		if lost > 0 {
			t.Fatalf("round %d: %d of %d acknowledged envelopes lost", round, lost, len(acked))
		}
		t.Logf("round %d: %d acknowledged, all there (%d stored)", round, len(acked), len(have))
		// A graceful stop: SIGTERM, exit status 0.
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("round %d: SIGTERM: %v", round, err)
		}
	}
}

// TestRelayCommand: the URL on stderr, /healthz, a config file, and a
// clear error without --data.
func TestRelayCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "relay.yaml")
	if err := os.WriteFile(cfg, []byte("data: "+filepath.Join(dir, "data")+"\nretention-age: 30d\nlog-format: json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startRelay(t, filepath.Join(dir, "ignored"), "--config", cfg, "--data", filepath.Join(dir, "flag"))
	defer p.cmd.Process.Kill()
	c := relay.NewClient(p.url, nil)
	res, err := c.Read(context.Background(), keys.Topic{1}, 0, 10)
	if err != nil || len(res.Entries) != 0 {
		t.Fatalf("read: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "flag", "relay.db")); err != nil {
		t.Errorf("the --data flag did not override the file: %v", err)
	}
	bin, _ := exec.LookPath("pursuance")
	out, err := exec.Command(bin, "relay", "--listen", "127.0.0.1:0").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !bytes.Contains(out, []byte("missing --data DIR")) {
		t.Errorf("without --data: %v %s", err, out)
	}
}
