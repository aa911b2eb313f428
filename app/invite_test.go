package app

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

func TestInviteCode(t *testing.T) {
	key, err := identity.SigningKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	group := keys.Key{Scope: keys.Scope{Pursuance: event.ID{1, 2, 3}}, Gen: 7}
	group.Seed[0] = 9
	c := InviteCode{Pursuance: event.ID{1, 2, 3}, Invite: event.ID{4, 5, 6}, Key: key, Group: group}
	s := c.String()
	got, err := ParseInviteCode("  " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.Pursuance != c.Pursuance || got.Invite != c.Invite || got.Key.Public() != key.Public() || got.Group != group {
		t.Fatalf("round trip: got %+v", got)
	}
	// Upper case (as a QR code carries it) is the same code.
	if up, err := ParseInviteCode(strings.ToUpper(s)); err != nil || up.Invite != c.Invite {
		t.Fatalf("upper case: %v", err)
	}
	// Wrapped by mail or chat (line breaks, indentation, a quote's spaces)
	// it is the same code.
	var wrapped strings.Builder
	for i := 0; i < len(s); i += 60 {
		wrapped.WriteString(s[i:min(i+60, len(s))])
		wrapped.WriteString("\r\n  \t")
	}
	if w, err := ParseInviteCode(wrapped.String()); err != nil || w.Invite != c.Invite {
		t.Fatalf("wrapped: %v", err)
	}
	// Every single-character substitution is caught.
	for i := len("pi1"); i < len(s); i++ {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		if _, err := ParseInviteCode(string(b)); !errors.Is(err, ErrBadInviteCode) {
			t.Fatalf("typo at %d not caught: %v", i, err)
		}
	}
	for _, bad := range []string{"", "pi1", "px1" + s[3:], s[:len(s)-1], s + "a"} {
		if _, err := ParseInviteCode(bad); !errors.Is(err, ErrBadInviteCode) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestInviteReach: a code reaches "this machine" only when every relay it
// names is a loopback one.
func TestInviteReach(t *testing.T) {
	for _, c := range []struct {
		relays []string
		want   Reach
	}{
		{nil, ReachNowhere},
		{[]string{"http://127.0.0.1:8765"}, ReachThisMachine},
		{[]string{"http://localhost:8765/relay"}, ReachThisMachine},
		{[]string{"http://[::1]:8765"}, ReachThisMachine},
		{[]string{"http://127.0.0.1:8765", "https://relay.example.org"}, ReachRelays},
		{[]string{"https://10.0.0.1"}, ReachRelays},
		{[]string{"https://127.0.0.1.example.org"}, ReachRelays},
	} {
		if got := (InviteCode{Relays: c.relays}).Reach(); got != c.want {
			t.Errorf("%v: %s, want %s", c.relays, got, c.want)
		}
	}
}
