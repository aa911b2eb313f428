package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// Fetching a task's files: each chunk from the home's cache or the relays,
// opened and checked.

// FileInfo is one file of a task as a member sees it.
type FileInfo struct {
	state.File
	Held bool // every blob is in this home's blob cache
}

// Files returns the files attached to task t of p that this member sees.
func (n *Node) Files(ctx context.Context, p event.ID, taskRef string) ([]FileInfo, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return nil, err
	}
	t, err := ResolveTask(s, n.me(), taskRef)
	if err != nil {
		return nil, err
	}
	out := make([]FileInfo, 0, len(t.Files))
	for _, f := range t.Files {
		held := true
		for _, c := range f.Chunks {
			if _, err := os.Stat(n.blobPath(c.Blob)); err != nil {
				held = false
				break
			}
		}
		out = append(out, FileInfo{File: f, Held: held})
	}
	return out, nil
}

// resolveFile finds a file of t by ID or unique prefix.
func resolveFile(t *state.Task, ref string) (state.File, error) {
	return byRef(t, t.Files, func(f state.File) event.ID { return f.ID }, ref, "file", " (`pursuance task files P T` shows them)")
}

// Fetch fetches file fileRef of task t of p, verifies every chunk and the
// whole file, and writes it to out (through out.part, renamed at the
// end). Chunks come from the blob cache first, then from the relays, then
// from members' nodes; each fetched is kept in the cache, so a fetch run
// again after an interruption resumes.
func (n *Node) Fetch(ctx context.Context, p event.ID, taskRef, fileRef, out string, progress Progress) (Transfer, error) {
	part := out + ".part"
	w, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return Transfer{}, fmt.Errorf("cannot write %s: %w", part, errors.Unwrap(err))
	}
	defer func() {
		w.Close()
		os.Remove(part) // gone once renamed
	}()
	tr, _, err := n.FetchTo(ctx, p, taskRef, fileRef, w, progress)
	if err != nil {
		return tr, err
	}
	if err := w.Close(); err != nil {
		return tr, err
	}
	return tr, os.Rename(part, out)
}

// FetchTo is Fetch writing the file to w, as its chunks are verified; it
// returns the file's manifest. Only once it returns without an error is
// what it wrote the whole file, checked by its SHA-256.
func (n *Node) FetchTo(ctx context.Context, p event.ID, taskRef, fileRef string, w io.Writer, progress Progress) (Transfer, state.File, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return Transfer{}, state.File{}, err
	}
	t, err := ResolveTask(s, n.me(), taskRef)
	if err != nil {
		return Transfer{}, state.File{}, err
	}
	f, err := resolveFile(t, fileRef)
	if err != nil {
		return Transfer{}, state.File{}, err
	}
	urls, err := n.RelayURLs(ctx, p)
	if err != nil {
		return Transfer{}, f, err
	}
	src := blobSources{relays: len(urls), topicKey: n.groupTopicKey(s)}
	// Then the nodes members announced: they serve the blobs their
	// homes hold (HomeBlobs).
	for _, a := range s.NodeAddresses() {
		if a.Device != n.id.ID() {
			urls = append(urls, a.URL)
		}
	}
	src.urls = urls
	tr := Transfer{File: f.ID.String(), Chunks: len(f.Chunks), Size: int64(f.Size)}
	sum := sha256.New()
	// ParallelBlobs chunks are got ahead (each verified and cached by
	// getChunk); they are written in file order as they come.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gets := make([]*chunkGet, len(f.Chunks))
	start := func(i int) {
		if i >= len(f.Chunks) {
			return
		}
		g := &chunkGet{done: make(chan struct{})}
		gets[i] = g
		go func() {
			defer close(g.done)
			g.pt, g.cached, g.blobLen, g.reput, g.err = n.getChunk(ctx, p, src, f.Chunks[i])
		}()
	}
	defer func() {
		// Nothing is left running once this returns.
		cancel()
		for _, g := range gets {
			if g != nil {
				<-g.done
			}
		}
	}()
	for i := range min(ParallelBlobs, len(f.Chunks)) {
		start(i)
	}
	for i := range f.Chunks {
		g := gets[i]
		<-g.done
		start(i + ParallelBlobs)
		if g.err != nil {
			return tr, f, fmt.Errorf("chunk %d of %d of %s: %w (what was fetched is kept: run the command again to resume)", i+1, len(f.Chunks), f.Name, g.err)
		}
		pt := g.pt
		g.pt = nil // written: not held longer
		if g.cached {
			tr.Cached++
		} else {
			tr.Sent++
			tr.BlobSent += g.blobLen
			tr.Reput += g.reput
		}
		sum.Write(pt)
		if _, err := w.Write(pt); err != nil {
			return tr, f, fmt.Errorf("writing %s: %w", f.Name, err)
		}
		tr.Done++
		tr.Bytes += int64(len(pt))
		if progress != nil {
			progress(tr)
		}
	}
	if [32]byte(sum.Sum(nil)) != f.SHA256 {
		return tr, f, fmt.Errorf("%w: the chunks of %s verify one by one, but the whole file's SHA-256 is not the manifest's", attach.ErrTampered, f.Name)
	}
	return tr, f, nil
}

