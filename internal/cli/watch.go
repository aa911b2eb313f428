package cli

import (
	"context"
	"sync"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/relay"
)

// watcher follows relay topics live for the node (up) and kicks its loop
// when an envelope arrives on one, so that a round runs at once instead of
// at the next tick. It is what makes another member's change show up in
// this member's UI within a second or so.
type watcher struct {
	kick chan struct{} // buffered 1: a kick while one is pending is merged
	dial app.DialFunc  // how its streams connect (app.Options.Dial)

	mu      sync.Mutex
	running map[watchKey]context.CancelFunc
	wg      sync.WaitGroup
}

type watchKey struct {
	relay string
	topic string
}

func newWatcher(dial app.DialFunc) *watcher {
	return &watcher{kick: make(chan struct{}, 1), dial: dial, running: map[watchKey]context.CancelFunc{}}
}

// poke asks the node's loop for a round soon.
func (w *watcher) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// set follows exactly targets from now on: it starts what is new and
// stops what is gone, leaving the others' streams alone.
func (w *watcher) set(ctx context.Context, targets []app.WatchTarget) {
	w.mu.Lock()
	defer w.mu.Unlock()
	want := map[watchKey]app.WatchTarget{}
	for _, t := range targets {
		want[watchKey{t.Relay, string(t.Topic[:])}] = t
	}
	for k, cancel := range w.running {
		if _, ok := want[k]; !ok {
			cancel()
			delete(w.running, k)
		}
	}
	for k, t := range want {
		if _, ok := w.running[k]; ok {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w.running[k] = cancel
		w.wg.Go(func() { w.follow(wctx, t) })
	}
}

// follow streams one topic, reconnecting with backoff while ctx lasts (a
// relay that is down is the round's to report, not the watcher's).
func (w *watcher) follow(ctx context.Context, t app.WatchTarget) {
	c := relay.NewClient(t.Relay, app.HTTPClient(w.dial, t.Isolation))
	cursor := t.Cursor
	wait := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		c.Subscribe(ctx, t.Topic, cursor, func(es []relay.Entry) error {
			if len(es) > 0 {
				cursor = es[len(es)-1].Cursor
				w.poke()
			}
			return nil
		})
		if time.Since(start) > time.Minute {
			wait = time.Second // it had been up a while
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// stop ends every stream and waits for them.
func (w *watcher) stop() {
	w.mu.Lock()
	for k, cancel := range w.running {
		cancel()
		delete(w.running, k)
	}
	w.mu.Unlock()
	w.wg.Wait()
}
