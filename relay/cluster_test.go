package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay/natstest"
)

// Faults of a relay cluster, with real processes on loopback: NATS
// servers and relay fronts run as child processes of this test binary
// (TestMain), killed with SIGKILL. Each test takes seconds; the longer
// runs are behind PURSUANCE_LONG_CLUSTER=1.

// frontEnv tells this binary, run as a child, to be a relay front over
// the NATS store named by its value (servers#stream).
const frontEnv = "PURSUANCE_RELAYTEST_FRONT"

// frontMain serves as a relay front and never returns when this binary
// was started as one.
func frontMain() {
	spec := os.Getenv(frontEnv)
	if spec == "" {
		return
	}
	servers, stream, _ := strings.Cut(spec, "#")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := OpenNATS(ctx, servers, NATSOptions{Stream: stream, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "front:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "front:", err)
		os.Exit(2)
	}
	fmt.Printf("ready http://%s\n", ln.Addr())
	NewServer(st, Config{Logger: log}).Serve(ctx, ln)
	st.Close()
	os.Exit(0)
}

// longCluster says whether the long fault runs were asked for.
func longCluster() bool { return os.Getenv("PURSUANCE_LONG_CLUSTER") != "" }

// acked is what a relay acknowledged: an envelope's hash at a cursor.
type acked struct {
	topic  keys.Topic
	cursor uint64
	hash   [32]byte
}

// writer appends batches to its own topic through c until stop closes,
// retrying what fails (the same batch: appends are idempotent), and
// records every acknowledged envelope. It returns the envelopes
// acknowledged and the appends that failed before one went through.
func writer(ctx context.Context, c *Client, id byte, stop <-chan struct{}, sent *atomic.Int64) (acks []acked, retries int, err error) {
	k := keys.Key{Scope: keys.Scope{Pursuance: [32]byte{id, 0xc1}}, Gen: 1}
	k.Seed[0], k.Seed[1] = id, 0xc1
	topic, key, err := k.Topic()
	if err != nil {
		return nil, 0, err
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return acks, retries, nil
		default:
		}
		batch := [][]byte{envelope(1024, byte(i)), envelope(1024, byte(i+1))}
		binaryPut(batch[0], id, i, 0)
		binaryPut(batch[1], id, i, 1)
		for {
			res, err := c.Append(ctx, topic, key, batch)
			if err == nil && len(res.Cursors) == len(batch) {
				for j, env := range batch {
					acks = append(acks, acked{topic, res.Cursors[j], sha256.Sum256(env)})
				}
				sent.Add(int64(len(batch)))
				break
			}
			if ctx.Err() != nil {
				return acks, retries, fmt.Errorf("writer %d: %w (last: %v)", id, ctx.Err(), err)
			}
			retries++
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// binaryPut makes an envelope unique to its writer, batch and place.
func binaryPut(env []byte, id byte, i, j int) {
	env[2], env[3], env[4], env[5], env[6] = id, byte(i>>16), byte(i>>8), byte(i), byte(j)
}

// checkAcked reads every topic whole through c and checks that each
// acknowledged envelope is there, at its cursor.
func checkAcked(t *testing.T, ctx context.Context, c *Client, acks []acked) {
	t.Helper()
	held := map[keys.Topic]map[uint64][32]byte{}
	for _, a := range acks {
		if held[a.topic] == nil {
			held[a.topic] = map[uint64][32]byte{}
			var after uint64
			for {
				page, err := c.Read(ctx, a.topic, after, MaxReadLimit)
				if err != nil {
					t.Fatalf("reading back: %v", err)
				}
				if len(page.Entries) == 0 {
					break
				}
				for _, e := range page.Entries {
					held[a.topic][e.Cursor] = sha256.Sum256(e.Envelope)
				}
				after = page.Entries[len(page.Entries)-1].Cursor
			}
		}
		if h, ok := held[a.topic][a.cursor]; !ok || h != a.hash {
			t.Fatalf("an acknowledged envelope is lost: cursor %d (held: %v)", a.cursor, ok)
		}
	}
}

// streamLeader returns the name of the server leading the stream.
func streamLeader(t *testing.T, ctx context.Context, st *NATS) string {
	t.Helper()
	info, err := st.streamInfo(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil {
		t.Fatal("the stream has no cluster")
	}
	return info.Cluster.Leader
}

// Kill -9 the leader of the stream (one of three JetStream servers) while
// writers append through two fronts: no acknowledged envelope is lost,
// the fronts keep serving (appends are acknowledged again after the
// kill), and a subscriber on one front gets what is appended through the
// other, across the failover, in order and once.
func TestNATSServerKilled(t *testing.T) {
	procs, servers := natstest.Cluster(t, 3)
	run := 4 * time.Second
	if longCluster() {
		run = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), run+60*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var fronts []*httptest.Server
	var stores []*NATS
	for range 2 {
		st, err := OpenNATS(ctx, servers, NATSOptions{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		ts := httptest.NewServer(NewServer(st, Config{Logger: log}).Handler())
		t.Cleanup(ts.Close)
		fronts, stores = append(fronts, ts), append(stores, st)
	}
	if info, err := stores[0].streamInfo(ctx, ""); err != nil || info.Config.Replicas != 3 {
		t.Fatalf("the stream: %v, %v", info, err)
	}
	// A subscriber on front 1 of writer 0's topic, which writes through
	// front 0.
	k := keys.Key{Scope: keys.Scope{Pursuance: [32]byte{0, 0xc1}}, Gen: 1}
	k.Seed[0], k.Seed[1] = 0, 0xc1
	watched, _, _ := k.Topic()
	var live []Entry
	var liveMu sync.Mutex
	sctx, stopSub := context.WithCancel(ctx)
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		c := NewClient(fronts[1].URL, nil)
		var last uint64
		for sctx.Err() == nil {
			c.Subscribe(sctx, watched, last, func(es []Entry) error {
				liveMu.Lock()
				defer liveMu.Unlock()
				for _, e := range es {
					live = append(live, Entry{e.Cursor, bytes.Clone(e.Envelope)})
					last = e.Cursor
				}
				return nil
			})
			time.Sleep(20 * time.Millisecond)
		}
	}()

	const writers = 6
	stop := make(chan struct{})
	var sent atomic.Int64
	type result struct {
		acks    []acked
		retries int
		err     error
	}
	results := make(chan result, writers)
	for w := range writers {
		c := NewClient(fronts[w%2].URL, nil)
		go func() {
			acks, retries, err := writer(ctx, c, byte(w), stop, &sent)
			results <- result{acks, retries, err}
		}()
	}
	time.Sleep(run / 4)
	leader := streamLeader(t, ctx, stores[0])
	before := sent.Load()
	for _, p := range procs {
		if p.Opts.Name == leader {
			p.Kill()
		}
	}
	killedAt := time.Now()
	// The fronts keep serving: appends are acknowledged again.
	for sent.Load() < before+100 {
		if time.Since(killedAt) > 30*time.Second {
			t.Fatalf("no appends acknowledged for 30 s after the stream's leader was killed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	recovered := time.Since(killedAt)
	time.Sleep(run * 3 / 4)
	close(stop)
	var acks []acked
	retries := 0
	for range writers {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		acks, retries = append(acks, r.acks...), retries+r.retries
	}
	t.Logf("%d envelopes acknowledged, %d appends retried; appends acknowledged again %v after the leader (%s) was killed", len(acks), retries, recovered.Round(time.Millisecond), leader)
	checkAcked(t, ctx, NewClient(fronts[1].URL, nil), acks)

	// The subscriber got writer 0's envelopes, in order, each once.
	var want []acked
	for _, a := range acks {
		if a.topic == watched {
			want = append(want, a)
		}
	}
	// The other front's live feed resumes after the failover (within
	// seconds; generous on a loaded machine).
	deadline := time.Now().Add(45 * time.Second)
	for {
		liveMu.Lock()
		n := len(live)
		liveMu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopSub()
	<-subDone
	liveMu.Lock()
	defer liveMu.Unlock()
	if len(live) != len(want) {
		t.Fatalf("the subscriber on the other front got %d entries, %d were acknowledged", len(live), len(want))
	}
	for i, e := range live {
		if e.Cursor != want[i].cursor || sha256.Sum256(e.Envelope) != want[i].hash {
			t.Fatalf("live entry %d: cursor %d, want %d", i, e.Cursor, want[i].cursor)
		}
	}
}

// Kill -9 one of two relay fronts (processes over one NATS store) while a
// client appends and follows a topic through the relay named by both
// fronts' URLs: the client moves to the other front and resumes from its
// cursor, and gets every acknowledged envelope once, in order.
func TestNATSFrontKilled(t *testing.T) {
	server := natstest.Start(t)
	spec := frontEnv + "=" + server + "#FRONTS"
	a := natstest.StartChild(t, spec)
	b := natstest.StartChild(t, spec)
	name := a.URL + FrontSeparator + b.URL
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic, key := testTopic(t, 7)
	appends := 60
	if longCluster() {
		appends = 3000
	}

	var live []Entry
	var liveMu sync.Mutex
	sctx, stopSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		c := NewClient(name, nil)
		var last uint64
		for sctx.Err() == nil {
			err := c.Subscribe(sctx, topic, last, func(es []Entry) error {
				liveMu.Lock()
				defer liveMu.Unlock()
				for _, e := range es {
					if e.Cursor <= last {
						return fmt.Errorf("entry %d again (after %d)", e.Cursor, last)
					}
					live = append(live, Entry{e.Cursor, bytes.Clone(e.Envelope)})
					last = e.Cursor
				}
				return nil
			})
			if errors.Is(err, ErrFrame) || err != nil && strings.Contains(err.Error(), "again") {
				subDone <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		subDone <- nil
	}()

	c := NewClient(name, nil)
	var acks []acked
	for i := range appends {
		if i == appends/3 {
			a.Kill()
		}
		env := envelope(1024, byte(i))
		binaryPut(env, 7, i, 0)
		var res AppendResult
		var err error
		for try := 0; try < 50; try++ {
			if res, err = c.Append(ctx, topic, key, [][]byte{env}); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		acks = append(acks, acked{topic, res.Cursors[0], sha256.Sum256(env)})
	}
	if c.front() != b.URL {
		t.Errorf("the client is on %s, not the front left (%s)", c.front(), b.URL)
	}
	checkAcked(t, ctx, c, acks)
	deadline := time.Now().Add(10 * time.Second)
	for {
		liveMu.Lock()
		n := len(live)
		liveMu.Unlock()
		if n >= len(acks) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopSub()
	if err := <-subDone; err != nil {
		t.Fatal(err)
	}
	liveMu.Lock()
	defer liveMu.Unlock()
	if len(live) != len(acks) {
		t.Fatalf("the subscriber got %d entries, %d were acknowledged", len(live), len(acks))
	}
	for i, e := range live {
		if e.Cursor != acks[i].cursor || sha256.Sum256(e.Envelope) != acks[i].hash {
			t.Fatalf("live entry %d: cursor %d, want %d", i, e.Cursor, acks[i].cursor)
		}
	}
}

// What the NATS cluster holds of an append is what a relay holds: the
// envelope's bytes as they came, under a subject of the topic and the
// envelope's size, with one header, a hash of topic and envelope.
func TestNATSStreamHoldsOnlyEnvelopes(t *testing.T) {
	ctx := context.Background()
	st, err := natsBackend.open(t)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := st.(*NATS)
	topic, _ := testTopic(t, 3)
	envs := [][]byte{envelope(1024, 1), envelope(4096, 2)}
	res, err := n.Append(ctx, topic, envs)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range res.Cursors {
		msgs, _, err := n.directGet(ctx, natsGetRequest{Seq: c})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("cursor %d: %v", c, err)
		}
		m := msgs[0]
		if !bytes.Equal(m.Data, envs[i]) {
			t.Errorf("cursor %d: the stream holds other bytes than the envelope", c)
		}
		if want := fmt.Sprintf("%s.%x.%08d", n.prefix, topic[:], len(envs[i])); m.Header.Get("Nats-Subject") != want {
			t.Errorf("subject %q, want %q", m.Header.Get("Nats-Subject"), want)
		}
		for k := range m.Header {
			switch k {
			case "Nats-Msg-Id":
				if m.Header.Get(k) != msgID(topic, envs[i]) {
					t.Errorf("message ID %q", m.Header.Get(k))
				}
			case "Nats-Stream", "Nats-Subject", "Nats-Sequence", "Nats-Time-Stamp":
				// The direct get's own.
			default:
				t.Errorf("the stream keeps a header %s: %q", k, m.Header.Get(k))
			}
		}
	}
}

// A front that saw a topic's entries, which another front's retention
// then dropped, reads the topic as it is and stops expecting them (it
// does not wait for a lagging replica on every read).
func TestNATSReadAfterOtherFrontPruned(t *testing.T) {
	ctx := context.Background()
	place := natsBackend.place(t)
	a, err := natsBackend.openAt(ctx, place)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := natsBackend.openAt(ctx, place)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	topic, _ := testTopic(t, 4)
	if _, err := a.Append(ctx, topic, [][]byte{envelope(1024, 1), envelope(1024, 2)}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Prune(ctx, time.Now().Add(time.Hour), Retention{MaxAge: time.Minute}); err != nil || n != 2 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	res, err := a.Read(ctx, topic, 0, 10, 1<<20)
	if err != nil || len(res.Entries) != 0 || res.Last != 0 {
		t.Fatalf("read after the other front pruned: %+v %v", res, err)
	}
	if c := a.(*NATS).knownCursor(topic); c != 0 {
		t.Errorf("the front still expects cursor %d of the topic", c)
	}
}
