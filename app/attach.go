package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"

	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// Attachments (docs/attachments.md): a file is cut and sealed into blobs,
// the blobs are put on the pursuance's relays, and only then is the
// manifest (a task-attach op, sealed for the task's readers) published.
// Blobs are kept in the home's blob cache (BlobDir), from which a fetch
// resumes and which `task files` reports as held.

// MaxPursuanceFiles bounds the bytes of files attached to one pursuance's
// tasks, as the attaching member counts them (the tasks it reads).
const MaxPursuanceFiles = 2 << 30

// BlobDir is the home's blob cache: blobs (ciphertext) by their ID.
const BlobDir = "blobs"

// Transfer says how a transfer went, for progress and for the report.
type Transfer struct {
	File     string // the file's ID (an attach) or name
	Chunks   int    // chunks of the file
	Done     int    // chunks handled so far
	Sent     int    // blobs put on a relay (attach) or fetched from one (fetch)
	Cached   int    // chunks found in the blob cache (fetch) or already on every relay (attach)
	Bytes    int64  // plaintext bytes handled so far
	Size     int64  // the file's size
	BlobSent int64  // blob bytes sent or received
	Reput    int    // blobs a fetch put back on relays that lacked them
}

// Progress is called after each chunk of a transfer.
type Progress func(Transfer)

// AttachResult is one attached file.
type AttachResult struct {
	Result
	File state.TaskAttach
	Transfer
}

// blobPath is where the cache keeps blob id.
func (n *Node) blobPath(id attach.BlobID) string {
	return filepath.Join(n.home, BlobDir, id.String())
}

// cacheBlob writes blob into the cache (a temporary file renamed into
// place: a killed process leaves no partial blob under an ID).
func (n *Node) cacheBlob(id attach.BlobID, blob []byte) error {
	dir := filepath.Join(n.home, BlobDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("blob cache: %w", err)
	}
	f, err := os.CreateTemp(dir, ".part-*")
	if err != nil {
		return fmt.Errorf("blob cache: %w", err)
	}
	if _, err := f.Write(blob); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("blob cache: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("blob cache: %w", err)
	}
	return os.Rename(f.Name(), n.blobPath(id))
}

// cachedBlob returns the cached blob of ref, opened, or false.
func (n *Node) cachedBlob(ref attach.ChunkRef) ([]byte, bool) {
	b, err := os.ReadFile(n.blobPath(ref.Blob))
	if err != nil {
		return nil, false
	}
	pt, err := attach.Open(ref, b)
	if err != nil {
		os.Remove(n.blobPath(ref.Blob)) // damaged: fetch it again
		return nil, false
	}
	return pt, true
}

// attachSecret returns the secret the files of task t are cut and sealed
// under: derived from the current generation of the task's first reader
// scope when this member holds it, else random (docs/attachments.md).
func (n *Node) attachSecret(s *state.State, op *state.TaskAttach) ([32]byte, error) {
	var secret [32]byte
	r, err := n.readersOf(s, op)
	if err != nil {
		return secret, err
	}
	if len(r.scopes) > 0 {
		if cur, ok := s.CurrentKey(r.scopes[0]); ok {
			if h, ok := s.Held()[cur.Update]; ok {
				return h.Key.AttachSecret(op.Task), nil
			}
		}
	}
	_, err = io.ReadFull(n.rand(), secret[:])
	return secret, err
}

// filesBytes is the bytes of files on the tasks of s this member sees.
func filesBytes(s *state.State, n *Node) int64 {
	var sum int64
	for _, t := range s.Tasks() {
		if s.CanSee(n.me(), t) {
			for _, f := range t.Files {
				sum += int64(f.Size)
			}
		}
	}
	return sum
}

// Attach attaches the file at path to task t of p (AttachReader, under
// the file's base name).
func (n *Node) Attach(ctx context.Context, p event.ID, taskRef, path string, progress Progress) (AttachResult, error) {
	f, fi, err := openRegular(path)
	if err != nil {
		return AttachResult{}, err
	}
	defer f.Close()
	return n.AttachReader(ctx, p, taskRef, filepath.Base(path), f, fi.Size(), progress)
}

