package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pursuance/pursuance/keys"
)

// An append's body is read in pieces of bodyPiece bytes, and its
// envelopes are then copied out of the pieces into buffers of their own
// size (both recycled), so the relay never allocates a body-sized buffer.
// Before its body is read, an append takes its size (its Content-Length,
// or MaxBody without one) from the relay-wide AppendMemory: appends from
// addresses with fewer appends in progress first; while it waits, a body
// that has stalled gives way.
const (
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
)

var piecePool = sync.Pool{New: func() any { return new([bodyPiece]byte) }}

// envelopePools recycle envelope buffers, one pool per envelope size.
var envelopePools = func() map[int]*sync.Pool {
	m := map[int]*sync.Pool{}
	for _, size := range keys.Buckets() {
		m[size] = &sync.Pool{New: func() any {
			b := make([]byte, size)
			return &b
		}}
	}
	return m
}()

func getEnvelope(size int) []byte {
	if p := envelopePools[size]; p != nil {
		return *p.Get().(*[]byte)
	}
	return make([]byte, size)
}

func putEnvelopes(envs [][]byte) {
	for _, e := range envs {
		if p := envelopePools[len(e)]; p != nil && cap(e) == len(e) {
			p.Put(&e)
		}
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
	var bufs []*[bodyPiece]byte
	done := func() {
		for _, b := range bufs {
			if b != nil {
				piecePool.Put(b)
			}
		}
		s.appends.release(reserved)
		s.upMu.Lock()
		delete(s.uploads, up)
		s.upMu.Unlock()
		held()
	}
	body, err := s.readPieces(w, r, up, &bufs)
	if err != nil {
		done()
		// What is left of the body is not read: close the connection
		// after the answer rather than wait for it.
		w.Header().Set("Connection", "close")
		var tooBig *http.MaxBytesError
		switch {
		case up.preempted.Load():
			s.fail(w, r, http.StatusRequestTimeout, "stalled", errors.New("the append's body arrived too slowly while others waited; retry"))
		case errors.As(err, &tooBig):
			s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("append body over this relay's %d bytes", s.cfg.MaxBody))
		default:
			s.fail(w, r, http.StatusBadRequest, "read", errors.New("the append's body ended early, stalled or could not be read"))
		}
		return nil, nil, false
	}
	// The pieces are recycled as they are decoded, in order.
	next := 0
	p := &pieces{bufs: body, done: func([]byte) {
		piecePool.Put(bufs[next])
		bufs[next] = nil
		next++
	}}
	envs, err = decodeAppend(topic, p, getEnvelope)
	if err != nil {
		done()
		if errors.Is(err, ErrUnauthorized) {
			s.fail(w, r, http.StatusForbidden, "unauthorized", err)
		} else {
			s.fail(w, r, http.StatusBadRequest, "malformed", err)
		}
		return nil, nil, false
	}
	return envs, func(recycle bool) {
		if recycle {
			putEnvelopes(envs)
		}
		done()
	}, true
}

// readPieces reads the body into pieces.
func (s *Server) readPieces(w http.ResponseWriter, r *http.Request, up *upload, bufs *[]*[bodyPiece]byte) ([][]byte, error) {
	src := http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	start := time.Now()
	var out [][]byte
	for {
		buf := piecePool.Get().(*[bodyPiece]byte)
		*bufs = append(*bufs, buf)
		up.rc.SetReadDeadline(earliest(time.Now().Add(bodyIdle), start.Add(bodyTime)))
		if up.preempted.Load() { // after the deadline: a preemption sets it in the past
			return nil, errors.New("preempted")
		}
		up.reading.Store(time.Now().UnixNano())
		n, err := readPiece(src, buf[:])
		up.reading.Store(0)
		out = append(out, buf[:n])
		switch {
		case err == io.EOF:
			up.rc.SetReadDeadline(time.Time{}) // the body is read: no deadline on what follows
			return out, nil
		case err != nil:
			return nil, err // a truncated body included (io.ErrUnexpectedEOF)
		}
	}
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

// readPiece fills b from r; err is io.EOF when the body ended (cleanly)
// before b was full, nil when b is full.
func readPiece(r io.Reader, b []byte) (n int, err error) {
	for n < len(b) && err == nil {
		var k int
		k, err = r.Read(b[n:])
		n += k
	}
	if n == len(b) && err == io.EOF {
		err = nil // the next read says EOF again
	}
	return n, err
}
