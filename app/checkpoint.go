package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/atrest"
	"github.com/pursuance/pursuance/state"
	"github.com/pursuance/pursuance/store"
)

// A process that has no state of a pursuance in memory (a command without
// a node, `up` starting) loads the checkpoint of its fold from the home
// instead of judging the whole log again, and extends it with the events
// stored since (docs/fold.md, "The checkpoint on disk").

const (
	// checkpointDir holds one file per pursuance, named after the
	// pursuance blinded under the home's checkpoint key (the directory
	// does not list the pursuances).
	checkpointDir = "checkpoints"
	// keyCheckpoint labels the key the checkpoints are sealed under,
	// derived from the home's root key like the other files' keys.
	keyCheckpoint = "fold-checkpoints"
	// checkpointNameDomain is the blinding domain of the files' names.
	checkpointNameDomain = "pursuance/v1/checkpoint-name"
	// checkpointFormat is the version of the file (its header); the
	// state's part has its own (state.CheckpointVersion). 2: the header
	// says which log the state was folded from (checkpointCovers).
	checkpointFormat = 2
	// checkpointMinFold: a full fold that took at least this long is
	// checkpointed; a shorter one costs less than reading a checkpoint
	// would save.
	checkpointMinFold = 150 * time.Millisecond
	// checkpointEvery: a state extended this many events past the
	// checkpoint on disk is checkpointed again, so that a load's
	// extension (which judges what it adds) stays short.
	checkpointEvery = 2_000
)

// checkpointMagic starts a checkpoint's plaintext, before its version.
var checkpointMagic = []byte("pursuance-fold-checkpoint")

// checkpointLoads counts the states loaded from a checkpoint with their
// events (CheckpointLoads); each is counted in folds too. checkpointOpens
// counts those opened from one without their events (CheckpointOpens).
var checkpointLoads, checkpointWrites, checkpointOpens atomic.Int64

// CheckpointLoads returns how many states this process loaded from
// checkpoints with their events instead of judging the log (Folds counts
// them too: they read the whole log), and how many checkpoints it wrote.
func CheckpointLoads() (loaded, written int64) {
	return checkpointLoads.Load(), checkpointWrites.Load()
}

// CheckpointOpens returns how many states this process opened from a
// checkpoint without reading their events (state.OpenCheckpoint); those
// whose events were needed later are counted in CheckpointLoads too.
func CheckpointOpens() int64 { return checkpointOpens.Load() }

func (n *Node) checkpointCipher() *atrest.Cipher {
	return atrest.NewCipher(atrest.Root(n.id.HomeSeed()).Derive(keyCheckpoint))
}

func (n *Node) checkpointPath(c *atrest.Cipher, p event.ID) string {
	b := c.Blind(checkpointNameDomain, p[:])
	return filepath.Join(n.home, checkpointDir, hex.EncodeToString(b[:16]))
}

// checkpointAAD binds a checkpoint's sealed form to its format and
// pursuance: a file of another pursuance copied over it does not open.
func checkpointAAD(p event.ID) []byte { return checkpointAADOf(checkpointFormat, p) }

func checkpointAADOf(format byte, p event.ID) []byte {
	return append(append(append([]byte{}, checkpointMagic...), format), p[:]...)
}

// checkpointHeader is what a checkpoint was folded from, besides its
// events: the evidence count, the member's secrets and KEM keys
// (foldKey's), which must be the current ones for it to be used.
func checkpointHeader(k foldKey) []byte {
	h := append([]byte{}, checkpointMagic...)
	h = append(h, checkpointFormat)
	h = binary.BigEndian.AppendUint64(h, uint64(k.evidence))
	h = append(h, k.secrets[:]...)
	return append(h, k.kems[:]...)
}

// checkpointCovers is the part of a checkpoint's header after
// checkpointHeader: the store's log the state was folded from (foldKey's
// count and heads). A checkpoint that covers the store as it is now is
// opened without reading the log (state.OpenCheckpoint).
func checkpointCovers(k foldKey) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(k.count)), k.heads[:]...)
}

// checkpointCoversSize is the size of checkpointCovers.
const checkpointCoversSize = 8 + 32

// useCheckpoints reports whether this node keeps checkpoints: a node of a
// home (Open), not a staging node over a store in memory.
func (n *Node) useCheckpoints() bool { return n.ckpt && n.id != nil }