// AttachToComment attaches the file at path to comment commentRef (its
// event ID, or a unique prefix) of task t of p: a file of the task, shown
// under that comment (docs/attachments.md, "Files on comments").
func (n *Node) AttachToComment(ctx context.Context, p event.ID, taskRef, commentRef, path string, progress Progress) (AttachResult, error) {
	f, fi, err := openRegular(path)
	if err != nil {
		return AttachResult{}, err
	}
	defer f.Close()
	return n.attachReader(ctx, p, taskRef, commentRef, filepath.Base(path), f, fi.Size(), progress)
}

// AttachReaderToComment is AttachReader for a file of comment commentRef.
func (n *Node) AttachReaderToComment(ctx context.Context, p event.ID, taskRef, commentRef, name string, r io.Reader, size int64, progress Progress) (AttachResult, error) {
	return n.attachReader(ctx, p, taskRef, commentRef, name, r, size, progress)
}

// openRegular opens the regular file at path, for an attach.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	return f, fi, nil
}

// CheckAttachable says whether the file at path could be attached (a
// regular file within the size limit), before anything is published.
func CheckAttachable(path string) error {
	f, fi, err := openRegular(path)
	if err != nil {
		return err
	}
	f.Close()
	if fi.Size() > attach.MaxFileSize {
		return fmt.Errorf("%s is %d bytes, over the limit of %d (%d MiB) per attachment: split it", path, fi.Size(), attach.MaxFileSize, attach.MaxFileSize>>20)
	}
	return nil
}

// resolveComment finds a comment of t by ID or unique prefix.
func resolveComment(t *state.Task, ref string) (event.ID, error) {
	c, err := byRef(t, t.Comments, func(c state.Comment) event.ID { return c.ID }, ref, "comment", "")
	return c.ID, err
}

// byRef finds the one of items (of task t, each named what) whose ID is
// ref or starts with it, ref being at least MinPrefix hex digits; hint
// says where the IDs are shown, if anywhere.
func byRef[T any](t *state.Task, items []T, idOf func(T) event.ID, ref, what, hint string) (T, error) {
	var zero T
	ref = strings.ToLower(ref)
	var found []T
	for _, it := range items {
		id := idOf(it).String()
		if id == ref {
			return it, nil
		}
		if len(ref) >= MinPrefix && strings.HasPrefix(id, ref) {
			found = append(found, it)
		}
	}
	switch {
	case len(ref) < MinPrefix:
		return zero, fmt.Errorf("%q is too short to name a %s: give at least %d hex digits of its ID%s", ref, what, MinPrefix, hint)
	case len(found) == 0:
		return zero, fmt.Errorf("no %s %q on task %s", what, ref, t.ID.Short())
	case len(found) > 1:
		return zero, fmt.Errorf("%w: %s %q could be %d %ss", ErrAmbiguous, what, ref, len(found), what)
	}
	return found[0], nil
}

// AttachReader attaches what r holds, size bytes, as the file name to
// task t of p: it seals the file's chunks into the blob cache, puts on
// each of p's relays the blobs it lacks, and publishes the manifest once
// every relay has them all. Run again after an interruption, it puts only
// what the relays lack.
func (n *Node) AttachReader(ctx context.Context, p event.ID, taskRef, name string, r io.Reader, size int64, progress Progress) (AttachResult, error) {
	return n.attachReader(ctx, p, taskRef, "", name, r, size, progress)
}

