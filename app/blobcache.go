package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
)

// HomeBlobs is the blob area a member's node serves on its embedded relay
// (`pursuance up`): the blobs of the home's cache, read-only. Members'
// nodes so serve each other the files they hold, as they serve events
// (docs/attachments.md, "Transfers"): a fetch asks the pursuance's
// relays, then the nodes members announced. Every blob served is only
// ciphertext, checked by its hash by whoever fetches it.
type HomeBlobs string

var _ relay.BlobStore = HomeBlobs("")

func (h HomeBlobs) path(id attach.BlobID) string {
	return filepath.Join(string(h), BlobDir, id.String())
}

// PutBlob refuses: a node serves what its member holds and takes nothing
// from others (the relays do).
func (HomeBlobs) PutBlob(context.Context, attach.BlobID, keys.Topic, []byte) (bool, error) {
	return false, relay.ErrBlobsReadOnly
}

// Blob returns the cached blob id.
func (h HomeBlobs) Blob(_ context.Context, id attach.BlobID) ([]byte, error) {
	b, err := os.ReadFile(h.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", relay.ErrNoBlob, id)
	}
	if err != nil || len(b) > attach.MaxBlob {
		return nil, fmt.Errorf("blob cache: %s: %v", id, err)
	}
	return b, nil
}

// HasBlobs reports which of ids the cache holds.
func (h HomeBlobs) HasBlobs(_ context.Context, ids []attach.BlobID) ([]bool, error) {
	out := make([]bool, len(ids))
	for i, id := range ids {
		_, err := os.Stat(h.path(id))
		out[i] = err == nil
	}
	return out, nil
}

// BlobUsage is zero: the node takes no blobs.
func (HomeBlobs) BlobUsage(context.Context, keys.Topic) (int64, int64, error) { return 0, 0, nil }