// loadCheckpoint returns p's state from its checkpoint and the events
// stored since, or nil when there is none that fits (missing, stale,
// corrupt, of another home or format): the caller folds. ev is the
// evidence read for key.
func (n *Node) loadCheckpoint(ctx context.Context, p event.ID, key foldKey, ev []event.Equivocation) (*state.State, error) {
	if !n.useCheckpoints() {
		return nil, nil
	}
	c := n.checkpointCipher()
	path := n.checkpointPath(c, p)
	sealed, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		n.warnCheckpoint("reading", p, err)
		return nil, nil
	}
	// Opened in place: a checkpoint is megabytes, a copy of it costs.
	pt, err := c.Open(sealed[atrest.NonceSize:atrest.NonceSize], sealed, checkpointAAD(p))
	if err != nil {
		// (What a failed open left of sealed is not the file any more.)
		if sealed, e := os.ReadFile(path); e == nil {
			if _, e := c.Open(nil, sealed, checkpointAADOf(checkpointFormat-1, p)); e == nil {
				return nil, nil // of the format before: stale, replaced by the next fold
			}
		}
		n.warnCheckpoint("opening", p, errors.New("it does not open with this home's key (damaged, or from another home)"))
		return nil, nil
	}
	head := checkpointHeader(key)
	if !bytes.HasPrefix(pt, head) || len(pt) < len(head)+checkpointCoversSize {
		return nil, nil // stale: other evidence, secrets or keys (or another format)
	}
	covers, body := pt[len(head):len(head)+checkpointCoversSize], pt[len(head)+checkpointCoversSize:]
	var sec *state.Secrets
	if n.id != nil {
		if sec, err = n.stateSecrets(p); err != nil {
			return nil, err
		}
	}
	if bytes.Equal(covers, checkpointCovers(key)) {
		// The store holds exactly the events the checkpoint covers (the
		// same count and heads: every event of a store is in its heads'
		// past): the state opens from the checkpoint's view, its events
		// read when something needs them.
		// The loader keeps the verdicts only: the view is decoded into
		// the state, and its encoded form (most of the file) let go.
		verdicts, err := state.CheckpointVerdicts(body)
		if err != nil {
			n.warnCheckpoint("opening", p, err)
			return nil, nil
		}
		var opened *state.State // set before anything can load it
		s, err := state.OpenCheckpoint(body, p, sec != nil, n.checkpointLoader(p, verdicts, ev, sec, func() *state.State { return opened }))
		opened = s
		if err == nil && s.Len() != key.count {
			err = fmt.Errorf("it holds %d events, its header says %d", s.Len(), key.count)
		}
		if err != nil {
			n.warnCheckpoint("opening", p, err)
			return nil, nil
		}
		checkpointOpens.Add(1)
		n.folds.checkpointed(p, s.Len())
		return s, nil
	}
	cover, err := state.NewCheckpointCover(body)
	if err != nil {
		n.warnCheckpoint("reading", p, err)
		return nil, nil
	}
	if cover.Len() > key.count {
		return nil, nil // stale: covers events the store does not hold
	}
	b := state.NewBuilder(p, ev)
	if sec != nil {
		b.SetSecrets(sec)
	}
	var since []*event.Event
	err = n.st.Iterate(ctx, p, func(e *event.Event) error {
		if cover.Covers(e.ID()) {
			return b.Add(e)
		}
		since = append(since, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !cover.Complete() {
		return nil, nil // stale: its events are not all in the store
	}
	s, err := b.FinishFrom(body)
	if err != nil {
		n.warnCheckpoint("rebuilding from", p, err)
		return nil, nil
	}
	if len(since) > 0 {
		if s, err = s.Extend(since); errors.Is(err, state.ErrRefold) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
	}
	// A load reads the whole log from the store as a fold does: it
	// counts as one (Folds), so what a command costs in folds does not
	// depend on whether a checkpoint was written (on the machine's speed).
	folds.Add(1)
	if n.owner().holding.Load() {
		foldsHolding.Add(1)
	}
	checkpointLoads.Add(1)
	n.folds.checkpointed(p, cover.Len())
	return s, nil
}

// checkpointLoader returns what loads the events of p's state opened
// from a checkpoint (state.OpenCheckpoint), the first time a reader needs
// them; data is the checkpoint's verdicts (state.CheckpointVerdicts). The
// events it covers are read from the store, and the state rebuilt from
// them and its verdicts (FinishFrom, which checks its hash), or, should
// that fail, folded from them. It reads through a store of its own: the
// state is kept (fold.go) past the Node that opened it, whose store is
// closed with it. Counted as a fold and a load (Folds, CheckpointLoads):
// it reads the whole log. The text of the tasks it opens is the view's
// (state.Builder.Reuse: opened gives the state the loader loads).
func (n *Node) checkpointLoader(p event.ID, data []byte, ev []event.Equivocation, sec *state.Secrets, opened func() *state.State) func() (*state.State, error) {
	path, key, logger := filepath.Join(n.home, StoreFile), n.keys.store, n.opts.Logger
	return func() (*state.State, error) {
		ctx := context.Background() // not a request's: the state outlives it
		folds.Add(1)
		checkpointLoads.Add(1)
		st, err := store.OpenSQLite(path, key)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		// The events are added as the store reads them, not gathered
		// first: a Builder keeps what the fold needs of each, and at 1M
		// events the events themselves would double the load's peak.
		// hint: sealed events opened as they are read, with the keys the
		// checkpoint says were held (FinishFrom checks them); not when
		// folding instead.
		read := func(hint bool) (*state.Builder, error) {
			cover, err := state.NewCheckpointCover(data)
			if err != nil {
				return nil, err
			}
			b := state.NewBuilder(p, ev)
			if sec != nil {
				b.SetSecrets(sec)
			}
			if hint {
				// Verdicts that do not decode hint nothing, and
				// FinishFrom refuses them: the log is folded.
				_ = b.HintHeld(data)
			}
			if s := opened(); s != nil {
				b.Reuse(s)
			}
			err = st.Iterate(ctx, p, func(e *event.Event) error {
				if !cover.Covers(e.ID()) {
					return nil // stored since the checkpoint: the kept state's extensions have it
				}
				return b.Add(e)
			})
			if err == nil && !cover.Complete() {
				err = fmt.Errorf("the store does not hold every event of the checkpoint (%d)", cover.Len())
			}
			return b, err
		}
		b, err := read(true)
		if err != nil {
			return nil, err
		}
		s, err := b.FinishFrom(data)
		if err == nil {
			return s, nil
		}
		if logger != nil {
			logger.Warn("rebuilding from the checkpoint of a fold; folding its events instead", "pursuance", p.Short(), "err", err)
		}
		if b, err = read(false); err != nil {
			return nil, err
		}
		return b.Finish()
	}
}

// warnCheckpoint logs a checkpoint set aside: the fold is done from the
// log instead, and a new checkpoint replaces it.
func (n *Node) warnCheckpoint(doing string, p event.ID, err error) {
	if n.opts.Logger != nil {
		n.opts.Logger.Warn(doing+" the checkpoint of a fold; folding the log instead", "pursuance", p.Short(), "err", err)
	}
}

// maybeCheckpoint writes s (folded from key) as p's checkpoint when it is
// worth it: a full fold that took took, or a state checkpointEvery events
// past the checkpoint on disk. A write that fails is logged, not returned:
// the checkpoint only saves time.
func (n *Node) maybeCheckpoint(p event.ID, s *state.State, key foldKey, took time.Duration) {
	if !n.useCheckpoints() {
		return
	}
	at, known := n.folds.checkpointAt(p)
	if took < checkpointMinFold && (!known || s.Len()-at < checkpointEvery) {
		return
	}
	if known && at == s.Len() {
		return
	}
	if err := n.writeCheckpoint(p, s, key); err != nil {
		n.warnCheckpoint("writing", p, err)
		return
	}
	checkpointWrites.Add(1)
	n.folds.checkpointed(p, s.Len())
}

// wroteTo records that n stored an event of p, its own or one a sync
// received (Options.CheckpointWrites).
func (n *Node) wroteTo(p event.ID) {
	if !n.opts.CheckpointWrites || !n.useCheckpoints() {
		return
	}
	n.wroteMu.Lock()
	defer n.wroteMu.Unlock()
	if n.wrote == nil {
		n.wrote = map[event.ID]bool{}
	}
	n.wrote[p] = true
}

// checkpointWrites writes, for a command's node (Options.CheckpointWrites)
// closing, the checkpoint of each pursuance it stored events of, when the one on
// disk does not cover the log as it is now: the state kept, extended with
// what the command wrote (no fold). A failure is logged: the checkpoint
// only saves time.
func (n *Node) checkpointWrites() {
	ctx := context.Background()
	n.wroteMu.Lock()
	wrote := n.wrote
	n.wrote = nil
	n.wroteMu.Unlock()
	for p := range wrote {
		key, _, err := n.foldKey(ctx, p)
		if err != nil {
			n.warnCheckpoint("writing", p, err)
			continue
		}
		s, err := n.fold(ctx, p, false)
		if err != nil {
			n.warnCheckpoint("writing", p, err)
			continue
		}
		if at, known := n.folds.checkpointAt(p); known && at == s.Len() {
			continue
		}
		if err := n.writeCheckpoint(p, s, key); err != nil {
			n.warnCheckpoint("writing", p, err)
			continue
		}
		checkpointWrites.Add(1)
		n.folds.checkpointed(p, s.Len())
	}
}

// writeCheckpoint seals s's checkpoint under the home's checkpoint key
// and puts it in place atomically: written beside, synced, renamed, the
// directory synced.
func (n *Node) writeCheckpoint(p event.ID, s *state.State, key foldKey) error {
	body, err := s.Checkpoint()
	if err != nil {
		return err
	}
	c := n.checkpointCipher()
	path := n.checkpointPath(c, p)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	pt := append(append(checkpointHeader(key), checkpointCovers(key)...), body...)
	f, err := os.CreateTemp(dir, ".part-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(c.Seal(nil, nil, pt, checkpointAAD(p)))
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// checkpointed records that p's checkpoint on disk covers its first
// events.
func (c *foldCache) checkpointed(p event.ID, events int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ckpt == nil {
		c.ckpt = map[event.ID]int{}
	}
	c.ckpt[p] = events
}

// checkpointAt returns how many events p's checkpoint on disk covers, if
// this process knows.
func (c *foldCache) checkpointAt(p event.ID) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.ckpt[p]
	return v, ok
}
