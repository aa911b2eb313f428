package relay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pursuance/pursuance/relay/natstest"
)

// The relay's conformance suite: every test of a behaviour that goes
// through a store runs against each backend, the default SQLite store and
// the NATS JetStream store (on an embedded NATS server of its own,
// listening on 127.0.0.1, its JetStream store in t.TempDir()).
func TestMain(m *testing.M) {
	natstest.Main() // a NATS server run as a child process of this binary
	frontMain()     // a relay front, likewise
	os.Exit(m.Run())
}

// backend makes stores of one kind for a test.
type backend struct {
	name string
	// place returns where a new, empty store lives (a file; a stream on
	// the test's NATS server); openAt opens the store there, again after
	// a Close: the same store, with what it held.
	place  func(t testing.TB) string
	openAt func(ctx context.Context, place string) (Store, error)
	// exactTotal: the store counts all topics' bytes as envelope bytes
	// (the NATS store counts them as JetStream does, with each message's
	// subject and headers).
	exactTotal bool
	// streamCursors: topics share one sequence of cursors (the NATS
	// store's are stream sequences), so a topic's skip those of others.
	streamCursors bool
	// forgetsEmptyTopics: a topic whose every entry retention dropped is
	// as if never written to (the NATS store keeps nothing of it).
	forgetsEmptyTopics bool
}

func (b backend) open(t testing.TB) (Store, error) {
	return b.openAt(context.Background(), b.place(t))
}

var sqliteBackend = backend{
	name:       "sqlite",
	place:      func(t testing.TB) string { return filepath.Join(t.TempDir(), "relay.db") },
	openAt:     func(ctx context.Context, p string) (Store, error) { return OpenSQLite(ctx, p) },
	exactTotal: true,
}

// natsServers holds each test's NATS server (one per test, started on
// first use).
var natsServers = struct {
	sync.Mutex
	url    map[testing.TB]string
	stream int
}{url: map[testing.TB]string{}}

var natsBackend = backend{
	name:               "nats",
	exactTotal:         true,
	streamCursors:      true,
	forgetsEmptyTopics: true,
	place: func(t testing.TB) string {
		natsServers.Lock()
		u, ok := natsServers.url[t]
		natsServers.stream++
		n := natsServers.stream
		natsServers.Unlock()
		if !ok {
			u = natstest.Start(t)
			natsServers.Lock()
			natsServers.url[t] = u
			natsServers.Unlock()
			t.Cleanup(func() {
				natsServers.Lock()
				delete(natsServers.url, t)
				natsServers.Unlock()
			})
		}
		return fmt.Sprintf("%s#RELAY%d", u, n)
	},
	openAt: func(ctx context.Context, p string) (Store, error) {
		u, stream, _ := strings.Cut(p, "#")
		return OpenNATS(ctx, u, NATSOptions{Stream: stream})
	},
}

var backends = []backend{sqliteBackend, natsBackend}

// forEachStore runs test against each backend, as subtests named after
// them.
func forEachStore(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}
