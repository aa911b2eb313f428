package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/pursuance/pursuance/keys"
)

// An append's body is decoded as it arrives, each envelope read straight
// into a recycled buffer of its own size: the relay never holds a buffer
// as large as a body. Before its body is read, an append takes its size
// (its Content-Length, or MaxBody without one) from the relay-wide
// AppendMemory: appends from addresses with fewer appends in progress
// first; while it waits, a body that has stalled gives way.
const (
	// bodyPiece is the most a body is read at a time.
	bodyPiece = 64 << 10
	// bodyIdle is how long a piece of a body may take to arrive.
	bodyIdle = 10 * time.Second
	// bodyTime bounds a whole body.
	bodyTime = 60 * time.Second
	// bodyStalled: a body whose current piece has been arriving this long
	// (under 64 KiB/s) gives way when another append waits for memory.
	bodyStalled = time.Second
	// preemptEvery is how often an append waiting for memory looks for
	// a stalled one.
	preemptEvery = 100 * time.Millisecond
	// appendAnswerTime is how long after its body an append's answer may
	// take (the commit included).
	appendAnswerTime = 2 * time.Minute
)

// Recycled envelope buffers, by size. Each list keeps at most about
// pooledBytes idle (a sync.Pool keeps all that was put back since the
// last collection, which doubled what the relay held); more are left to
// the collector.
const pooledBytes = 8 << 20

var envelopePools = func() map[int]*freeList[[]byte] {
	m := map[int]*freeList[[]byte]{}
	for _, size := range keys.Buckets() {
		m[size] = newFreeList(max(2, pooledBytes/size), func() []byte { return make([]byte, size) })
	}
	return m
}()

func getEnvelope(size int) []byte {
	if p := envelopePools[size]; p != nil {
		return p.Get()
	}
	return make([]byte, size)
}

func putEnvelopes(envs [][]byte) {
	for _, e := range envs {
		if p := envelopePools[len(e)]; p != nil && cap(e) == len(e) {
			p.Put(e)
		}
	}
}

// freeList is a bounded list of recycled buffers.
type freeList[T any] struct {
	c     chan T
	alloc func() T
}

func newFreeList[T any](n int, alloc func() T) *freeList[T] {
	return &freeList[T]{c: make(chan T, n), alloc: alloc}
}

// Get returns a recycled buffer, or a new one.
func (l *freeList[T]) Get() T {
	select {
	case b := <-l.c:
		return b
	default:
		return l.alloc()
	}
}

// Put recycles b, unless the list is full.
func (l *freeList[T]) Put(b T) {
	select {
	case l.c <- b:
	default:
	}
}

// upload is an append's body being read.
type upload struct {
	rc        *http.ResponseController
	reading   atomic.Int64 // UnixNano when the current piece's read began; 0: not reading
	preempted atomic.Bool
}

