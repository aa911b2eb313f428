package store

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/internal/atrest"
)

// Key is the secret a SQLite store is encrypted under (docs/store.md,
// "Encryption at rest"). A member's home derives it from the member's
// identity (docs/keystore.md); it is never stored. A store written under
// one key does not open under another (ErrWrongKey).
type Key [atrest.KeySize]byte

// Labels of what the store seals: each sealed value's associated data
// starts with one, so that no value opens as another kind of value.
const (
	checkLabel = "pursuance/v1/store/check"
	eventLabel = "pursuance/v1/store/event"
	boxLabel   = "pursuance/v1/store/box/"
)

// Blinding domains: event and pursuance IDs share one, so that a
// pursuance's row and its genesis event's carry the same bid.
const (
	domainID       = "id"
	domainAuthor   = "author"
	domainEvidence = "evidence"
)

// Tables whose rows hold a sealed box, for the box's associated data.
const (
	boxPursuance = "pursuances"
	boxAuthor    = "authors"
	boxHead      = "heads"
	boxEvidence  = "evidence"
)

// blobPad is the granularity events are padded to before they are
// sealed: a blob's length tells the event's size only to within blobPad
// bytes, so that it does not tell apart events of nearby sizes (a role
// assignment from a comment). Relays see envelopes padded to buckets of 1
// KiB and more; padding events at rest that far would double the store.
const blobPad = 64

// sealer seals and blinds what the store holds.
type sealer struct {
	c *atrest.Cipher
}

func newSealer(k Key) sealer {
	return sealer{c: atrest.NewCipher(atrest.Key(k))}
}

// id blinds an event or pursuance ID.
func (s sealer) id(id event.ID) atrest.Blinded { return s.c.Blind(domainID, id[:]) }

// author blinds an author key.
func (s sealer) author(k identity.PublicKey) atrest.Blinded { return s.c.Blind(domainAuthor, k[:]) }

// evidenceRecord is an equivocation record's sealed form: author, seq, A
// and B (the pursuance is the row's).
func evidenceRecord(q event.Equivocation) []byte {
	b := make([]byte, 0, len(q.Author)+8+2*event.IDSize)
	b = append(b, q.Author[:]...)
	b = binary.BigEndian.AppendUint64(b, q.Seq)
	b = append(b, q.A[:]...)
	return append(b, q.B[:]...)
}

func parseEvidenceRecord(pursuance event.ID, b []byte) (event.Equivocation, error) {
	q := event.Equivocation{Pursuance: pursuance}
	if len(b) != len(q.Author)+8+2*event.IDSize {
		return q, fmt.Errorf("evidence record of %d bytes: the database is corrupt", len(b))
	}
	copy(q.Author[:], b)
	q.Seq = binary.BigEndian.Uint64(b[32:])
	copy(q.A[:], b[40:])
	copy(q.B[:], b[72:])
	return q, nil
}

// boxAAD is the associated data of a box in table whose row is keyed by
// the blinded value key.
func boxAAD(table string, key []byte) []byte {
	return append(append([]byte(boxLabel+table), 0), key...)
}

// sealBox seals a small value (an ID, a key, an evidence record) for the
// row of table keyed by key.
func (s sealer) sealBox(table string, key, value []byte) []byte {
	return s.c.Seal(nil, nil, value, boxAAD(table, key))
}

// openBox opens a box sealed by sealBox for the same row.
func (s sealer) openBox(table string, key, box []byte) ([]byte, error) {
	v, err := s.c.Open(nil, box, boxAAD(table, key))
	if err != nil {
		return nil, fmt.Errorf("%s row %x: %w: the database is corrupt or not this home's", table, key[:min(len(key), 6)], err)
	}
	return v, nil
}

// openID opens a box holding an ID or key of 32 bytes.
func (s sealer) openID(table string, key, box []byte) ([32]byte, error) {
	v, err := s.openBox(table, key, box)
	if err != nil {
		return [32]byte{}, err
	}
	if len(v) != 32 {
		return [32]byte{}, fmt.Errorf("%s row %x holds %d bytes, not 32: the database is corrupt", table, key[:min(len(key), 6)], len(v))
	}
	return [32]byte(v), nil
}

