package relay

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// The blob area (docs/relay-protocol.md, "Blobs"; docs/attachments.md): a
// relay keeps opaque, content-addressed blobs, the encrypted chunks of
// attachments. It checks that a blob's SHA-256 is its ID, that its size is
// one of the buckets, and that whoever puts it holds a topic's key (whose
// quota it is charged to). It learns nothing else: not the file, its
// name or type, nor the task.

// Limits of the blob area.
const (
	// MaxBlobBody is the largest PUT body: the topic key, the signature
	// and the largest blob.
	MaxBlobBody = 32 + identity.SignatureSize + attach.MaxBlob
	// MaxHaveIDs is the most IDs one have-query asks about.
	MaxHaveIDs = 1024
	// DefaultBlobTopicQuota bounds the blob bytes charged to one topic
	// (one generation of a pursuance's group key): 4 GiB.
	DefaultBlobTopicQuota = 4 << 30
	// blobWriteTime is how long a client may take to receive a blob
	// (8 MiB at 70 KiB/s, a slow Tor circuit).
	blobWriteTime = 2 * time.Minute
)

const blobLabel = "pursuance/v1/relay-blob"

// ErrNoBlob is returned by a BlobStore for a blob it does not hold.
var ErrNoBlob = errors.New("relay: no such blob")

// ErrBlobsUnsupported is what a Store that keeps no blobs may return from
// every BlobStore method; the server then answers 501.
var ErrBlobsUnsupported = errors.New("relay: this store keeps no blobs")

// ErrBlobsReadOnly is what a BlobStore that serves blobs but takes none
// returns from PutBlob (a member's node: app.HomeBlobs); the server
// answers 403.
var ErrBlobsReadOnly = errors.New("relay: this relay serves blobs but takes none")

// BlobStore is the blob area of a Store. A Store that keeps blobs
// implements it; for one that does not (or returns ErrBlobsUnsupported),
// the server answers blob requests 501 "this relay keeps no blobs".
// Implementations must be safe for concurrent use.
type BlobStore interface {
	// PutBlob keeps blob under id, charged to topic, and returns once it
	// is durable. The server has checked that id is the SHA-256 of blob
	// and that its size is a bucket; the store trusts both. Putting a blob
	// it holds already returns stored false and changes nothing but the
	// blob's put time, for BlobPruner (the blob stays charged to the
	// topic that put it first). It keeps no reference to blob after
	// returning.
	PutBlob(ctx context.Context, id attach.BlobID, topic keys.Topic, blob []byte) (stored bool, err error)
	// Blob returns the blob held under id, or an error wrapping ErrNoBlob.
	Blob(ctx context.Context, id attach.BlobID) ([]byte, error)
	// HasBlobs reports, for each of ids in order, whether it holds it.
	HasBlobs(ctx context.Context, ids []attach.BlobID) ([]bool, error)
	// BlobUsage returns the bytes of blobs charged to topic and of all
	// blobs, for the quotas. It may lag a put in progress.
	BlobUsage(ctx context.Context, topic keys.Topic) (topicBytes, totalBytes int64, err error)
}

// BlobPruner is a BlobStore that drops blobs by age: the server's
// retention loop calls it with the relay's retention age, as it prunes
// envelopes (docs/attachments.md, "Retention").
type BlobPruner interface {
	// PruneBlobs drops the blobs last put before cut and returns how many
	// it dropped and their bytes; the quotas' counts drop with them.
	PruneBlobs(ctx context.Context, cut time.Time) (n int, bytes int64, err error)
}

// blobMessage is what the topic key signs to put a blob.
func blobMessage(topic keys.Topic, id attach.BlobID) []byte {
	msg := make([]byte, 0, len(blobLabel)+1+len(topic)+len(id))
	msg = append(msg, blobLabel...)
	msg = append(msg, 0)
	msg = append(msg, topic[:]...)
	return append(msg, id[:]...)
}

