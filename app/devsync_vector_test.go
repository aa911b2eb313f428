package app

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

var updateMailbox = flag.Bool("update-mailbox", false, "rewrite testdata/devices/mailbox.json")

// mailboxVector is testdata/devices/mailbox.json: the device mailbox of
// the member whose signing seed is 32 bytes of 0x01, under the member KEM
// key whose seed is 32 bytes of 0x02 (docs/devices.md §7.1), and one
// envelope in it.
type mailboxVector struct {
	Note      string `json:"note"`
	Member    string `json:"member"`
	KEMSeed   string `json:"member_kem_seed"`
	Scope     string `json:"scope_pursuance"`
	Seed      string `json:"mailbox_seed"`
	Topic     string `json:"topic"`
	TopicKey  string `json:"topic_key"`
	Entry     string `json:"entry_cbor"`
	Envelope  string `json:"envelope"`
	NextKEM   string `json:"next_member_kem_seed"`
	NextTopic string `json:"next_topic"`
	Relay     string `json:"relay"`
	Other     string `json:"other_relay"`
	OtherTop  string `json:"other_relay_topic"`
	// Entry2 is a second entry's encoding: a founding ask (ID 0b 00…,
	// charter bytes a1 01 01, relay 8765) from a device, and a rotated
	// root's child certificate (device 0c×32, parent 0d×32, parent KEM
	// 0e×1216, name "phone", KEM 0f×1216, cert 10×64).
	Entry2 string `json:"entry_found_certs_cbor"`
}

// mailboxEntry2 is the entry of Entry2.
func mailboxEntry2(member, from identity.PublicKey) mailboxEntry {
	return mailboxEntry{Member: member, From: from, Pursuances: []approvedPursuit{},
		Asks: []joinAsk{{ID: [16]byte{11}, Found: &foundAsk{Charter: []byte{0xa1, 1, 1}, Relays: []string{vectorRelay}}}},
		Certs: []childCert{{Device: identity.PublicKey(bytes.Repeat([]byte{12}, 32)), Parent: identity.PublicKey(bytes.Repeat([]byte{13}, 32)),
			ParentKEM: bytes.Repeat([]byte{14}, identity.KEMPublicKeySize), Name: "phone", KEM: bytes.Repeat([]byte{15}, identity.KEMPublicKeySize), Cert: bytes.Repeat([]byte{16}, 64)}}}
}

const (
	vectorRelay = "http://127.0.0.1:8765"
	otherRelay  = "http://127.0.0.1:8766"
)

