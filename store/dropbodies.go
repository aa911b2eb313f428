package store

import (
	"context"
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

// DropBodies implements BodyDropper.
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
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.fail("drop bodies", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `UPDATE events SET body = NULL WHERE n IN (`+rowOf("?1")+`) AND id = ?1 AND body IS NOT NULL`)
	if err != nil {
		return 0, s.fail("drop bodies", err)
	}
	defer st.Close()
	dropped := 0
	for _, id := range ids {
		res, err := st.ExecContext(ctx, id[:])
		if err != nil {
			return 0, s.fail("drop bodies", err)
		}
		n, _ := res.RowsAffected()
		dropped += int(n)
	}
	if err := tx.Commit(); err != nil {
		return 0, s.fail("drop bodies", fmt.Errorf("commit: %w", err))
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