// EncodeBlobPut makes the body of a blob put: the topic key's public half,
// its signature over the blob's ID, and the blob.
func EncodeBlobPut(key *identity.SigningKey, blob []byte) []byte {
	pub := key.Public()
	topic := keys.TopicOf(pub)
	body := make([]byte, 0, 32+identity.SignatureSize+len(blob))
	body = append(body, pub[:]...)
	body = append(body, key.Sign(blobMessage(topic, attach.IDOf(blob)))...)
	return append(body, blob...)
}

func (s *Server) blobStore(w http.ResponseWriter, r *http.Request) (BlobStore, bool) {
	if s.cfg.Blobs != nil {
		return s.cfg.Blobs, true
	}
	bs, ok := s.st.(BlobStore)
	if !ok {
		s.fail(w, r, http.StatusNotImplemented, "no_blobs", errors.New("this relay keeps no blobs (attachments): use another relay for files"))
	}
	return bs, ok
}

// blobErr answers a store's failure: 501 for a store that keeps no blobs.
func (s *Server) blobErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrBlobsUnsupported) {
		s.fail(w, r, http.StatusNotImplemented, "no_blobs", errors.New("this relay keeps no blobs (attachments): use another relay for files"))
		return
	}
	if errors.Is(err, ErrBlobsReadOnly) {
		s.fail(w, r, http.StatusForbidden, "blobs_read_only", errors.New("this relay (a member's node) serves the files its member holds and takes none: put them on the pursuance's relays"))
		return
	}
	if errors.Is(err, ErrClosed) {
		w.Header().Set("Retry-After", "5")
		s.fail(w, r, http.StatusServiceUnavailable, "closed", errors.New("the relay is stopping; retry later"))
		return
	}
	s.fail(w, r, http.StatusInternalServerError, "store", err)
}

func parseBlobID(s string) (attach.BlobID, error) {
	id, err := attach.ParseBlobID(s)
	if err != nil {
		return id, fmt.Errorf("bad blob ID in the path: %w", err)
	}
	return id, nil
}

