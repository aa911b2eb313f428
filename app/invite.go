package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
	"github.com/pursuance/pursuance/store"
)

// InviteCode is what a newcomer needs to join: the pursuance, the invite
// event, and the invite's private key. Whoever holds the code can join
// once, so it must travel over a channel the inviter trusts.
type InviteCode struct {
	Pursuance event.ID
	Invite    event.ID
	Key       *identity.SigningKey
}

const (
	invitePrefix        = "pi1"
	inviteChecksumLabel = "pursuance/v1/invite-code-checksum"
	inviteChecksumSize  = 3
)

var inviteEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrBadInviteCode is wrapped by ParseInviteCode's errors.
var ErrBadInviteCode = errors.New("not a valid invite code")

// String returns the code's text form: "pi1" and the base32 of the
// pursuance ID, the invite event ID, the invite key's seed and a 3-byte
// checksum (docs/invites.md).
func (c InviteCode) String() string {
	raw := make([]byte, 0, 2*event.IDSize+32+inviteChecksumSize)
	raw = append(raw, c.Pursuance[:]...)
	raw = append(raw, c.Invite[:]...)
	raw = append(raw, c.Key.Seed()...)
	raw = append(raw, inviteChecksum(raw)...)
	return invitePrefix + inviteEncoding.EncodeToString(raw)
}

func inviteChecksum(b []byte) []byte {
	h := sha256.New()
	h.Write([]byte(inviteChecksumLabel))
	h.Write(b)
	return h.Sum(nil)[:inviteChecksumSize]
}

// ParseInviteCode parses an invite code; a mistyped code is an error.
func ParseInviteCode(s string) (InviteCode, error) {
	s = strings.TrimSpace(s)
	body, ok := strings.CutPrefix(s, invitePrefix)
	if !ok {
		return InviteCode{}, fmt.Errorf("%w: it does not start with %q", ErrBadInviteCode, invitePrefix)
	}
	raw, err := inviteEncoding.DecodeString(body)
	if err != nil || len(raw) != 2*event.IDSize+32+inviteChecksumSize || inviteEncoding.EncodeToString(raw) != body {
		return InviteCode{}, fmt.Errorf("%w: wrong length or characters", ErrBadInviteCode)
	}
	n := len(raw) - inviteChecksumSize
	if !bytes.Equal(inviteChecksum(raw[:n]), raw[n:]) {
		return InviteCode{}, fmt.Errorf("%w: checksum mismatch (a typo?)", ErrBadInviteCode)
	}
	var c InviteCode
	copy(c.Pursuance[:], raw[:32])
	copy(c.Invite[:], raw[32:64])
	c.Key, err = identity.SigningKeyFromSeed(raw[64:96])
	if err != nil {
		return InviteCode{}, fmt.Errorf("%w: %v", ErrBadInviteCode, err)
	}
	return c, nil
}

// Invite publishes an invite into role: joinable uses times (0: no limit)
// until expires from now (0: never). It returns the code to hand over.
// When the charter puts invites under a quorum, the invite is proposed
// (Result.Proposed) and the code works once the proposal is carried.
func (n *Node) Invite(ctx context.Context, p event.ID, role string, expires time.Duration, uses uint64, opts DoOptions) (InviteCode, Result, error) {
	if n.id == nil {
		return InviteCode{}, Result{}, errLocked
	}
	key, err := identity.NewSigningKey(n.rand())
	if err != nil {
		return InviteCode{}, Result{}, err
	}
	op := &state.Invite{Key: key.Public(), Role: role, Uses: uses}
	if expires > 0 {
		op.Expires = uint64(n.opts.Now().Add(expires).UnixMilli())
	}
	// Under a quorum, the invite is proposed; the code names the proposal,
	// which is the invite's ID once carried (docs/rules.md).
	res, err := n.Act(ctx, p, op, opts)
	if err != nil {
		return InviteCode{}, Result{}, err
	}
	return InviteCode{Pursuance: p, Invite: res.Event.ID(), Key: key}, res, nil
}

// Join joins the pursuance an invite code names. The pursuance's log must
// already be on this home (imported, or synced from a relay).
func (n *Node) Join(ctx context.Context, code InviteCode, opts DoOptions) (Result, error) {
	if n.id == nil {
		return Result{}, errLocked
	}
	if _, err := n.st.Get(ctx, code.Invite); errors.Is(err, store.ErrNotFound) {
		return Result{}, fmt.Errorf("the invite's pursuance %s is not on this home yet; get its log first (`pursuance import FILE`)", code.Pursuance.Short())
	} else if err != nil {
		return Result{}, err
	}
	pub := n.id.Public()
	op := &state.Join{
		Invite:  code.Invite,
		Proof:   code.Key.Sign(state.JoinMessage(code.Pursuance, code.Invite, pub.ID)),
		Name:    pub.Name,
		KEM:     pub.KEM.Bytes(),
		Binding: pub.KEMBinding[:],
	}
	return n.Do(ctx, code.Pursuance, op, opts)
}
