// Package attach is the pure core of attachments (docs/attachments.md):
// content-defined chunking of a file, each chunk padded to a size bucket
// and encrypted under a key derived from the task's attachment secret and
// the chunk's content, and named by the SHA-256 of its ciphertext (a
// blob). A manifest of chunk references travels sealed inside the task
// event (state.TaskAttach); relays store blobs and learn only their sizes
// (in buckets) and hashes. No I/O beyond the reader it is given.
package attach

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/restic/chunker"
	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"
)

// Limits. Part of the format: a manifest over them is refused by every
// client (state.CheckInput, the op's checks).
const (
	// MinChunk and MaxChunk bound a chunk's plaintext (the last chunk of
	// a file may be smaller than MinChunk); AverageBits makes the average
	// chunk 2^20 bytes (1 MiB).
	MinChunk    = 512 << 10
	MaxChunk    = 8 << 20
	AverageBits = 20
	// MaxFileSize is the largest file one attachment holds: 100 MiB.
	MaxFileSize = 100 << 20
	// MaxChunks is the most chunks a manifest lists; MaxFileSize/MinChunk
	// is 200, so a file within MaxFileSize always fits.
	MaxChunks = 256
	// MinBlob is the smallest blob: a chunk of a few bytes still costs
	// 4 KiB on a relay, so that tiny files all look alike.
	MinBlob = 4 << 10
	// MaxBlob is the largest blob: the bucket of a MaxChunk plaintext.
	MaxBlob = (MaxChunk + 1 + TagSize + (1 << 18) - 1) &^ ((1 << 18) - 1)
	// TagSize is the AEAD tag that ends every blob.
	TagSize = chacha20poly1305.Overhead
)

// Labels of the derivations from a task's attachment secret. Part of the
// format: never change one.
const (
	labelPolynomial = "pursuance/v1/attach-polynomial"
	labelChunkKey   = "pursuance/v1/attach-chunk-key"
	labelChunkAD    = "pursuance/v1/attach-chunk"
)

// ErrTampered is wrapped when a blob is not the one a manifest names, or
// does not decrypt: a relay or peer handed over something else.
var ErrTampered = errors.New("attach: blob does not match its manifest")

// BlobID is the SHA-256 of a blob (the ciphertext of one chunk): how it is
// asked for, and checked.
type BlobID [sha256.Size]byte

// IDOf returns the ID of blob.
func IDOf(blob []byte) BlobID { return sha256.Sum256(blob) }

// String returns the ID in 64 lowercase hex digits.
func (b BlobID) String() string { return hex.EncodeToString(b[:]) }

// ParseBlobID parses 64 hex digits.
func ParseBlobID(s string) (BlobID, error) {
	var b BlobID
	if len(s) != 2*len(b) {
		return b, fmt.Errorf("a blob ID is %d hex digits, not %d", 2*len(b), len(s))
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return b, errors.New("a blob ID is hex digits")
	}
	return b, nil
}

// ChunkRef is one chunk of a file as its manifest lists it: the blob that
// holds it, the key that opens it and its plaintext size.
type ChunkRef struct {
	Blob BlobID   `cbor:"1,keyasint"`
	Key  [32]byte `cbor:"2,keyasint"`
	Size uint32   `cbor:"3,keyasint"`
}

// padme rounds n up so that only O(log log n) bits of it remain: the
// exponent and the top bits of the mantissa (Padmé, Nikitin et al.,
// PETS 2019). Overhead at most about 12 % (6 % above 16 MiB).
func padme(n int) int {
	if n < 2 {
		return n
	}
	e := bits.Len(uint(n)) - 1 // ⌊log2 n⌋
	s := bits.Len(uint(e))     // ⌊log2 e⌋ + 1
	mask := 1<<(e-s) - 1
	return (n + mask) &^ mask
}

// BlobSize returns the size of the blob of a chunk of n plaintext bytes:
// the bucket that holds it, a 0x80 marker and the tag.
func BlobSize(n int) int { return max(MinBlob, padme(n+1+TagSize)) }

// IsBlobSize reports whether n is one of the blob buckets: what a relay
// checks of every blob it is given.
func IsBlobSize(n int) bool { return n >= MinBlob && n <= MaxBlob && padme(n) == n }

// Cutter cuts and seals the files of one task under its attachment
// secret (keys.Key.AttachSecret).
type Cutter struct {
	pol    chunker.Pol
	keyKey []byte
	buf    []byte
	ch     *chunker.Chunker
}