// putBlob: PUT /v1/blobs/{id}.
func (s *Server) putBlob(w http.ResponseWriter, r *http.Request) {
	id, err := parseBlobID(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "blob_id", err)
		return
	}
	bs, ok := s.blobStore(w, r)
	if !ok {
		return
	}
	if r.ContentLength > MaxBlobBody {
		s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("blob body of %d bytes, over the limit of %d (a blob is at most %d bytes)", r.ContentLength, MaxBlobBody, attach.MaxBlob))
		return
	}
	held, ok := s.hold(r, holdAppend, busyWait)
	if !ok {
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusTooManyRequests, "appends_per_addr", fmt.Errorf("over %d appends or blob puts at once from your address; retry when one is answered", s.cfg.AppendsPerAddr))
		return
	}
	defer held()
	up := &upload{rc: http.NewResponseController(w)}
	if err := s.reserve(r.Context(), up, MaxBlobBody, 0); err != nil {
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusServiceUnavailable, "busy", errors.New("the relay is taking as many uploads as it holds at once; retry in a second"))
		return
	}
	s.upMu.Lock()
	s.uploads[up] = struct{}{}
	s.upMu.Unlock()
	defer func() {
		s.appends.release(MaxBlobBody)
		s.upMu.Lock()
		delete(s.uploads, up)
		s.upMu.Unlock()
	}()
	src := &stallReader{r: http.MaxBytesReader(w, r.Body, MaxBlobBody), up: up, start: time.Now()}
	body, err := io.ReadAll(src)
	up.rc.SetReadDeadline(time.Time{})
	up.rc.SetWriteDeadline(time.Now().Add(appendAnswerTime))
	if err != nil {
		w.Header().Set("Connection", "close")
		var tooBig *http.MaxBytesError
		switch {
		case up.preempted.Load():
			s.fail(w, r, http.StatusRequestTimeout, "stalled", errors.New("the blob arrived too slowly while others waited; retry"))
		case errors.As(err, &tooBig):
			s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("blob body over the limit of %d bytes (a blob is at most %d bytes)", MaxBlobBody, attach.MaxBlob))
		default:
			s.fail(w, r, http.StatusBadRequest, "read", errors.New("the blob's body ended early, stalled or could not be read"))
		}
		return
	}
	head := 32 + identity.SignatureSize
	if len(body) < head {
		s.fail(w, r, http.StatusBadRequest, "malformed", fmt.Errorf("blob body of %d bytes: it starts with a topic key and a signature (%d bytes)", len(body), head))
		return
	}
	var pub identity.PublicKey
	copy(pub[:], body)
	topic := keys.TopicOf(pub)
	blob := body[head:]
	if !attach.IsBlobSize(len(blob)) {
		s.fail(w, r, http.StatusBadRequest, "blob_size", fmt.Errorf("a blob of %d bytes is not one of the blob sizes (%d to %d bytes, padded to buckets: docs/attachments.md)", len(blob), attach.MinBlob, attach.MaxBlob))
		return
	}
	if got := attach.IDOf(blob); got != id {
		s.fail(w, r, http.StatusBadRequest, "blob_hash", fmt.Errorf("the blob's SHA-256 is %s, not the ID in the path", got))
		return
	}
	if !pub.Verify(blobMessage(topic, id), body[32:head]) {
		s.fail(w, r, http.StatusForbidden, "unauthorized", errors.New("the blob put is not signed by the topic key it carries"))
		return
	}
	have, err := bs.HasBlobs(r.Context(), []attach.BlobID{id})
	if err != nil {
		s.blobErr(w, r, err)
		return
	}
	if !have[0] && !s.checkBlobQuotas(w, r, bs, topic, int64(len(blob))) {
		return
	}
	stored, err := bs.PutBlob(r.Context(), id, topic, blob)
	if err != nil {
		s.blobErr(w, r, err)
		return
	}
	if stored {
		s.m.bytes.Add(float64(len(blob)))
	}
	writeJSON(w, http.StatusOK, map[string]bool{"stored": stored})
}

// checkBlobQuotas refuses a blob that would take its topic over
// BlobTopicQuota, all blobs over BlobStoreQuota, or the disk under
// MinFree (507), or that would create a topic beyond the address's
// NewTopicsPerHour (429). On false it has answered.
func (s *Server) checkBlobQuotas(w http.ResponseWriter, r *http.Request, bs BlobStore, topic keys.Topic, size int64) bool {
	tb, total, err := bs.BlobUsage(r.Context(), topic)
	if err != nil {
		s.blobErr(w, r, err)
		return false
	}
	if q := s.cfg.BlobTopicQuota; q > 0 && tb+size > q {
		s.fail(w, r, http.StatusInsufficientStorage, "blob_topic_quota", fmt.Errorf("this pursuance's key generation has %d bytes of files on this relay, and it keeps at most %d per generation; it takes no more (use another relay for files, or remove old ones)", tb, q))
		return false
	}
	if q := s.cfg.BlobStoreQuota; q > 0 && total+size > q {
		s.fail(w, r, http.StatusInsufficientStorage, "blob_store_quota", fmt.Errorf("this relay's blob area is full (%d bytes, its operator's quota); it takes no more files: use another relay", q))
		return false
	}
	if free, ok := s.disk.free(s.now()); ok && free-size < s.cfg.MinFree {
		s.fail(w, r, http.StatusInsufficientStorage, "disk_full", errors.New("this relay's disk is full; it takes no more files: use another relay"))
		return false
	}
	if a, known := s.requestAddr(r); tb == 0 && known {
		if ok, wait := s.clients.newTopic(a, s.now()); !ok {
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", fmt.Sprint(secs))
			s.fail(w, r, http.StatusTooManyRequests, "new_topics", fmt.Errorf("over %g new topics an hour from your address; retry in %d s", s.cfg.NewTopicsPerHour, secs))
			return false
		}
	}
	return true
}