func eventAAD(bid []byte) []byte {
	return append([]byte(eventLabel), bid...)
}

// blobSize is the length of an event's sealed blob: the length of its
// wire form (uvarint), the wire form, zero padding to blobPad, then the
// nonce and tag.
func blobSize(e *event.Event) int {
	n := e.EncodedSize()
	pt := n + uvarintLen(uint64(n))
	pt = (pt + blobPad - 1) / blobPad * blobPad
	return pt + atrest.Overhead
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// sealEvent appends to dst the event's blob for the row of bid, sealed
// with nonce. scratch is reused for the plaintext; it returns both.
func (s sealer) sealEvent(dst, scratch, nonce []byte, e *event.Event, bid atrest.Blinded) (blob, pt []byte) {
	n := e.EncodedSize()
	pt = binary.AppendUvarint(scratch[:0], uint64(n))
	pt = e.AppendEncode(pt)
	for len(pt)%blobPad != 0 {
		pt = append(pt, 0)
	}
	return s.c.Seal(dst, nonce, pt, eventAAD(bid[:])), pt
}

// openEvent opens the blob of the row of bid and rebuilds its event.
// scratch is reused for the plaintext.
func (s sealer) openEvent(bid, blob, scratch []byte) (*event.Event, []byte, error) {
	pt, err := s.c.Open(scratch[:0], blob, eventAAD(bid))
	if err != nil {
		return nil, scratch, fmt.Errorf("stored event %x: %w: the database is corrupt or not this home's", bid[:min(len(bid), 6)], err)
	}
	n, k := binary.Uvarint(pt)
	if k <= 0 || n > uint64(len(pt)-k) {
		return nil, pt, fmt.Errorf("stored event %x is malformed: the database is corrupt", bid[:min(len(bid), 6)])
	}
	e, err := event.Decode(pt[k : k+int(n)])
	if err != nil {
		return nil, pt, fmt.Errorf("stored event %x: %w", bid[:min(len(bid), 6)], err)
	}
	return e, pt, nil
}

// sealedEvent is an event ready for its row: its blinded ID and its blob.
type sealedEvent struct {
	bid  atrest.Blinded
	blob []byte
}

// sealParallelMin is the batch size from which sealAll spreads its work
// over all cores; smaller batches are sealed on the caller's goroutine.
const sealParallelMin = 512

// sealAll blinds and seals every event of a batch, before Put takes the
// writer's lock: sealing is the store's CPU work, and done here it runs on
// every core instead of inside the single writer. Nonces are read from
// crypto/rand once for the batch, and the blobs share one allocation.
func (s sealer) sealAll(events []*event.Event) []sealedEvent {
	out := make([]sealedEvent, len(events))
	offs := make([]int, len(events)+1)
	for i, e := range events {
		offs[i+1] = offs[i] + blobSize(e)
	}
	buf := make([]byte, offs[len(events)])
	nonces := make([]byte, atrest.NonceSize*len(events))
	rand.Read(nonces)
	work := func(lo, hi int) {
		var scratch []byte
		for i := lo; i < hi; i++ {
			e := events[i]
			bid := s.id(e.ID())
			var blob []byte
			blob, scratch = s.sealEvent(buf[offs[i]:offs[i]:offs[i+1]], scratch, nonces[i*atrest.NonceSize:(i+1)*atrest.NonceSize], e, bid)
			out[i] = sealedEvent{bid: bid, blob: blob}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(events)/sealParallelMin)
	if workers <= 1 {
		work(0, len(events))
		return out
	}
	var wg sync.WaitGroup
	per := (len(events) + workers - 1) / workers
	for lo := 0; lo < len(events); lo += per {
		wg.Go(func() { work(lo, min(lo+per, len(events))) })
	}
	wg.Wait()
	return out
}
