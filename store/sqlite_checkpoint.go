package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"

	"modernc.org/sqlite"
)

// checkpointer copies the WAL into the database file in the background, on
// a connection of its own, so that no Put waits for it. The writer runs
// with wal_autocheckpoint off; after each commit it counts the frames it
// has written to the WAL, and once they reach checkpointFrames it wakes
// the checkpointer, which runs a PASSIVE checkpoint: it copies every frame
// that no reader still needs and never waits for a lock. Durability is as
// before: a commit returns once its frames are synced in the WAL, and a
// checkpoint syncs the database file before the WAL may start over.
//
// SQLite starts the WAL over when a write transaction begins with every
// frame already copied. Between batches of a catch-up the checkpointer
// usually gets there first; if it does not, and the WAL is longer than
// walCapBytes, the writer finishes the checkpoint itself before it begins
// (see full).
type checkpointer struct {
	w    *sql.Conn  // the writer, whose frames are counted
	conn *sql.Conn  // the checkpointer's own connection
	mu   sync.Mutex // held while a checkpoint runs, on either connection
	wake chan struct{}
	done chan struct{}
	// written is the number of frames the writer has written since it last
	// woke the checkpointer. It, every and capFrames are guarded by the
	// writer's mutex.
	written int
	// every is checkpointFrames and capFrames is walCapBytes in frames,
	// unless a test lowered them.
	every     int
	capFrames int64
	// walFrames estimates the length of the WAL in frames: what the last
	// checkpoint found (0 if it was the writer's and copied everything, as
	// the next transaction then starts the WAL over), plus what the writer
	// has written since.
	walFrames atomic.Int64
}

// checkpointFrames is how many frames (pages) the writer writes to the WAL
// between two background checkpoints: 16 MiB. A page rewritten by several
// commits in that span is copied once.
const checkpointFrames = 1024

// start opens the checkpointer's connection and starts its goroutine.
func (c *checkpointer) start(ctx context.Context, db *sql.DB, w *sql.Conn) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	c.w, c.conn = w, conn
	c.every, c.capFrames = checkpointFrames, walCapBytes/pageSize
	c.wake = make(chan struct{}, 1)
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		for range c.wake {
			c.run(c.conn)
		}
	}()
	return nil
}

// committed counts the frames the writer's last transaction wrote to the
// WAL and wakes the checkpointer if they add up to checkpointFrames. It
// never waits for a checkpoint. Its user holds wmu.
func (c *checkpointer) committed() {
	c.w.Raw(func(dc any) error {
		if st, ok := dc.(sqlite.DBStatus); ok {
			if n, _, err := st.Status(sqlite.DBStatusCacheWrite, true); err == nil {
				c.written += n
				c.walFrames.Add(int64(n))
			}
		}
		return nil
	})
	if c.written < c.every {
		return
	}
	c.written = 0
	select {
	case c.wake <- struct{}{}:
	default: // one is pending already
	}
}

// full reports whether the WAL is thought to be longer than walCapBytes.
// Its user holds wmu.
func (c *checkpointer) full() bool {
	return c.walFrames.Load() > c.capFrames
}

// run runs a PASSIVE checkpoint on conn, after one in progress on the other
// connection has finished. A checkpoint that fails, or that a reader keeps
// from copying everything, loses nothing: the frames stay in the WAL for
// the next one.
func (c *checkpointer) run(conn *sql.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var busy, log, copied int64
	err := conn.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied)
	switch {
	case err != nil || busy != 0:
	case conn == c.w && copied == log:
		c.walFrames.Store(0)
	default:
		c.walFrames.Store(log)
	}
}

// stop ends the goroutine and closes the checkpointer's connection. It may
// be called more than once; its user holds wmu.
func (c *checkpointer) stop() error {
	if c.conn == nil {
		return nil
	}
	close(c.wake)
	<-c.done
	err := c.conn.Close()
	c.conn = nil
	return err
}