// readAppend admits an append (one of its address's AppendsPerAddr) and
// reads and decodes its body. release must be called when the envelopes
// are no longer used; recycle says whether they may be reused (not when a
// failed store may still hold them). On false it has answered.
func (s *Server) readAppend(w http.ResponseWriter, r *http.Request, topic keys.Topic) (envs [][]byte, release func(recycle bool), ok bool) {
	if r.ContentLength > s.cfg.MaxBody {
		s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("append body of %d bytes, over this relay's %d", r.ContentLength, s.cfg.MaxBody))
		return nil, nil, false
	}
	held, ok := s.hold(r, holdAppend, busyWait)
	if !ok {
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusTooManyRequests, "appends_per_addr", fmt.Errorf("over %d appends at once from your address; retry when one is answered", s.cfg.AppendsPerAddr))
		return nil, nil, false
	}
	up := &upload{rc: http.NewResponseController(w)}
	reserved := r.ContentLength
	if reserved < 0 {
		reserved = s.cfg.MaxBody
	}
	prio := int64(0)
	if a, known := s.requestAddr(r); known {
		prio = int64(s.clients.holding(a, holdAppend))
	}
	if err := s.reserve(r.Context(), up, reserved, prio); err != nil {
		held()
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusServiceUnavailable, "busy", errors.New("the relay is taking as many appends as it holds at once; retry in a second"))
		return nil, nil, false
	}
	s.upMu.Lock()
	s.uploads[up] = struct{}{}
	s.upMu.Unlock()
	done := func() {
		s.appends.release(reserved)
		s.upMu.Lock()
		delete(s.uploads, up)
		s.upMu.Unlock()
		held()
	}
	src := &stallReader{r: http.MaxBytesReader(w, r.Body, s.cfg.MaxBody), up: up, start: time.Now()}
	envs, err := DecodeAppendFrom(topic, src, getEnvelope)
	if err == nil {
		up.rc.SetReadDeadline(time.Time{}) // the body is read: no deadline on what follows
	}
	up.rc.SetWriteDeadline(time.Now().Add(appendAnswerTime)) // however long the body took
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return envs, func(recycle bool) {
			if recycle {
				putEnvelopes(envs)
			}
			done()
		}, true
	case errors.Is(err, ErrUnauthorized):
		s.fail(w, r, http.StatusForbidden, "unauthorized", err)
	case errors.Is(err, ErrFrame):
		s.fail(w, r, http.StatusBadRequest, "malformed", err)
	default:
		// What is left of the body is not read: close the connection
		// after the answer rather than wait for it.
		w.Header().Set("Connection", "close")
		switch {
		case up.preempted.Load():
			s.fail(w, r, http.StatusRequestTimeout, "stalled", errors.New("the append's body arrived too slowly while others waited; retry"))
		case errors.As(err, &tooBig):
			s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("append body over this relay's %d bytes", s.cfg.MaxBody))
		default:
			s.fail(w, r, http.StatusBadRequest, "read", errors.New("the append's body ended early, stalled or could not be read"))
		}
	}
	done()
	return nil, nil, false
}

// stallReader reads a body bodyPiece at a time, each within bodyIdle (and
// the whole within bodyTime), noting when each read began so that a body
// that stalls can be made to give way.
type stallReader struct {
	r     io.Reader
	up    *upload
	start time.Time
}

func (s *stallReader) Read(p []byte) (int, error) {
	if len(p) > bodyPiece {
		p = p[:bodyPiece]
	}
	s.up.rc.SetReadDeadline(earliest(time.Now().Add(bodyIdle), s.start.Add(bodyTime)))
	if s.up.preempted.Load() { // after the deadline: a preemption sets it in the past
		return 0, errors.New("relay: a stalled body gave way")
	}
	s.up.reading.Store(time.Now().UnixNano())
	n, err := s.r.Read(p)
	s.up.reading.Store(0)
	return n, err
}

// reserve takes n bytes of AppendMemory for up, of priority prio (lower
// first), waiting up to busyWait; while it waits, it makes a stalled body
// give way.
func (s *Server) reserve(ctx context.Context, up *upload, n, prio int64) error {
	deadline := time.Now().Add(busyWait)
	for {
		wctx, cancel := context.WithDeadline(ctx, earliest(deadline, time.Now().Add(preemptEvery)))
		err := s.appends.acquireFor(wctx, n, prio)
		cancel()
		if err == nil || ctx.Err() != nil || !time.Now().Before(deadline) {
			return err
		}
		s.preemptStalled(up)
	}
}

// preemptStalled ends the body read that has been stalled longest, if one
// has been for bodyStalled, other than self's.
func (s *Server) preemptStalled(self *upload) {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	var victim *upload
	oldest := time.Now().Add(-bodyStalled).UnixNano()
	for u := range s.uploads {
		if t := u.reading.Load(); u != self && t != 0 && t < oldest && !u.preempted.Load() {
			victim, oldest = u, t
		}
	}
	if victim != nil {
		victim.preempted.Store(true)
		victim.rc.SetReadDeadline(time.Unix(1, 0))
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
