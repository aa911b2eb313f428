package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// Benchmarks of attachments (docs/benchmarks.md, "Attachments"): attach
// and fetch of a 20 MiB file through a loopback relay whose store is on
// the same disk, each against a plain copy of the same file on that disk
// (reported as x-cp: the transfer's time over the copy's), and the share
// of an edited file that is uploaded again.

const benchFileSize = 20 << 20

type benchDesk struct {
	alice, bob *Node
	p, task    event.ID
	dir        string
}

func benchMember(b *testing.B, name string) *Node {
	dir := b.TempDir()
	id, err := identity.New(name, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	if err := keystore.Create(dir, id, []byte("pw"), keystore.InsecureTestKDF, rand.Reader); err != nil {
		b.Fatal(err)
	}
	n, err := Open(context.Background(), dir, id, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

func newBenchDesk(b *testing.B) *benchDesk { return newBenchDeskDelayed(b, 0) }

// wanDelay is what each blob put or get waits on the relay in the *WAN
// benchmarks: a round trip to a relay across the internet is tens of
// milliseconds, through Tor hundreds; 30 ms is a near, fast one.
const wanDelay = 30 * time.Millisecond

// delayed holds each blob put or get of next for delay before serving it.
func delayed(next http.Handler, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/blobs/") && r.URL.Path != "/v1/blobs/have" {
			time.Sleep(delay)
		}
		next.ServeHTTP(w, r)
	})
}

// newBenchDeskDelayed is a desk whose relay holds each blob request for
// delay (0: none).
func newBenchDeskDelayed(b *testing.B, delay time.Duration) *benchDesk {
	ctx := context.Background()
	d := &benchDesk{dir: b.TempDir()}
	st, err := relay.OpenSQLite(ctx, filepath.Join(d.dir, "relay.db"))
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(delayed(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler(), delay))
	b.Cleanup(func() { ts.Close(); st.Close() })
	d.alice, d.bob = benchMember(b, "Alice"), benchMember(b, "Bob")
	c, _ := charter.Template("desk")
	if d.p, err = d.alice.Create(ctx, c); err != nil {
		b.Fatal(err)
	}
	if _, err := d.alice.SetRelays(ctx, d.p, []string{ts.URL}, nil, DoOptions{}); err != nil {
		b.Fatal(err)
	}
	code, _, err := d.alice.Invite(ctx, d.p, "researcher", 0, 1, DoOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.alice.Sync(ctx, d.p, SyncOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := d.bob.Join(ctx, code, DoOptions{}); err != nil {
		b.Fatal(err)
	}
	d.alice.Sync(ctx, d.p, SyncOptions{})
	res, err := d.alice.Act(ctx, d.p, &state.TaskCreate{Title: "Review", VisibleTo: []string{"researcher"}}, DoOptions{})
	if err != nil {
		b.Fatal(err)
	}
	d.task = res.Event.ID()
	return d
}

func (d *benchDesk) file(b *testing.B, name string, seed byte) (string, []byte) {
	data := make([]byte, benchFileSize)
	mrand.NewChaCha8([32]byte{seed}).Read(data)
	path := filepath.Join(d.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	return path, data
}

// copyTime is the best of three plain copies of path on the same disk
// (read, write, close: what cp does).
func copyTime(b *testing.B, path string) time.Duration {
	best := time.Duration(1 << 62)
	for i := range 3 {
		start := time.Now()
		in, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(filepath.Join(filepath.Dir(path), "cp-"+string(rune('a'+i))))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			b.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			b.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

// BenchmarkAttach attaches a fresh 20 MiB file each round: cut, seal,
// cache, put every blob on the relay, publish the manifest.
func BenchmarkAttach(b *testing.B) { benchAttach(b, 0) }

// BenchmarkAttachWAN is BenchmarkAttach through a relay that holds each
// blob request wanDelay: what overlapping transfers are for.
func BenchmarkAttachWAN(b *testing.B) { benchAttach(b, wanDelay) }

func benchAttach(b *testing.B, delay time.Duration) {
	ctx := context.Background()
	d := newBenchDeskDelayed(b, delay)
	b.SetBytes(benchFileSize)
	var cp time.Duration
	var spent time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		path, _ := d.file(b, "f.bin", byte(i))
		cp += copyTime(b, path)
		b.StartTimer()
		start := time.Now()
		if _, err := d.alice.Attach(ctx, d.p, d.task.String(), path, nil); err != nil {
			b.Fatal(err)
		}
		spent += time.Since(start)
	}
	b.ReportMetric(float64(spent)/float64(cp), "x-cp")
}

// BenchmarkFetch fetches a 20 MiB file with an empty blob cache each
// round: get every blob from the relay, verify, decrypt, write.
func BenchmarkFetch(b *testing.B) { benchFetch(b, 0) }

// BenchmarkFetchWAN is BenchmarkFetch through a relay that holds each
// blob request wanDelay.
func BenchmarkFetchWAN(b *testing.B) { benchFetch(b, wanDelay) }

func benchFetch(b *testing.B, delay time.Duration) {
	ctx := context.Background()
	d := newBenchDeskDelayed(b, delay)
	path, data := d.file(b, "f.bin", 1)
	res, err := d.alice.Attach(ctx, d.p, d.task.String(), path, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.alice.Sync(ctx, d.p, SyncOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := d.bob.Sync(ctx, d.p, SyncOptions{}); err != nil {
		b.Fatal(err)
	}
	cp := copyTime(b, path)
	out := filepath.Join(d.dir, "out.bin")
	b.SetBytes(benchFileSize)
	var spent time.Duration
	for b.Loop() {
		b.StopTimer()
		os.RemoveAll(filepath.Join(d.bob.home, BlobDir))
		b.StartTimer()
		start := time.Now()
		if _, err := d.bob.Fetch(ctx, d.p, d.task.String(), res.Event.ID().String(), out, nil); err != nil {
			b.Fatal(err)
		}
		spent += time.Since(start)
	}
	b.ReportMetric(float64(spent)/float64(b.N)/float64(cp), "x-cp")
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		b.Fatal("fetched another file")
	}
}

// BenchmarkAttachEdited attaches a 20 MiB file, then the same file with
// a paragraph inserted in the middle, and reports the share of the
// edited file's blob bytes that were uploaded again (dedup: 1 minus it).
func BenchmarkAttachEdited(b *testing.B) {
	ctx := context.Background()
	d := newBenchDesk(b)
	var uploaded float64
	var chunks, sent int
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		path, data := d.file(b, "v1.bin", byte(100+i))
		if _, err := d.alice.Attach(ctx, d.p, d.task.String(), path, nil); err != nil {
			b.Fatal(err)
		}
		edited := append(bytes.Clone(data[:benchFileSize/2]), "A paragraph inserted by the editor."...)
		edited = append(edited, data[benchFileSize/2:]...)
		path2 := filepath.Join(d.dir, "v2.bin")
		if err := os.WriteFile(path2, edited, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := d.alice.Attach(ctx, d.p, d.task.String(), path2, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		uploaded += float64(res.BlobSent)
		chunks += res.Chunks
		sent += res.Sent
		b.StartTimer()
	}
	b.ReportMetric(float64(sent)/float64(chunks), "chunks-reuploaded-share")
	b.ReportMetric(uploaded/float64(b.N)/benchFileSize, "bytes-reuploaded-share")
}
