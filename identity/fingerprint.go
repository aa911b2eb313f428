package identity

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// fingerprintLabel separates the fingerprint hash from every other hash in
// Pursuance.
const fingerprintLabel = "pursuance/v1/fingerprint"

// Fingerprint returns the safety fingerprint of a member's public keys: a
// string of six groups of five decimal digits separated by spaces, such as
// "03719 48620 11853 90264 57401 33298". Two people who read the same
// fingerprint to each other over a channel they trust (in person, a call)
// know that they hold the same member's keys, and that no one in between
// substituted their own.
//
// It is computed as follows. Let h = SHA-256("pursuance/v1/fingerprint" ||
// signPub || kemPub), where signPub is the 32-byte Ed25519 public key and
// kemPub the 1216-byte KEM public key. For i = 0..5, group i is the 5-byte
// big-endian integer h[5i:5i+5] modulo 100000, written with five digits and
// leading zeros. The result carries about 99.6 bits of the hash.
// The same keys always give the same fingerprint.
func Fingerprint(signPub PublicKey, kemPub KEMPublicKey) string {
	h := sha256.New()
	h.Write([]byte(fingerprintLabel))
	h.Write(signPub[:])
	h.Write(kemPub[:])
	sum := h.Sum(nil)

	groups := make([]string, 6)
	for i := range groups {
		var b [8]byte
		copy(b[3:], sum[5*i:5*i+5])
		groups[i] = fmt.Sprintf("%05d", binary.BigEndian.Uint64(b[:])%100000)
	}
	return strings.Join(groups, " ")
}
