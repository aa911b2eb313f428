package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/ingest"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/store"
)

// CatchupReport is what RunCatchup measured.
type CatchupReport struct {
	Events        int     `json:"events"`
	Seconds       float64 `json:"seconds"`
	EventsPerS    float64 `json:"events_per_s"`
	EnvelopeBytes int64   `json:"envelope_bytes"` // the envelopes' own size
	WireBytes     int64   `json:"wire_bytes"`     // bytes received over HTTP, headers included
	Ratio         float64 `json:"wire_ratio"`     // WireBytes / EnvelopeBytes
}

// RunCatchup puts a valid signed log of n events, sealed in 1 KiB
// envelopes under one group key, on a relay (untimed), then times a new
// member catching up: reading the topic from the start over HTTP, opening
// every envelope, and ingesting the events (verified, the real path) into
// a fresh SQLite store in dir. It counts the bytes that crossed the wire.
func RunCatchup(ctx context.Context, n int, dir string, spawn func(context.Context) (string, int, func(), error), progress func(string)) (*CatchupReport, error) {
	return RunCatchupVia(ctx, n, dir, spawn, progress, nil)
}

// RunCatchupVia is RunCatchup with the HTTP client that reaches the relay
// (nil: Go's default transport): one through Tor, to measure catch-up
// from an onion relay beside the same over loopback.
func RunCatchupVia(ctx context.Context, n int, dir string, spawn func(context.Context) (string, int, func(), error), progress func(string), via *http.Client) (*CatchupReport, error) {
	return RunCatchupReaders(ctx, n, dir, spawn, progress, []*http.Client{via}, relay.MaxReadLimit)
}

// RunCatchupReaders is RunCatchupVia reading pages of page entries: the
// first through vias[0], then, with more than one client, the rest of the
// topic several ranges at once, one on each client (relay.RangeReader, as
// a sync reads an onion relay: docs/sync.md), taken in cursor order.
func RunCatchupReaders(ctx context.Context, n int, dir string, spawn func(context.Context) (string, int, func(), error), progress func(string), vias []*http.Client, page int) (*CatchupReport, error) {
	via := vias[0]
	if progress == nil {
		progress = func(string) {}
	}
	url, _, stop, err := spawn(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	progress(fmt.Sprintf("generating a log of %d events", n))
	log, err := GenerateLog(n, 20, 7, 0)
	if err != nil {
		return nil, err
	}
	k := keys.Key{Scope: keys.Scope{Pursuance: log.Pursuance}, Gen: 1}
	rand.Read(k.Seed[:])
	env, err := keys.NewEnvelopes(&k)
	if err != nil {
		return nil, err
	}
	topic, tkey, err := k.Topic()
	if err != nil {
		return nil, err
	}
	progress("sealing and appending it to the relay")
	c := relay.NewClient(url, via)
	var envBytes int64
	for i := 0; i < len(log.Events); i += 512 {
		var envs [][]byte
		for _, b := range log.Events[i:min(i+512, len(log.Events))] {
			sealed, err := env.Seal(b, rand.Reader)
			if err != nil {
				return nil, err
			}
			envBytes += int64(len(sealed))
			envs = append(envs, sealed)
		}
		if _, err := c.Append(ctx, topic, tkey, envs); err != nil {
			return nil, err
		}
	}
	st, err := store.OpenSQLite(filepath.Join(dir, "catchup.db"), Key())
	if err != nil {
		return nil, err
	}
	defer st.Close()
	in := ingest.New(st, ingest.Options{})
	var wire atomic.Int64
	next := http.DefaultTransport
	if via != nil && via.Transport != nil {
		next = via.Transport
	}
	hc := &http.Client{Transport: countingTransport{next, &wire}}
	rc := relay.NewClient(url, hc)
	rcs := []*relay.Client{rc}
	for _, v := range vias[1:] {
		rcs = append(rcs, relay.NewClient(url, &http.Client{Transport: countingTransport{v.Transport, &wire}}))
	}
	progress("catching up")
	start := time.Now()
	var cursor uint64
	var ahead *relay.RangeReader
	defer func() {
		if ahead != nil {
			ahead.Close()
		}
	}()
	got := 0
	for {
		var pg relay.ReadResult
		var err error
		if ahead != nil {
			pg, err = ahead.Read(ctx, cursor)
		} else {
			limit := page
			if len(rcs) > 1 {
				limit = min(page, app.AheadFirstPage) // as a sync reads an onion relay
			}
			pg, err = rc.Read(ctx, topic, cursor, limit)
		}
		if err != nil {
			return nil, err
		}
		if len(pg.Entries) == 0 {
			break
		}
		if last := pg.Entries[len(pg.Entries)-1].Cursor; ahead == nil && len(rcs) > 1 && pg.Last > last {
			ahead = relay.NewRangeReader(ctx, rcs, topic, last, pg.Last, page)
		}
		batch := make([][]byte, 0, len(pg.Entries))
		for _, e := range pg.Entries {
			b, err := env.Open(e.Envelope)
			if err != nil {
				return nil, fmt.Errorf("bench catch-up: envelope %d: %w", e.Cursor, err)
			}
			batch = append(batch, b)
		}
		res, err := in.Ingest(ctx, batch)
		if err != nil {
			return nil, err
		}
		if len(res.Rejected) > 0 || res.Pending > 0 {
			return nil, fmt.Errorf("bench catch-up: %d refused, %d pending", len(res.Rejected), res.Pending)
		}
		got += len(res.Accepted)
		cursor = pg.Entries[len(pg.Entries)-1].Cursor
		progress(fmt.Sprintf("%d of %d", got, n))
	}
	elapsed := time.Since(start)
	if got != n {
		return nil, fmt.Errorf("bench catch-up: %d of %d events stored", got, n)
	}
	return &CatchupReport{Events: n, Seconds: elapsed.Seconds(), EventsPerS: float64(n) / elapsed.Seconds(),
		EnvelopeBytes: envBytes, WireBytes: wire.Load(), Ratio: float64(wire.Load()) / float64(envBytes)}, nil
}

// countingTransport counts the bytes of every response: status line and
// headers (as sent) and body.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	h := int64(len(resp.Proto) + 1 + len(resp.Status) + 2 + 2)
	for k, vs := range resp.Header {
		for _, v := range vs {
			h += int64(len(k) + 2 + len(v) + 2)
		}
	}
	t.n.Add(h)
	resp.Body = countingBody{resp.Body, t.n}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	k, err := b.ReadCloser.Read(p)
	b.n.Add(int64(k))
	return k, err
}
