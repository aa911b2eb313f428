package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pursuance/pursuance/event"
)

// BodyDropper is implemented by stores that can drop the bodies of stored
// events while keeping the events: their headers (ID, author, links,
// payload hash and size) and signatures, hence heads, version vectors,
// counts and evidence, are unchanged, and Get returns them without a body.
// It is how a member garbage-collects junk that the rules can never accept
// (app.Node.CollectGarbage). A later Put of a copy with its body gives the
// body back, as for any body-less copy.
type BodyDropper interface {
	// DropBodies drops the bodies of the events among ids that are
	// stored with one, in one transaction, and returns how many it
	// dropped. IDs not stored are ignored.
	DropBodies(ctx context.Context, ids []event.ID) (int, error)
}

var (
	_ BodyDropper = (*SQLite)(nil)
	_ BodyDropper = (*Memory)(nil)
)

// DropBodies implements BodyDropper. Each event's blob is opened and
// sealed again without the body, in one IMMEDIATE transaction.
func (s *SQLite) DropBodies(ctx context.Context, ids []event.ID) (int, error) {
	if err := s.begin(ctx, "drop bodies"); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return 0, ErrClosed
	}
	n, err := s.dropBodies(ctx, ids)
	if err != nil {
		return 0, s.fail("drop bodies", err)
	}
	return n, nil
}

func (s *SQLite) dropBodies(ctx context.Context, ids []event.ID) (dropped int, err error) {
	bg := context.Background()
	if _, err := s.ws.begin.ExecContext(ctx); err != nil {
		s.ws.rollback.ExecContext(bg) // as in put: it may have begun
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			s.ws.rollback.ExecContext(bg)
		}
	}()
	var scratch []byte
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b := s.se.id(id)
		var n int64
		var blob []byte
		switch err := s.ws.blobOf.QueryRowContext(bg, b[:]).Scan(&n, &blob); {
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return 0, err
		}
		var e *event.Event
		if e, scratch, err = s.openRow(b[:], blob, scratch); err != nil {
			return 0, err
		}
		if !e.HasBody() {
			continue
		}
		sealed, _ := s.se.sealEvent(nil, scratch, nil, e.WithoutBody(), b)
		if _, err := s.ws.setBlob.ExecContext(bg, n, sealed); err != nil {
			return 0, err
		}
		dropped++
	}
	if _, err := s.ws.commit.ExecContext(bg); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return dropped, nil
}

// DropBodies implements BodyDropper.
func (m *Memory) DropBodies(ctx context.Context, ids []event.ID) (int, error) {
	if err := m.lock(ctx, "drop bodies"); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	dropped := 0
	for _, id := range ids {
		if e, ok := m.events[id]; ok && e.HasBody() {
			m.events[id] = e.WithoutBody()
			dropped++
		}
	}
	return dropped, nil
}
