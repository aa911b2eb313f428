package keys

import (
	"encoding/hex"
	"testing"

	"github.com/pursuance/pursuance/event"
)

// TestAttachSecret: the secret is fixed by the generation and the task
// (docs/attachments.md gives the derivation; this is its vector), and
// another task, generation or role gives another.
func TestAttachSecret(t *testing.T) {
	k := Key{Scope: Scope{Pursuance: event.ID{0xaa, 0xbb}, Role: "researcher"}, Gen: 1}
	for i := range k.Seed {
		k.Seed[i] = byte(0x10 + i)
	}
	s := k.AttachSecret(event.ID{1})
	const want = "320fa36827612b144312f32550e2494f6eeff029f2d82d2a4fb488538522fe00"
	if got := hex.EncodeToString(s[:]); got != want {
		t.Errorf("AttachSecret = %s, want %s", got, want)
	}
	k2 := k
	k2.Gen = 2
	k3 := k
	k3.Scope.Role = "editor"
	for _, o := range [][32]byte{k.AttachSecret(event.ID{2}), k2.AttachSecret(event.ID{1}), k3.AttachSecret(event.ID{1})} {
		if o == s {
			t.Error("another task, generation or role gives the same secret")
		}
	}
}