// chunkGet is one chunk a fetch gets ahead, and how it went once done
// is closed.
type chunkGet struct {
	done    chan struct{}
	pt      []byte
	cached  bool
	blobLen int64
	reput   int
	err     error
}

// blobSources are where a fetch looks for blobs: the pursuance's relays
// (the first relays of urls), then members' nodes; and the group topic
// key that puts a blob back on a relay found lacking it, if held.
type blobSources struct {
	urls     []string
	relays   int
	topicKey *identity.SigningKey
}

// groupTopicKey is the key of the current group generation's topic, which
// puts blobs, or nil if this member does not hold it.
func (n *Node) groupTopicKey(s *state.State) *identity.SigningKey {
	cur, ok := s.CurrentKey("")
	if !ok {
		return nil
	}
	h, ok := s.Held()[cur.Update]
	if !ok {
		return nil
	}
	_, k, err := h.Key.Topic()
	if err != nil {
		return nil
	}
	return k
}

// getChunk returns the plaintext of chunk c, verified: from the blob
// cache, or fetched (then kept in the cache, so that a fetch run again
// resumes), and whether it came from the cache. A blob fetched after a
// relay of the pursuance said it does not hold it is put back on that
// relay (docs/attachments.md, "Retention"); how many such puts
// succeeded is reput.
func (n *Node) getChunk(ctx context.Context, p event.ID, src blobSources, c attach.ChunkRef) (pt []byte, cached bool, blobLen int64, reput int, err error) {
	if pt, ok := n.cachedBlob(c); ok {
		return pt, true, 0, 0, nil
	}
	blob, lacking, err := n.fetchBlob(ctx, p, src, c)
	if err != nil {
		return nil, false, 0, 0, err
	}
	if pt, err = attach.Open(c, blob); err != nil {
		return nil, false, 0, 0, err
	}
	if err := n.cacheBlob(c.Blob, blob); err != nil {
		return nil, false, 0, 0, err
	}
	if src.topicKey != nil {
		for _, u := range lacking {
			// Best effort: the fetch has what it needs.
			if _, err := n.relayClient(p, u).PutBlob(ctx, src.topicKey, blob); err != nil {
				n.warn("could not put a missing blob back on a relay", "relay", u, "blob", c.Blob.String(), "err", RelayError(err))
				continue
			}
			reput++
		}
	}
	return pt, false, int64(len(blob)), reput, nil
}

// fetchBlob gets the blob of c from the first source that has it right:
// one that answers another blob is passed over. lacking are the
// pursuance's relays that answered that they do not hold it.
func (n *Node) fetchBlob(ctx context.Context, p event.ID, src blobSources, c attach.ChunkRef) (blob []byte, lacking []string, err error) {
	var errs []error
	for i, u := range src.urls {
		cl := n.relayClient(p, u)
		err := retry(ctx, func() error {
			var err error
			blob, err = cl.Blob(ctx, c.Blob)
			return err
		})
		if err == nil {
			if _, err = attach.Open(c, blob); err == nil {
				return blob, lacking, nil
			}
			n.warn("a relay answered a blob that does not match its manifest", "relay", u, "blob", c.Blob.String())
		}
		var se *relay.StatusError
		if errors.As(err, &se) && se.Status == http.StatusNotFound {
			err = errors.New("it does not hold it")
			if i < src.relays {
				lacking = append(lacking, u)
			}
		}
		errs = append(errs, fmt.Errorf("%s: %s", u, RelayError(err)))
	}
	if len(errs) == 0 {
		return nil, nil, errors.New("this pursuance has no relay to fetch it from")
	}
	return nil, nil, fmt.Errorf("no relay gave it: %w", errors.Join(errs...))
}