// getBlob: GET /v1/blobs/{id}.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request) {
	id, err := parseBlobID(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "blob_id", err)
		return
	}
	bs, ok := s.blobStore(w, r)
	if !ok {
		return
	}
	release, ok := s.admitRead(w, r)
	if !ok {
		return
	}
	defer release()
	blob, err := bs.Blob(r.Context(), id)
	if errors.Is(err, ErrNoBlob) {
		s.fail(w, r, http.StatusNotFound, "no_blob", errors.New("this relay holds no blob with that ID"))
		return
	}
	if err != nil {
		s.blobErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(blobWriteTime))
	w.Write(blob)
}

// haveBlobs: POST /v1/blobs/have, body: n × 32-byte IDs.
func (s *Server) haveBlobs(w http.ResponseWriter, r *http.Request) {
	bs, ok := s.blobStore(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxHaveIDs*sha256.Size+1))
	if err != nil || len(body)%sha256.Size != 0 || len(body) == 0 || len(body) > MaxHaveIDs*sha256.Size {
		s.fail(w, r, http.StatusBadRequest, "malformed", fmt.Errorf("a have-query is 1 to %d blob IDs of 32 bytes each", MaxHaveIDs))
		return
	}
	ids := make([]attach.BlobID, len(body)/sha256.Size)
	for i := range ids {
		copy(ids[i][:], body[i*sha256.Size:])
	}
	have, err := bs.HasBlobs(r.Context(), ids)
	if err != nil {
		s.blobErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]bool{"have": have})
}

// PutBlob puts blob on the relay, signed with a topic key (the group
// generation's: keys.Key.Topic); stored is false when the relay held it.
func (c *Client) PutBlob(ctx context.Context, key *identity.SigningKey, blob []byte) (stored bool, err error) {
	id := attach.IDOf(blob)
	resp, err := c.call(ctx, http.MethodPut, "/v1/blobs/"+id.String(), EncodeBlobPut(key, blob))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var res struct{ Stored bool }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<10)).Decode(&res); err != nil {
		return false, fmt.Errorf("relay: blob put answer: %w", err)
	}
	return res.Stored, nil
}

// Blob gets the blob id from the relay. It checks nothing but the size
// bound: the caller checks the hash (attach.Open).
func (c *Client) Blob(ctx context.Context, id attach.BlobID) ([]byte, error) {
	resp, err := c.call(ctx, http.MethodGet, "/v1/blobs/"+id.String(), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, attach.MaxBlob+1))
	if err != nil {
		return nil, fmt.Errorf("relay: blob %s: %w", id.String()[:12], err)
	}
	if len(b) > attach.MaxBlob {
		return nil, fmt.Errorf("relay: blob %s over %d bytes", id.String()[:12], attach.MaxBlob)
	}
	return b, nil
}

// HasBlobs asks the relay which of ids it holds (at most MaxHaveIDs).
func (c *Client) HasBlobs(ctx context.Context, ids []attach.BlobID) ([]bool, error) {
	if len(ids) == 0 || len(ids) > MaxHaveIDs {
		return nil, fmt.Errorf("relay: %d IDs in one have-query (1 to %d)", len(ids), MaxHaveIDs)
	}
	body := make([]byte, 0, len(ids)*sha256.Size)
	for _, id := range ids {
		body = append(body, id[:]...)
	}
	resp, err := c.call(ctx, http.MethodPost, "/v1/blobs/have", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var res struct{ Have []bool }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8*MaxHaveIDs)).Decode(&res); err != nil {
		return nil, fmt.Errorf("relay: have answer: %w", err)
	}
	if len(res.Have) != len(ids) {
		return nil, fmt.Errorf("relay: a have answer of %d for %d IDs", len(res.Have), len(ids))
	}
	return res.Have, nil
}
