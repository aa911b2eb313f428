// Package atrest encrypts what a member's home keeps on disk: the event
// store (events.db), sync.db and the names of the files in secrets/.
//
// A home's files are sealed under keys derived from one secret, which the
// app derives from the member's Ed25519 signing seed (sealed in
// identity.json under the passphrase), so that nothing in the home can be
// read without the passphrase. Each file or purpose gets its own key
// (Key.Derive, HKDF-SHA256 under a label), and each key gives a Cipher
// with two sub-keys: one seals values (XChaCha20-Poly1305, a random nonce
// per value, associated data binding the value to where it is stored), the
// other blinds values that must be looked up by equality (HMAC-SHA256), so
// that an index holds a keyed hash instead of an ID or a URL.
// docs/keystore.md lists the key tree, and every field a home keeps in the
// clear and why.
package atrest

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size of a Key.
const KeySize = 32

// Key is a secret that files of a home are encrypted under. It is never
// written anywhere: it is derived again from the member's identity each
// time the home is opened.
type Key [KeySize]byte

// labelPrefix starts every label a key is derived under.
const labelPrefix = "pursuance/v1/"

// RootLabel is the label the app derives a home's root key under, from the
// member's signing seed: HKDF-SHA256 (no salt) of the seed with this info.
const RootLabel = labelPrefix + "home-at-rest"

// Root derives a home's root key from the member's Ed25519 signing seed.
func Root(seed []byte) Key {
	return derive(seed, RootLabel)
}

// Derive returns the sub-key of k for one purpose: HKDF-SHA256 of k (no
// salt) with info "pursuance/v1/home-at-rest/" followed by purpose. Keys
// derived for different purposes are independent.
func (k Key) Derive(purpose string) Key {
	return derive(k[:], RootLabel+"/"+purpose)
}

func derive(secret []byte, info string) Key {
	b, err := hkdf.Key(sha256.New, secret, nil, info, KeySize)
	if err != nil {
		panic(fmt.Sprintf("atrest: hkdf: %v", err)) // only for lengths HKDF cannot give
	}
	return Key(b)
}

// NonceSize and Overhead are what sealing adds to a value: the random nonce
// in front and the authentication tag behind.
const (
	NonceSize = chacha20poly1305.NonceSizeX
	Overhead  = NonceSize + chacha20poly1305.Overhead
)

// BlindSize is the size of a blinded value.
const BlindSize = sha256.Size

// Blinded is a keyed hash of a value: equal values under one Cipher blind
// equal, and nothing about the value can be learnt from it without the key.
type Blinded [BlindSize]byte

// ErrOpen is returned (wrapped) when a sealed value does not open: it was
// sealed under another key, for another place, or it was altered.
var ErrOpen = errors.New("does not open under this home's key")

// Cipher seals and blinds the values of one file. It is safe for
// concurrent use.
type Cipher struct {
	aead  cipher.AEAD
	blind sync.Pool // of hash.Hash: HMAC-SHA256 under the blinding key
}

// NewCipher returns the Cipher of key k: its sealing key is k.Derive'd
// under "seal", its blinding key under "blind".
func NewCipher(k Key) *Cipher {
	sk := k.Derive("seal")
	aead, err := chacha20poly1305.NewX(sk[:])
	if err != nil {
		panic(fmt.Sprintf("atrest: %v", err)) // only for a key of the wrong size
	}
	bk := k.Derive("blind")
	c := &Cipher{aead: aead}
	c.blind.New = func() any { return hmac.New(sha256.New, bk[:]) }
	return c
}

// Blind returns the keyed hash of value in domain: HMAC-SHA256 of the
// domain's length (one byte), the domain, and the value. Values of
// different domains never blind alike, even when their bytes are equal.
func (c *Cipher) Blind(domain string, value []byte) Blinded {
	if len(domain) > 255 {
		panic("atrest: domain too long")
	}
	h := c.blind.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte{byte(len(domain))})
	h.Write([]byte(domain))
	h.Write(value)
	var out Blinded
	h.Sum(out[:0])
	c.blind.Put(h)
	return out
}

// Seal appends to dst the sealed form of plaintext, bound to aad: nonce,
// then ciphertext and tag. The nonce is read from crypto/rand unless nonce
// is given (NonceSize random bytes the caller read in bulk; never reuse
// them).
func (c *Cipher) Seal(dst, nonce, plaintext, aad []byte) []byte {
	if nonce == nil {
		nonce = make([]byte, NonceSize)
		rand.Read(nonce)
	} else if len(nonce) != NonceSize {
		panic("atrest: nonce of the wrong size")
	}
	dst = append(dst, nonce...)
	return c.aead.Seal(dst, nonce, plaintext, aad)
}

// Open appends to dst the plaintext of sealed, which must have been sealed
// with the same aad; otherwise it returns an error wrapping ErrOpen.
func (c *Cipher) Open(dst, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("a sealed value of %d bytes is too short: %w", len(sealed), ErrOpen)
	}
	out, err := c.aead.Open(dst, sealed[:NonceSize], sealed[NonceSize:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// SealFixed seals plaintext deterministically: its nonce is the first
// NonceSize bytes of Blind(domain, plaintext) and aad is the domain, so
// equal plaintexts seal alike. It is for names that must be found again
// from the value alone (a file named after a pursuance) and read back
// without a list; since a nonce repeats only with its plaintext, it gives
// away nothing but equality.
func (c *Cipher) SealFixed(domain string, plaintext []byte) []byte {
	b := c.Blind(domain, plaintext)
	return c.Seal(nil, b[:NonceSize], plaintext, []byte(domain))
}

// OpenFixed opens what SealFixed sealed in domain, checking that its nonce
// is the one SealFixed gives that plaintext.
func (c *Cipher) OpenFixed(domain string, sealed []byte) ([]byte, error) {
	pt, err := c.Open(nil, sealed, []byte(domain))
	if err != nil {
		return nil, err
	}
	if b := c.Blind(domain, pt); !hmac.Equal(b[:NonceSize], sealed[:NonceSize]) {
		return nil, ErrOpen
	}
	return pt, nil
}
