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
	// state's part has its own (state.CheckpointVersion).
	checkpointFormat = 1
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

// checkpointLoads counts the states loaded from a checkpoint
// (CheckpointLoads); each is counted in folds too.
var checkpointLoads, checkpointWrites atomic.Int64

// CheckpointLoads returns how many states this process loaded from
// checkpoints instead of judging the log (Folds counts them too: they read
// the whole log), and how many checkpoints it wrote.
func CheckpointLoads() (loaded, written int64) {
	return checkpointLoads.Load(), checkpointWrites.Load()
}

func (n *Node) checkpointCipher() *atrest.Cipher {
	return atrest.NewCipher(atrest.Root(n.id.HomeSeed()).Derive(keyCheckpoint))
}

func (n *Node) checkpointPath(c *atrest.Cipher, p event.ID) string {
	b := c.Blind(checkpointNameDomain, p[:])
	return filepath.Join(n.home, checkpointDir, hex.EncodeToString(b[:16]))
}

// checkpointAAD binds a checkpoint's sealed form to its format and
// pursuance: a file of another pursuance copied over it does not open.
func checkpointAAD(p event.ID) []byte {
	return append(append(append([]byte{}, checkpointMagic...), checkpointFormat), p[:]...)
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
	pt, err := c.Open(nil, sealed, checkpointAAD(p))
	if err != nil {
		n.warnCheckpoint("opening", p, errors.New("it does not open with this home's key (damaged, or from another home)"))
		return nil, nil
	}
	head := checkpointHeader(key)
	if !bytes.HasPrefix(pt, head) {
		return nil, nil // stale: other evidence, secrets or keys (or another format)
	}
	body := pt[len(head):]
	ids, err := state.CheckpointIDs(body)
	if err != nil {
		n.warnCheckpoint("reading", p, err)
		return nil, nil
	}
	if len(ids) > key.count {
		return nil, nil // stale: covers events the store does not hold
	}
	b := state.NewBuilder(p, ev)
	if n.id != nil {
		sec, err := n.stateSecrets(p)
		if err != nil {
			return nil, err
		}
		b.SetSecrets(sec)
	}
	var since []*event.Event
	covered := 0
	err = n.st.Iterate(ctx, p, func(e *event.Event) error {
		if ids[e.ID()] {
			covered++
			return b.Add(e)
		}
		since = append(since, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if covered != len(ids) {
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
	n.folds.checkpointed(p, len(ids))
	return s, nil
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
	pt := append(checkpointHeader(key), body...)
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
