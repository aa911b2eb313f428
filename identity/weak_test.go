package identity_test

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/pursuance/pursuance/identity"
)

func TestCheckRejectsWeakKeys(t *testing.T) {
	k, err := identity.NewSigningKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Public().Check(); err != nil {
		t.Fatalf("a generated key: %v", err)
	}
	var identityPoint identity.PublicKey
	identityPoint[0] = 1 // y = 1: the neutral element, order 1
	var order2 identity.PublicKey
	for i := range order2 { // y = -1 = p-1: order 2
		order2[i] = 0xff
	}
	order2[0], order2[31] = 0xec, 0x7f
	var nonCanonical identity.PublicKey
	for i := range nonCanonical { // y = 2^255-1 ≥ p: not canonical
		nonCanonical[i] = 0xff
	}
	nonCanonical[31] = 0x7f
	for name, weak := range map[string]identity.PublicKey{"identity": identityPoint, "order 2": order2, "non-canonical": nonCanonical} {
		if err := weak.Check(); !errors.Is(err, identity.ErrWeakKey) {
			t.Errorf("%s: Check = %v, want ErrWeakKey", name, err)
		}
	}
	// The weakness is real: with the neutral element as public key, one
	// signature (R = neutral, S = 0) verifies for any message.
	sig := make([]byte, 64)
	sig[0] = 1
	if !identityPoint.Verify([]byte("anything"), sig) || !identityPoint.Verify([]byte("else"), sig) {
		t.Fatal("the neutral-element forgery no longer verifies: this test no longer shows why Check matters")
	}
}
