package keys

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/pursuance/pursuance/identity"
)

// intakeVector is the profile derivations' entry in
// testdata/keys/vectors.json: the profile key and intake KEM key of epoch 3
// of role "recruiter" generation 2 (seed 0x70), its knock topic, and the
// reply topic of the reply seed 32 bytes of 0x72.
func intakeVector(t *testing.T) vector {
	t.Helper()
	k := testKey(t, "recruiter", 2, 0x70)
	in, err := k.Intake(3)
	if err != nil {
		t.Fatal(err)
	}
	kt := KnockTopic(in.Sign.Public())
	seed := bytes.Repeat([]byte{0x72}, ReplySeedSize)
	rt, rk, err := ReplyTopic(seed)
	if err != nil {
		t.Fatal(err)
	}
	kem := in.KEM.Public()
	return vector{Name: "profile: epoch 3 of role recruiter generation 2: profile key, intake KEM key, knock topic; reply topic of reply seed 0x72",
		Pursuance: k.Scope.Pursuance.String(), Role: "recruiter", Gen: 2, Seed: hex.EncodeToString(k.Seed[:]), Epoch: 3,
		ProfileKey: hexKey(in.Sign.Public()), IntakeKEM: hex.EncodeToString(kem[:]), KnockTopic: hex.EncodeToString(kt[:]),
		ReplySeed: hex.EncodeToString(seed), ReplyTopic: hex.EncodeToString(rt[:]), TopicKey: hexKey(rk.Public())}
}

func TestIntake(t *testing.T) {
	k := testKey(t, "recruiter", 2, 0x70)
	a, err := k.Intake(1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Intake(2)
	if a.Sign.Public() == b.Sign.Public() || a.KEM.Public().Equal(b.KEM.Public()) {
		t.Error("two epochs of one generation give the same keys")
	}
	next := testKey(t, "recruiter", 3, 0x70) // same seed, next generation
	c, _ := next.Intake(1)
	if a.Sign.Public() == c.Sign.Public() {
		t.Error("two generations give the same profile key")
	}
	other := testKey(t, "editor", 2, 0x70)
	d, _ := other.Intake(1)
	if a.Sign.Public() == d.Sign.Public() {
		t.Error("two roles give the same profile key")
	}
	again, _ := k.Intake(1)
	if again.Sign.Public() != a.Sign.Public() || !again.KEM.Public().Equal(a.KEM.Public()) {
		t.Error("the derivation is not deterministic")
	}
	g := testKey(t, "", 1, 0x70)
	if _, err := g.Intake(1); err == nil {
		t.Error("the group key gave profile keys; only a role's key does")
	}
	// The knock topic is no key's topic: not even the profile key's own.
	if KnockTopic(a.Sign.Public()) == TopicOf(a.Sign.Public()) {
		t.Error("a knock topic equals the profile key's append topic")
	}
	// A request sealed to the intake key opens with it only.
	box, err := SealBox(a.KEM.Public(), "knock", []byte("let me in"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBox(b.KEM, "knock", box); err == nil {
		t.Error("another epoch's key opened the request")
	}
	if pt, err := OpenBox(a.KEM, "knock", box); err != nil || string(pt) != "let me in" {
		t.Errorf("OpenBox = %q, %v", pt, err)
	}
	if _, _, err := ReplyTopic(make([]byte, 31)); err == nil {
		t.Error("a short reply seed was taken")
	}
	var zero identity.PublicKey
	if KnockTopic(zero) == KnockTopic(a.Sign.Public()) {
		t.Error("knock topics collide")
	}
}