func mailboxVectorKeys(t *testing.T) (identity.PublicKey, *identity.KEMPrivateKey, *identity.KEMPrivateKey, mailboxEntry) {
	t.Helper()
	sk, err := identity.SigningKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	kem, err := identity.KEMPrivateKeyFromBytes(bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	next, err := identity.KEMPrivateKeyFromBytes(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := identity.SigningKeyFromSeed(bytes.Repeat([]byte{4}, 32))
	entry := mailboxEntry{Member: sk.Public(), From: dev.Public(), Pursuances: []approvedPursuit{{
		ID: event.ID(bytes.Repeat([]byte{5}, 32)), Gen: 3, Seed: bytes.Repeat([]byte{6}, 32), Relays: []string{"http://127.0.0.1:8765"}}},
		Asks:    []joinAsk{{ID: [16]byte{8}, Code: "pi1example"}},
		Answers: []joinAnswer{{ID: [16]byte{9}, Pursuance: event.ID(bytes.Repeat([]byte{10}, 32)), Err: "the invite is used up"}}}
	return sk.Public(), kem, next, entry
}

// TestMailboxVector checks the mailbox derivations and the entry's
// encoding against the stored vector, and that its envelope opens.
func TestMailboxVector(t *testing.T) {
	member, kem, next, entry := mailboxVectorKeys(t)
	k, err := MailboxKey(member, kem, vectorRelay)
	if err != nil {
		t.Fatal(err)
	}
	topic, tk, err := k.Topic()
	if err != nil {
		t.Fatal(err)
	}
	nk, _ := MailboxKey(member, next, vectorRelay)
	nextTopic, _, _ := nk.Topic()
	ok, _ := MailboxKey(member, kem, otherRelay)
	otherTopic, _, _ := ok.Topic()
	pt, err := cbor.Marshal(entry)
	if err != nil {
		t.Fatal(err)
	}
	pt2, err := cbor.Marshal(mailboxEntry2(member, entry.From))
	if err != nil {
		t.Fatal(err)
	}
	env, err := keys.NewEnvelopes(&k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "testdata", "devices", "mailbox.json")
	if *updateMailbox {
		box, err := env.Seal(pt, bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
		if err != nil {
			t.Fatal(err)
		}
		v := mailboxVector{Note: "docs/devices.md §7.1: member = Ed25519 key of seed 01×32; member KEM seed 02×32; entry from device of seed 04×32 naming pursuance 05×32, gen 3, group seed 06×32, one ask (ID 08 00…, code \"pi1example\") and one answer (ID 09 00…, pursuance 0a×32, an error); envelope nonce 07×24; next KEM seed 03×32 (after a revocation); topics for relay http://127.0.0.1:8765, and 8766 for the other relay; entry_found_certs_cbor: a founding ask (ID 0b 00…, charter bytes a1 01 01, relay 8765) and a child certificate (device 0c×32, parent 0d×32, parent KEM 0e×1216, name phone, KEM 0f×1216, cert 10×64), from the same device, no pursuances",
			Member: hex.EncodeToString(member[:]), KEMSeed: hex.EncodeToString(kem.Bytes()), Scope: hex.EncodeToString(k.Scope.Pursuance[:]),
			Seed: hex.EncodeToString(k.Seed[:]), Topic: hex.EncodeToString(topic[:]), TopicKey: hex.EncodeToString(tkPub(tk)),
			Entry: hex.EncodeToString(pt), Envelope: hex.EncodeToString(box), NextKEM: hex.EncodeToString(next.Bytes()), NextTopic: hex.EncodeToString(nextTopic[:]),
			Relay: vectorRelay, Other: otherRelay, OtherTop: hex.EncodeToString(otherTopic[:]), Entry2: hex.EncodeToString(pt2)}
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v mailboxVector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"scope", hex.EncodeToString(k.Scope.Pursuance[:]), v.Scope},
		{"seed", hex.EncodeToString(k.Seed[:]), v.Seed},
		{"topic", hex.EncodeToString(topic[:]), v.Topic},
		{"topic key", hex.EncodeToString(tkPub(tk)), v.TopicKey},
		{"entry", hex.EncodeToString(pt), v.Entry},
		{"entry with a founding ask and a child certificate", hex.EncodeToString(pt2), v.Entry2},
		{"next topic", hex.EncodeToString(nextTopic[:]), v.NextTopic},
		{"other relay's topic", hex.EncodeToString(otherTopic[:]), v.OtherTop},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %s, the vector says %s", c.name, c.got, c.want)
		}
	}
	if v.Topic == v.NextTopic {
		t.Error("a new member KEM key leaves the mailbox topic as it was")
	}
	if v.Topic == v.OtherTop {
		t.Error("two relays hold the mailbox under one topic")
	}
	box, _ := hex.DecodeString(v.Envelope)
	got, err := env.Open(box)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("the vector's envelope opens to %x, %v", got, err)
	}
	if len(box) != keys.Buckets()[0] {
		t.Errorf("the envelope is %d bytes, want the smallest bucket", len(box))
	}
	for _, other := range []keys.Key{nk, ok} {
		oenv, _ := keys.NewEnvelopes(&other)
		if _, err := oenv.Open(box); err == nil {
			t.Errorf("the envelope opens under the mailbox key of %x", other.Scope.Pursuance[:4])
		}
	}
}

func tkPub(k *identity.SigningKey) []byte { p := k.Public(); return p[:] }
