package faketor

import (
	"crypto/sha3"
	"crypto/sha512"
	"encoding/base32"

	"filippo.io/edwards25519"
)

// The double's own onion-address arithmetic (rend-spec-v3 §6), kept apart
// from package tor's so that the double does not depend on what it tests.

func expand(seed [32]byte) [64]byte {
	k := sha512.Sum512(seed[:])
	k[0] &= 248
	k[31] &= 63
	k[31] |= 64
	return k
}

func publicKey(k [64]byte) [32]byte {
	s, _ := edwards25519.NewScalar().SetBytesWithClamping(k[:32])
	var pub [32]byte
	copy(pub[:], edwards25519.NewIdentityPoint().ScalarBaseMult(s).Bytes())
	return pub
}

func address(pub [32]byte) string {
	h := sha3.New256()
	h.Write([]byte(".onion checksum"))
	h.Write(pub[:])
	h.Write([]byte{3})
	raw := append(append(pub[:], h.Sum(nil)[:2]...), 3)
	return base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding).EncodeToString(raw) + ".onion"
}