func (n *Node) attachReader(ctx context.Context, p event.ID, taskRef, commentRef, name string, r io.Reader, size int64, progress Progress) (AttachResult, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return AttachResult{}, err
	}
	if _, ok := s.Member(n.me()); !ok {
		return AttachResult{}, fmt.Errorf("%w: you are not a member of %s", ErrNotPermitted, s.Name())
	}
	t, err := ResolveTask(s, n.me(), taskRef)
	if err != nil {
		return AttachResult{}, err
	}
	if size > attach.MaxFileSize {
		return AttachResult{}, fmt.Errorf("%s is %d bytes, over the limit of %d (%d MiB) per attachment: split it", name, size, attach.MaxFileSize, attach.MaxFileSize>>20)
	}
	if have := filesBytes(s, n); have+size > MaxPursuanceFiles {
		return AttachResult{}, fmt.Errorf("%s holds %d bytes of files you can see, and attaching %d more would take it over the limit of %d (%d GiB) per pursuance", s.Name(), have, size, int64(MaxPursuanceFiles), MaxPursuanceFiles>>30)
	}
	op := &state.TaskAttach{Task: t.ID, Name: name, Type: mime.TypeByExtension(filepath.Ext(name)), Size: uint64(size)}
	if commentRef != "" {
		if op.Comment, err = resolveComment(t, commentRef); err != nil {
			return AttachResult{}, err
		}
	}
	if i := strings.IndexByte(op.Type, ';'); i >= 0 {
		op.Type = op.Type[:i]
	}
	if err := state.CheckInput(&state.TaskAttach{Task: op.Task, Name: op.Name, Type: op.Type}); err != nil {
		return AttachResult{}, err // the name and type, before any work
	}
	if _, ok := s.CurrentKey(""); !ok {
		return AttachResult{}, fmt.Errorf("%s has no keys yet, and files are only ever attached encrypted", s.Name())
	}
	// Keys first, as a write does: the secret must be that of the
	// generation the manifest is sealed under.
	if s, _, err = n.heal(ctx, s); err != nil {
		return AttachResult{}, err
	}
	if s, _, err = n.prepareTask(ctx, s, op); err != nil {
		return AttachResult{}, err
	}
	secret, err := n.attachSecret(s, op)
	if err != nil {
		return AttachResult{}, err
	}
	cut, err := attach.NewCutter(secret)
	if err != nil {
		return AttachResult{}, err
	}
	tr := Transfer{File: op.Name, Size: size}
	sum := sha256.New()
	var read int64
	err = cut.Split(io.TeeReader(io.LimitReader(r, size+1), sum), func(plain []byte) error {
		read += int64(len(plain))
		ref, blob := cut.Seal(plain)
		op.Chunks = append(op.Chunks, ref)
		if _, err := os.Stat(n.blobPath(ref.Blob)); err != nil {
			if err := n.cacheBlob(ref.Blob, blob); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return AttachResult{}, fmt.Errorf("reading %s: %w", name, err)
	}
	if read != size {
		return AttachResult{}, fmt.Errorf("%s changed while it was read: %d bytes, not %d", name, read, size)
	}
	copy(op.SHA256[:], sum.Sum(nil))
	tr.Chunks = len(op.Chunks)
	if err := n.upload(ctx, s, op, &tr, progress); err != nil {
		return AttachResult{}, err
	}
	res, err := n.do(ctx, s, op, DoOptions{})
	if err != nil {
		return AttachResult{}, err
	}
	tr.File = res.Event.ID().String()
	return AttachResult{Result: res, File: *op, Transfer: tr}, nil
}

// blobLack is a relay and which of a file's chunks it has.
type blobLack struct {
	c   *relay.Client
	has []bool
}

// upload puts op's blobs on every relay of p that lacks them.
func (n *Node) upload(ctx context.Context, s *state.State, op *state.TaskAttach, tr *Transfer, progress Progress) error {
	urls, err := n.RelayURLs(ctx, s.Pursuance())
	if err != nil {
		return err
	}
	if len(urls) == 0 {
		return fmt.Errorf("%s has no relay, and files travel through relays: add one (`pursuance relays P --add URL`)", s.Name())
	}
	cur, ok := s.CurrentKey("")
	h, held := s.Held()[cur.Update]
	if !ok || !held {
		return fmt.Errorf("you do not hold the current group key of %s; sync, or ask a member to re-key to you", s.Name())
	}
	_, topicKey, err := h.Key.Topic()
	if err != nil {
		return err
	}
	ids := make([]attach.BlobID, len(op.Chunks))
	for i, c := range op.Chunks {
		ids[i] = c.Blob
	}
	missing := map[attach.BlobID]bool{}
	var errs []error
	var lacks []blobLack
	for _, u := range urls {
		c := n.relayClient(s.Pursuance(), u)
		has := make([]bool, len(ids))
		for i := 0; i < len(ids); i += relay.MaxHaveIDs {
			part, err := c.HasBlobs(ctx, ids[i:min(len(ids), i+relay.MaxHaveIDs)])
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s", u, RelayError(err)))
				has = nil
				break
			}
			copy(has[i:], part)
		}
		if has == nil {
			continue
		}
		for i, h := range has {
			if !h {
				missing[ids[i]] = true
			}
		}
		lacks = append(lacks, blobLack{c, has})
	}
	if len(lacks) == 0 {
		return fmt.Errorf("no relay of %s takes files now: %w", s.Name(), errors.Join(errs...))
	}
	// Put the missing blobs ParallelBlobs ahead of the chunk being
	// reported (so at most that many at once); progress is reported in
	// file order, as each chunk's put is done.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	puts := map[attach.BlobID]*blobPut{}
	var order []*blobPut
	for i, c := range op.Chunks {
		if missing[c.Blob] && puts[c.Blob] == nil {
			bp := &blobPut{i: i, k: len(order), id: c.Blob, done: make(chan struct{})}
			puts[c.Blob] = bp
			order = append(order, bp)
		}
	}
	started := 0
	start := func(k int) {
		if k >= len(order) {
			return
		}
		bp := order[k]
		started = k + 1
		go func() {
			defer close(bp.done)
			bp.sent, bp.err = n.putBlob(ctx, lacks, bp.i, bp.id, topicKey, op.Name)
		}()
	}
	defer func() {
		// Nothing is left running once this returns.
		cancel()
		for _, bp := range order[:started] {
			<-bp.done
		}
	}()
	for k := range min(ParallelBlobs, len(order)) {
		start(k)
	}
	counted := map[attach.BlobID]bool{}
	for _, c := range op.Chunks {
		if bp := puts[c.Blob]; bp == nil {
			tr.Cached++
		} else if !counted[c.Blob] {
			<-bp.done
			start(bp.k + ParallelBlobs)
			if bp.err != nil {
				return bp.err
			}
			tr.BlobSent += bp.sent
			tr.Sent++
			counted[c.Blob] = true
		}
		tr.Done++
		tr.Bytes += int64(c.Size)
		if progress != nil {
			progress(*tr)
		}
	}
	return nil
}

