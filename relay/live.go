package relay

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/coder/websocket"
	"github.com/pursuance/pursuance/keys"
)

// liveHandler serves a topic's live stream (GET /v1/topics/{topic}/live,
// docs/relay-protocol.md): a WebSocket of the entries after a cursor, then
// of each new one as it is appended.
func (s *Server) liveHandler(w http.ResponseWriter, r *http.Request) {
	topic, err := ParseTopic(r.PathValue("topic"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "topic", err)
		return
	}
	after, _, err := cursorParams(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "params", err)
		return
	}
	release, ok := s.hold(r, holdSub, 0)
	if !ok {
		w.Header().Set("Retry-After", "10")
		s.fail(w, r, http.StatusTooManyRequests, "subs_per_addr", fmt.Errorf("over %d live subscriptions from your address; close some and retry", s.cfg.SubsPerAddr))
		return
	}
	defer release()
	// The stream is long-lived: no deadlines from the request (each write
	// has its own).
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.logLimited("websocket refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	ctx := c.CloseRead(r.Context()) // the client sends nothing; its close ends ctx
	sub := s.hub.subscribe(topic)
	defer s.hub.unsubscribe(topic, sub)
	addr, _ := s.requestAddr(r)
	err = s.stream(ctx, c, topic, after, sub, addr)
	if ctx.Err() != nil {
		c.Close(websocket.StatusGoingAway, "relay stopping or client gone")
		return
	}
	s.logLimited("live stream ended", "remote", r.RemoteAddr, "err", err)
	c.Close(websocket.StatusInternalError, "stream ended")
}

// stream sends a topic's entries after cursor, then every new one, as
// binary messages of entry frames. A caught-up subscriber sends the
// messages the hub encoded once for all; one that is behind reads the
// store, a page at a time, as a read does (counted against its address's
// reads and the relay's).
func (s *Server) stream(ctx context.Context, c *websocket.Conn, topic keys.Topic, cursor uint64, sub *subscriber, addr netip.Addr) error {
	send := func(data []byte, n int, last uint64) error {
		wctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
		err := c.Write(wctx, websocket.MessageBinary, data)
		cancel()
		if err != nil {
			return fmt.Errorf("a slow or gone subscriber: %w", err)
		}
		s.m.delivered.Add(float64(n))
		cursor = last
		return nil
	}
	wait := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.notify:
			return nil
		}
	}
	for {
		if m, data, n, ok := s.hub.next(topic, cursor); ok {
			if m == nil {
				if err := wait(); err != nil {
					return err
				}
				continue
			}
			err := send(data, n, m.last())
			s.hub.done(m)
			if err != nil {
				return err
			}
			continue
		}
		release, err := s.holdLiveRead(ctx, addr)
		if err != nil {
			return err
		}
		res, err := s.st.Read(ctx, topic, cursor, MaxReadLimit, liveMessageBytes)
		if err != nil {
			release()
			return err
		}
		if len(res.Entries) == 0 {
			release()
			if err := wait(); err != nil {
				return err
			}
			continue
		}
		err = s.sendEntries(ctx, c, res.Entries)
		release()
		if err != nil {
			return err
		}
		cursor = res.Entries[len(res.Entries)-1].Cursor
	}
}

// sendEntries sends entries as one message, frame by frame (not copied
// into one buffer first), within writeTimeout.
func (s *Server) sendEntries(ctx context.Context, c *websocket.Conn, entries []Entry) error {
	wctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	w, err := c.Writer(wctx, websocket.MessageBinary)
	if err != nil {
		return fmt.Errorf("a slow or gone subscriber: %w", err)
	}
	var frame []byte
	for _, e := range entries {
		frame = binary.AppendUvarint(frame[:0], e.Cursor)
		frame = binary.AppendUvarint(frame, uint64(len(e.Envelope)))
		if _, err := w.Write(frame); err != nil {
			return fmt.Errorf("a slow or gone subscriber: %w", err)
		}
		if _, err := w.Write(e.Envelope); err != nil {
			return fmt.Errorf("a slow or gone subscriber: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("a slow or gone subscriber: %w", err)
	}
	s.m.delivered.Add(float64(len(entries)))
	return nil
}
