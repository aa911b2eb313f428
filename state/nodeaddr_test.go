package state

import (
	"crypto/sha256"
	"crypto/sha3"
	"encoding/base32"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
)

// testOnion returns a valid v3 onion URL made from word (the key is the
// SHA-256 of word: not a real key, which the rules cannot tell).
func testOnion(word string) string {
	key := sha256.Sum256([]byte(word))
	h := sha3.New256()
	h.Write([]byte(".onion checksum"))
	h.Write(key[:])
	h.Write([]byte{3})
	raw := append(append(key[:], h.Sum(nil)[:2]...), 3)
	return "http://" + strings.ToLower(base32.StdEncoding.EncodeToString(raw)) + ".onion"
}

// nodeAddrArg expands a scenario's node address: "onion:WORD" is
// testOnion(WORD), "withdraw" is "", anything else is taken as it is.
func nodeAddrArg(s string) string {
	if w, ok := strings.CutPrefix(s, "onion:"); ok {
		return testOnion(w)
	}
	if s == "withdraw" {
		return ""
	}
	return s
}

// nodeAddrOp is the scenario op "nodeaddr onion:WORD|withdraw|URL".
func (w *world) nodeAddrOp(args []string) Op {
	if len(args) < 2 {
		w.t.Fatalf("nodeaddr: needs an address")
	}
	return &NodeAddress{URL: nodeAddrArg(args[1])}
}

// expectNodeAddr checks "expect nodeaddr NAME onion:WORD|none".
func (w *world) expectNodeAddr(s *State, args []string) {
	w.t.Helper()
	got, ok := s.NodeAddress(w.actor(args[1]).id.ID())
	want := nodeAddrArg(args[2])
	if args[2] == "none" {
		want = ""
	}
	if !ok {
		got = ""
	}
	if got != want {
		w.t.Errorf("node address of %s: got %q, want %q (%s)", args[1], got, want, args[2])
	}
}

func TestCheckNodeAddress(t *testing.T) {
	good := testOnion("a")
	if err := CheckNodeAddress(good); err != nil {
		t.Fatalf("%s: %v", good, err)
	}
	if len(good) != MaxNodeAddress {
		t.Errorf("len %d, MaxNodeAddress %d", len(good), MaxNodeAddress)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(good, "http://"), ".onion")
	flip := []byte(host)
	flip[10] ^= 1 // 'a'..'z' and '2'..'7' stay base32 with one bit flipped, mostly
	for _, bad := range []string{
		"",
		"http://127.0.0.1:8765",
		"http://localhost:8765",
		"https://example.org",
		"http://192.168.1.20",
		"https://" + host + ".onion",
		good + "/",
		good + ":80",
		strings.Replace(good, ".onion", ".onion.", 1),
		"http://" + strings.ToUpper(host) + ".onion",
		"http://" + host[:55] + ".onion",
		"http://" + host + "a.onion",
		"http://" + string(flip) + ".onion",
		"http://" + host[:55] + "a.onion", // another version byte
		"http://" + strings.Repeat("a", 4096) + ".onion",
	} {
		if err := CheckNodeAddress(bad); err == nil {
			t.Errorf("CheckNodeAddress(%.80q) accepted", bad)
		}
	}
	if err := checkNodeAddressOp(&NodeAddress{}); err != nil {
		t.Errorf("a withdrawal: %v", err)
	}
}

// TestNodeAddressStaysHome: a node-address event's body never goes over
// a link's channel (it is neither an authority nor a link op), so a
// linked pursuance's members never learn a member's node.
func TestNodeAddressStaysHome(t *testing.T) {
	if CarriedOverLinks(event.KindNodeAddress) {
		t.Error("node-address bodies are carried over links")
	}
	if isAuthority(&NodeAddress{}) || IsTaskOp(&NodeAddress{}) {
		t.Error("node-address is an authority or a task op")
	}
}
