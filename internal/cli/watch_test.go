package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
)

// TestWatcher: the node's watcher kicks its loop when an envelope lands
// on a followed topic (one kick for a burst it has not taken yet), not for
// a topic it does not follow, and no more once the topic is dropped.
func TestWatcher(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := relay.OpenSQLite(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := httptest.NewServer(relay.NewServer(st, relay.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	defer ts.Close()
	c := relay.NewClient(ts.URL, nil)
	topicOf := func(seed byte) (keys.Topic, func()) {
		k := keys.Key{Scope: keys.Scope{Pursuance: event.ID{seed}}, Gen: 1}
		k.Seed[0] = seed
		topic, key, err := k.Topic()
		if err != nil {
			t.Fatal(err)
		}
		n := byte(0)
		return topic, func() {
			n++
			if _, err := c.Append(ctx, topic, key, [][]byte{bytes.Repeat([]byte{seed, n}, 512)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	followed, write := topicOf(1)
	_, writeOther := topicOf(2)
	watch := newWatcher(nil)
	defer watch.stop()
	kicked := func(want bool, what string) {
		t.Helper()
		select {
		case <-watch.kick:
			if !want {
				t.Fatalf("%s: a kick", what)
			}
		case <-time.After(time.Second):
			if want {
				t.Fatalf("%s: no kick within a second", what)
			}
		}
	}
	// (The stream starts from cursor 0, so an envelope written before it is
	// up still arrives.)
	watch.set(ctx, []app.WatchTarget{{Relay: ts.URL, Topic: followed}})
	write()
	kicked(true, "an envelope on the followed topic")
	writeOther()
	kicked(false, "an envelope on another topic")
	write()
	write()
	kicked(true, "a burst")
	// Setting the same targets again keeps the stream; dropping them ends it.
	watch.set(ctx, []app.WatchTarget{{Relay: ts.URL, Topic: followed}})
	watch.set(ctx, nil)
	time.Sleep(200 * time.Millisecond)
	for len(watch.kick) > 0 {
		<-watch.kick
	}
	write()
	kicked(false, "an envelope after the topic was dropped")
}