// ParallelBlobs is how many blobs an attach puts, or a fetch gets, at
// once: enough to keep a relay's round trips and the local hashing and
// encryption overlapping, few enough to bound memory (each blob in
// flight is at most attach.MaxBlob) and a relay's per-address limits.
const ParallelBlobs = 4

// blobPut is one blob an upload puts: the first chunk that has it, and
// how it went once done is closed.
type blobPut struct {
	i    int // the first chunk with the blob
	k    int // its place among the blobs put
	id   attach.BlobID
	done chan struct{}
	sent int64
	err  error
}

// putBlob reads blob id from the cache and puts it on every relay of
// lacks that lacks it (chunk i of the file name), returning the bytes
// sent.
func (n *Node) putBlob(ctx context.Context, lacks []blobLack, i int, id attach.BlobID, topicKey *identity.SigningKey, name string) (int64, error) {
	blob, err := os.ReadFile(n.blobPath(id))
	if err != nil {
		return 0, fmt.Errorf("blob cache: %w", err)
	}
	var sent int64
	for _, l := range lacks {
		if l.has[i] {
			continue
		}
		err := retry(ctx, func() error {
			_, err := l.c.PutBlob(ctx, topicKey, blob)
			return err
		})
		if err != nil {
			return sent, fmt.Errorf("putting chunk %d of %s on %s: %s (nothing was published; run the command again to resume)", i+1, name, l.c.URL(), RelayError(err))
		}
		sent += int64(len(blob))
	}
	return sent, nil
}
