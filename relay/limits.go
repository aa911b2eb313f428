package relay

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/pursuance/pursuance/keys"
)

// The server's bounds on what a request may hold (docs/relay.md,
// "Limits"): each is checked before the memory it guards is taken, and
// every refusal says what the limit is and when to retry.

// checkQuotas refuses an append that would take a topic over TopicQuota,
// the store over StoreQuota or the disk under MinFree (507), or create a
// topic beyond its address's NewTopicsPerHour (429). Concurrent appends
// may pass it together, so a quota can be passed by at most the appends
// in progress (AppendMemory). On false it has answered.
func (s *Server) checkQuotas(w http.ResponseWriter, r *http.Request, topic keys.Topic, envs [][]byte) bool {
	var size int64
	for _, e := range envs {
		size += int64(len(e))
	}
	u, err := s.st.Usage(r.Context(), topic)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "store", err)
		return false
	}
	if q := s.cfg.TopicQuota; q > 0 && u.TopicBytes+size > q {
		s.fail(w, r, http.StatusInsufficientStorage, "topic_quota", fmt.Errorf("this topic holds %d bytes, and this relay keeps at most %d per topic; it takes no more envelopes in it (use another relay, or rotate to a new generation)", u.TopicBytes, q))
		return false
	}
	if q := s.cfg.StoreQuota; q > 0 && u.TotalBytes+size > q {
		s.fail(w, r, http.StatusInsufficientStorage, "store_quota", fmt.Errorf("this relay is full (%d bytes, its operator's quota); it takes no more envelopes: use another relay", q))
		return false
	}
	if free, ok := s.disk.free(s.now()); ok && free-size < s.cfg.MinFree {
		s.fail(w, r, http.StatusInsufficientStorage, "disk_full", errors.New("this relay's disk is full; it takes no more envelopes: use another relay"))
		return false
	}
	if a, known := s.requestAddr(r); !u.TopicExists && known {
		if ok, wait := s.clients.newTopic(a, s.now()); !ok {
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			s.fail(w, r, http.StatusTooManyRequests, "new_topics", fmt.Errorf("over %g new topics an hour from your address; retry in %d s", s.cfg.NewTopicsPerHour, secs))
			return false
		}
	}
	return true
}

// admitRead takes one of the client address's reads and one of the
// relay's, waiting up to busyWait for the latter. On false it has
// answered.
func (s *Server) admitRead(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	held, ok := s.hold(r, holdRead, busyWait)
	if !ok {
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusTooManyRequests, "reads_per_addr", fmt.Errorf("over %d reads at once from your address; retry when one is answered", s.cfg.ReadsPerAddr))
		return nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), busyWait)
	defer cancel()
	if err := s.reads.acquire(ctx, 1); err != nil {
		held()
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusServiceUnavailable, "busy", errors.New("the relay is serving as many reads as it serves at once; retry in a second"))
		return nil, false
	}
	return func() {
		s.reads.release(1)
		held()
	}, true
}

// holdLiveRead is admitRead for a live subscriber catching up: it waits
// (as long as ctx lasts) rather than being refused.
func (s *Server) holdLiveRead(ctx context.Context, a netip.Addr) (release func(), err error) {
	held := func() {}
	if a.IsValid() {
		if err := s.clients.acquireWait(ctx, a, holdRead, s.now); err != nil {
			return nil, err
		}
		held = func() { s.clients.release(a, holdRead, s.now()) }
	}
	if err := s.reads.acquire(ctx, 1); err != nil {
		held()
		return nil, err
	}
	return func() {
		s.reads.release(1)
		held()
	}, nil
}

// readBuffer is what a read answer is written in (rather than in the
// 4 KiB pieces of the HTTP server's own buffer).
const readBuffer = 64 << 10

// writeRead streams a read's answer: pages of readPageBytes from the store,
// each handed to the client within writeTimeout, so a read holds at most
// a page however large its answer and however slowly its client takes it.
// The answer ends at the topic's last cursor as the first page found it
// (its Pursuance-Relay-Last header), and before any gap a prune opened
// between pages (the client's next read learns of it from the headers).
func (s *Server) writeRead(w http.ResponseWriter, r *http.Request, topic keys.Topic, after uint64, limit int) {
	ctx := r.Context()
	res, err := s.st.Read(ctx, topic, after, limit, readPageBytes)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "store", err)
		return
	}
	last := res.Last
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(HeaderLast, strconv.FormatUint(res.Last, 10))
	w.Header().Set(HeaderFirst, strconv.FormatUint(res.First, 10))
	rc := http.NewResponseController(w)
	out := bufio.NewWriterSize(w, readBuffer)
	var frame []byte
	sent, size := 0, 0
	defer func() { s.m.read.Add(float64(sent)) }()
	for {
		rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
		for _, e := range res.Entries {
			if e.Cursor > last || (sent > 0 && size+len(e.Envelope) > maxReadBytes) {
				out.Flush()
				return
			}
			frame = binary.AppendUvarint(frame[:0], e.Cursor)
			frame = binary.AppendUvarint(frame, uint64(len(e.Envelope)))
			if _, err := out.Write(frame); err != nil {
				return
			}
			if _, err := out.Write(e.Envelope); err != nil {
				return // a slow or gone client; the connection is closed
			}
			sent++
			size += len(e.Envelope)
			after = e.Cursor
		}
		if err := out.Flush(); err != nil {
			return
		}
		if len(res.Entries) == 0 || sent >= limit || size >= maxReadBytes || after >= last {
			return
		}
		res, err = s.st.Read(ctx, topic, after, limit-sent, min(readPageBytes, maxReadBytes-size))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("read: a later page", "remote", r.RemoteAddr, "err", err)
			}
			return // a shorter answer, still a valid one
		}
		if len(res.Entries) > 0 && res.Entries[0].Cursor != after+1 {
			return // pruned meanwhile
		}
	}
}

// diskCheck reports the free space of the store's file system, looked up
// at most once a second.
type diskCheck struct {
	dir  string
	stat func(dir string) (int64, bool) // diskFree; tests replace it
	mu   sync.Mutex
	at   time.Time
	have int64
	ok   bool
}

func (d *diskCheck) free(now time.Time) (int64, bool) {
	if d.dir == "" {
		return 0, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.at) >= time.Second || now.Before(d.at) {
		d.have, d.ok = d.stat(d.dir)
		d.at = now
	}
	return d.have, d.ok
}
