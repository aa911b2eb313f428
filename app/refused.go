package app

import (
	"context"
	"fmt"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
)

// refusedSchema is sync.db's record of events a sync refused to store
// (admit.go): where each was, so that it can be fetched if it is ever
// needed. Made on first use.
const refusedSchema = `CREATE TABLE IF NOT EXISTS refused (relay TEXT NOT NULL, topic BLOB NOT NULL, cursor INTEGER NOT NULL, id BLOB NOT NULL, PRIMARY KEY (relay, topic, cursor));
CREATE INDEX IF NOT EXISTS refused_id ON refused (id);`

// maxRefusedPlaces bounds how many refused events one sync fetches again.
const maxRefusedPlaces = 1000

type refusedPlace struct {
	relay  string
	topic  keys.Topic
	cursor uint64
}

func (s *syncDB) noteRefused(ctx context.Context, relay string, t keys.Topic, cursor uint64, id event.ID) error {
	if _, err := s.db.ExecContext(ctx, refusedSchema); err != nil {
		return fmt.Errorf("sync.db: %w", err)
	}
	_, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO refused (relay, topic, cursor, id) VALUES (?, ?, ?, ?)`, relay, t[:], cursor, id[:])
	return err
}

// refusedPlaces returns where the events ids were refused, if they were.
func (s *syncDB) refusedPlaces(ctx context.Context, ids []event.ID) ([]refusedPlace, error) {
	if _, err := s.db.ExecContext(ctx, refusedSchema); err != nil {
		return nil, fmt.Errorf("sync.db: %w", err)
	}
	var out []refusedPlace
	for _, id := range ids {
		rows, err := s.db.QueryContext(ctx, `SELECT relay, topic, cursor FROM refused WHERE id = ?`, id[:])
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var pl refusedPlace
			var topic []byte
			if err := rows.Scan(&pl.relay, &topic, &pl.cursor); err != nil {
				rows.Close()
				return nil, err
			}
			copy(pl.topic[:], topic)
			out = append(out, pl)
		}
		rows.Close()
		if len(out) >= maxRefusedPlaces {
			break
		}
	}
	return out, nil
}