// NewCutter returns a cutter for secret: its chunking polynomial and its
// chunk keys are derived from it, so where chunks are cut and what their
// blobs are tell nothing to one without it (a known file cannot be
// recognised by its chunk sizes alone).
func NewCutter(secret [32]byte) (*Cutter, error) {
	seed, err := hkdf.Key(sha256.New, secret[:], nil, labelPolynomial, chacha20.KeySize)
	if err != nil {
		return nil, err
	}
	stream, err := chacha20.NewUnauthenticatedCipher(seed, make([]byte, chacha20.NonceSize))
	if err != nil {
		return nil, err
	}
	pol, err := chunker.DerivePolynomial(&keystream{stream})
	if err != nil {
		return nil, fmt.Errorf("attach: chunking polynomial: %w", err)
	}
	kk, err := hkdf.Key(sha256.New, secret[:], nil, labelChunkKey, 32)
	if err != nil {
		return nil, err
	}
	return &Cutter{pol: pol, keyKey: kk}, nil
}

// keystream reads a ChaCha20 keystream: a deterministic source of
// polynomial candidates.
type keystream struct{ c *chacha20.Cipher }

func (k *keystream) Read(p []byte) (int, error) {
	clear(p)
	k.c.XORKeyStream(p, p)
	return len(p), nil
}

// Split cuts what r holds into chunks and calls fn with each plaintext in
// order. The slice is reused after fn returns.
func (c *Cutter) Split(r io.Reader, fn func(plain []byte) error) error {
	if c.buf == nil {
		c.buf = make([]byte, MaxChunk)
		c.ch = chunker.NewWithBoundaries(r, c.pol, MinChunk, MaxChunk)
	} else {
		c.ch.ResetWithBoundaries(r, c.pol, MinChunk, MaxChunk)
	}
	c.ch.SetAverageBits(AverageBits)
	for {
		ck, err := c.ch.Next(c.buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(ck.Data); err != nil {
			return err
		}
	}
}

// Seal encrypts one chunk's plaintext: its key is an HMAC of the content
// under the cutter's key, so the same chunk seals to the same blob.
func (c *Cutter) Seal(plain []byte) (ChunkRef, []byte) {
	if len(plain) > MaxChunk {
		panic("attach: chunk over MaxChunk")
	}
	m := hmac.New(sha256.New, c.keyKey)
	m.Write(plain)
	var ref ChunkRef
	copy(ref.Key[:], m.Sum(nil))
	ref.Size = uint32(len(plain))
	blob := SealChunk(ref.Key, plain)
	ref.Blob = IDOf(blob)
	return ref, blob
}

// SealChunk pads plain to its bucket and encrypts it under key with
// ChaCha20-Poly1305, nonce zero (a key seals one plaintext only: it is
// derived from it).
func SealChunk(key [32]byte, plain []byte) []byte {
	size := BlobSize(len(plain))
	padded := make([]byte, size-TagSize, size)
	copy(padded, plain)
	padded[len(plain)] = 0x80
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		panic(err) // the key is 32 bytes
	}
	return aead.Seal(padded[:0], make([]byte, chacha20poly1305.NonceSize), padded, []byte(labelChunkAD))
}

// Open checks that blob is the one ref names and returns its plaintext.
func Open(ref ChunkRef, blob []byte) ([]byte, error) {
	if IDOf(blob) != ref.Blob {
		return nil, fmt.Errorf("%w: blob %s has another hash", ErrTampered, ref.Blob.String()[:12])
	}
	if len(blob) != BlobSize(int(ref.Size)) {
		return nil, fmt.Errorf("%w: blob %s is %d bytes, not %d", ErrTampered, ref.Blob.String()[:12], len(blob), BlobSize(int(ref.Size)))
	}
	aead, err := chacha20poly1305.New(ref.Key[:])
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, make([]byte, chacha20poly1305.NonceSize), blob, []byte(labelChunkAD))
	if err != nil {
		return nil, fmt.Errorf("%w: blob %s does not decrypt under its key", ErrTampered, ref.Blob.String()[:12])
	}
	if pt[ref.Size] != 0x80 || !allZero(pt[ref.Size+1:]) {
		return nil, fmt.Errorf("%w: blob %s is badly padded", ErrTampered, ref.Blob.String()[:12])
	}
	return pt[:ref.Size], nil
}

func allZero(b []byte) bool { return len(bytes.TrimRight(b, "\x00")) == 0 }
