package profile

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// Sizes and limits of join requests ("knocks") and their answers. Every
// request, and every answer, is exactly this many bytes on a relay: its
// size says nothing of what it holds.
const (
	KnockSize      = 4096
	AnswerSize     = 4096
	MaxMessage     = 1000 // bytes of a request's or an answer's message
	MaxKnockRelays = 2    // relays a requester names for its answer
	MaxCode        = 1500 // bytes of an invite code in an answer

	hpkeOverhead = 1120 + 16 // X-Wing encapsulation and the AEAD's tag
	plainSize    = KnockSize - hpkeOverhead
)

// Labels. Part of the format.
const (
	labelKnockSig  = "pursuance/v1/knock"
	labelKnockID   = "pursuance/v1/knock-id"
	labelKnockPoW  = "pursuance/v1/knock-pow"
	purposeKnock   = "knock/v1/"
	purposeAnswer  = "knock-answer/v1/"
	MaxStampBits   = 28 // the most work a relay may ask of one request
	stampNonceSize = 8
)

// ErrBadKnock is wrapped by every error about a request's or an answer's
// form, seal or signature.
var ErrBadKnock = errors.New("not a valid join request")

// Knock is a join request: who asks (a member ID, a display name, the KEM
// key answers are sealed to), to which pursuance and profile, why, and
// where it looks for the answer. The requester signs it with its member
// key, so the member ID is its own. Sealed, it is KnockSize bytes that only
// the profile's intake key opens.
type Knock struct {
	Pursuance event.ID
	Profile   identity.PublicKey // the profile key knocked on
	Member    identity.PublicKey // the requester's member ID
	Name      string
	KEM       identity.KEMPublicKey // answers are sealed to it
	Message   string
	ReplySeed [keys.ReplySeedSize]byte // the answer topic's key (keys.ReplyTopic)
	Relays    []string                 // where the requester looks for answers
	Time      uint64                   // claimed, Unix milliseconds
}

type knockBody struct {
	Pursuance []byte   `cbor:"1,keyasint"`
	Profile   []byte   `cbor:"2,keyasint"`
	Member    []byte   `cbor:"3,keyasint"`
	Name      string   `cbor:"4,keyasint"`
	KEM       []byte   `cbor:"5,keyasint"`
	Message   string   `cbor:"6,keyasint,omitempty"`
	ReplySeed []byte   `cbor:"7,keyasint"`
	Relays    []string `cbor:"8,keyasint,omitempty"`
	Time      uint64   `cbor:"9,keyasint,omitempty"`
}

// Seal signs k with the requester's key and seals it to intake: the
// request's bytes (KnockSize) and its ID.
func (k *Knock) Seal(member *identity.SigningKey, intake identity.KEMPublicKey) ([]byte, event.ID, error) {
	if member.Public() != k.Member {
		return nil, event.ID{}, fmt.Errorf("%w: signed by another key than its member's", ErrBadKnock)
	}
	if err := k.check(); err != nil {
		return nil, event.ID{}, fmt.Errorf("%w: %v", ErrBadKnock, err)
	}
	b, err := encMode.Marshal(knockBody{Pursuance: k.Pursuance[:], Profile: k.Profile[:], Member: k.Member[:], Name: k.Name,
		KEM: k.KEM[:], Message: k.Message, ReplySeed: k.ReplySeed[:], Relays: k.Relays, Time: k.Time})
	if err != nil {
		return nil, event.ID{}, err
	}
	wire, err := encMode.Marshal(signed{Body: b, Sig: member.Sign(knockMessage(b))})
	if err != nil {
		return nil, event.ID{}, err
	}
	box, err := sealPadded(intake, purposeKnock+hex.EncodeToString(k.Profile[:]), wire)
	if err != nil {
		return nil, event.ID{}, err
	}
	return box, KnockID(box), nil
}

func knockMessage(b []byte) []byte { return append([]byte(labelKnockSig+"\x00"), b...) }

// KnockID returns a sealed request's ID: SHA-256("pursuance/v1/knock-id" ‖
// 0x00 ‖ the sealed bytes). Both sides compute it; answers name it.
func KnockID(box []byte) event.ID {
	h := sha256.New()
	h.Write([]byte(labelKnockID + "\x00"))
	h.Write(box)
	var id event.ID
	h.Sum(id[:0])
	return id
}

// OpenKnock opens a request sealed to the intake key of profile key
// profile, and checks it: its form, that it was sent to that profile, and
// its signature by the member it names.
func OpenKnock(intake *identity.KEMPrivateKey, profile identity.PublicKey, box []byte) (*Knock, error) {
	if len(box) != KnockSize {
		return nil, fmt.Errorf("%w: %d bytes, not %d", ErrBadKnock, len(box), KnockSize)
	}
	wire, err := openPadded(intake, purposeKnock+hex.EncodeToString(profile[:]), box)
	if err != nil {
		return nil, err
	}
	var s signed
	if err := decodeStrict(wire, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKnock, err)
	}
	var b knockBody
	if err := decodeStrict(s.Body, &b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKnock, err)
	}
	if len(b.Pursuance) != event.IDSize || len(b.Profile) != identity.PublicKeySize || len(b.Member) != identity.PublicKeySize ||
		len(b.ReplySeed) != keys.ReplySeedSize || len(s.Sig) != identity.SignatureSize {
		return nil, fmt.Errorf("%w: a field of the wrong size", ErrBadKnock)
	}
	k := &Knock{Name: b.Name, Message: b.Message, Relays: b.Relays, Time: b.Time}
	copy(k.Pursuance[:], b.Pursuance)
	copy(k.Profile[:], b.Profile)
	copy(k.Member[:], b.Member)
	copy(k.ReplySeed[:], b.ReplySeed)
	if k.KEM, err = identity.ParseKEMPublicKey(b.KEM); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKnock, err)
	}
	if k.Profile != profile {
		return nil, fmt.Errorf("%w: sent to another profile", ErrBadKnock)
	}
	if err := k.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKnock, err)
	}
	if !k.Member.Verify(knockMessage(s.Body), s.Sig) {
		return nil, fmt.Errorf("%w: not signed by the member it names", ErrBadKnock)
	}
	return k, nil
}

func (k *Knock) check() error {
	if err := identity.ValidateName(k.Name); err != nil {
		return err
	}
	if err := checkText("message", k.Message, MaxMessage, true); err != nil {
		return err
	}
	if len(k.Relays) > MaxKnockRelays {
		return fmt.Errorf("%d relays, at most %d", len(k.Relays), MaxKnockRelays)
	}
	for _, u := range k.Relays {
		if err := CheckURL(u); err != nil {
			return err
		}
	}
	if k.KEM.IsZero() || k.Member.IsZero() || k.Profile.IsZero() || k.Pursuance.IsZero() {
		return errors.New("a key or the pursuance is missing")
	}
	return nil
}

// Status is an answer's verdict. Values are part of the format.
type Status uint8

const (
	Invited Status = 1
	Refused Status = 2
)

func (s Status) String() string {
	switch s {
	case Invited:
		return "invited"
	case Refused:
		return "refused"
	}
	return fmt.Sprintf("status %d", uint8(s))
}

// Answer is a pursuance's answer to a join request: an invite code (made by
// the pursuance's own invite path, under its rules), or a refusal; with a
// message. Sealed, it is AnswerSize bytes that only the requester's KEM key
// opens.
type Answer struct {
	Request   event.ID
	Pursuance event.ID
	Status    Status
	Code      string // the invite code, when invited
	Message   string
	From      string // the answering member's display name
}

type answerBody struct {
	Request   []byte `cbor:"1,keyasint"`
	Pursuance []byte `cbor:"2,keyasint"`
	Status    uint8  `cbor:"3,keyasint"`
	Code      string `cbor:"4,keyasint,omitempty"`
	Message   string `cbor:"5,keyasint,omitempty"`
	From      string `cbor:"6,keyasint,omitempty"`
}

func (a *Answer) check() error {
	switch {
	case a.Status != Invited && a.Status != Refused:
		return fmt.Errorf("unknown %s", a.Status)
	case a.Status == Invited && a.Code == "":
		return errors.New("an invitation without a code")
	case a.Status == Refused && a.Code != "":
		return errors.New("a refusal with a code")
	case len(a.Code) > MaxCode:
		return fmt.Errorf("a code of %d bytes", len(a.Code))
	}
	if err := checkText("message", a.Message, MaxMessage, true); err != nil {
		return err
	}
	return checkText("name", a.From, identity.MaxNameLen, false)
}

// Seal seals a to the requester's KEM key.
func (a *Answer) Seal(to identity.KEMPublicKey) ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("%w: answer: %v", ErrBadKnock, err)
	}
	b, err := encMode.Marshal(answerBody{Request: a.Request[:], Pursuance: a.Pursuance[:], Status: uint8(a.Status), Code: a.Code, Message: a.Message, From: a.From})
	if err != nil {
		return nil, err
	}
	return sealPadded(to, purposeAnswer+a.Request.String(), b)
}

// OpenAnswer opens an answer to request sealed to priv, and checks that it
// answers that request.
func OpenAnswer(priv *identity.KEMPrivateKey, request event.ID, box []byte) (*Answer, error) {
	if len(box) != AnswerSize {
		return nil, fmt.Errorf("%w: answer of %d bytes, not %d", ErrBadKnock, len(box), AnswerSize)
	}
	b, err := openPadded(priv, purposeAnswer+request.String(), box)
	if err != nil {
		return nil, err
	}
	var ab answerBody
	if err := decodeStrict(b, &ab); err != nil {
		return nil, fmt.Errorf("%w: answer: %v", ErrBadKnock, err)
	}
	if len(ab.Request) != event.IDSize || len(ab.Pursuance) != event.IDSize {
		return nil, fmt.Errorf("%w: answer: a field of the wrong size", ErrBadKnock)
	}
	a := &Answer{Status: Status(ab.Status), Code: ab.Code, Message: ab.Message, From: ab.From}
	copy(a.Request[:], ab.Request)
	copy(a.Pursuance[:], ab.Pursuance)
	if a.Request != request {
		return nil, fmt.Errorf("%w: an answer to another request", ErrBadKnock)
	}
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("%w: answer: %v", ErrBadKnock, err)
	}
	return a, nil
}

// sealPadded seals uint16 len ‖ b ‖ zero padding to exactly plainSize
// bytes, so that the box is KnockSize (= AnswerSize) bytes.
func sealPadded(to identity.KEMPublicKey, purpose string, b []byte) ([]byte, error) {
	if len(b) > plainSize-2 {
		return nil, fmt.Errorf("%w: %d bytes, more than %d fit: shorten the message", ErrBadKnock, len(b), plainSize-2)
	}
	pt := make([]byte, plainSize)
	binary.BigEndian.PutUint16(pt, uint16(len(b)))
	copy(pt[2:], b)
	box, err := keys.SealBox(to, purpose, pt)
	if err != nil {
		return nil, err
	}
	if len(box) != KnockSize {
		return nil, fmt.Errorf("profile: sealed %d bytes, not %d", len(box), KnockSize)
	}
	return box, nil
}

func openPadded(priv *identity.KEMPrivateKey, purpose string, box []byte) ([]byte, error) {
	pt, err := keys.OpenBox(priv, purpose, box)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKnock, err)
	}
	if len(pt) != plainSize {
		return nil, fmt.Errorf("%w: padded to %d bytes", ErrBadKnock, len(pt))
	}
	n := int(binary.BigEndian.Uint16(pt))
	if n > plainSize-2 || slices.ContainsFunc(pt[2+n:], func(c byte) bool { return c != 0 }) {
		return nil, fmt.Errorf("%w: bad padding", ErrBadKnock)
	}
	return pt[2 : 2+n], nil
}

// StampSize is the size of a request's proof-of-work stamp, sent before
// it to a relay's knock endpoint.
const StampSize = stampNonceSize

// stampHash is SHA-256("pursuance/v1/knock-pow" ‖ 0x00 ‖ profile key ‖
// SHA-256(box) ‖ nonce).
func stampHash(profile identity.PublicKey, boxHash [32]byte, nonce uint64) [32]byte {
	var b [len(labelKnockPoW) + 1 + identity.PublicKeySize + 32 + stampNonceSize]byte
	n := copy(b[:], labelKnockPoW+"\x00")
	n += copy(b[n:], profile[:])
	n += copy(b[n:], boxHash[:])
	binary.BigEndian.PutUint64(b[n:], nonce)
	return sha256.Sum256(b[:])
}

func leadingZeros(h [32]byte) int {
	n := 0
	for _, c := range h {
		if c != 0 {
			return n + bits.LeadingZeros8(c)
		}
		n += 8
	}
	return n
}

// Stamp finds a proof of work for a request to a profile: a nonce whose
// stampHash has at least work leading zero bits (about 2^work hashes;
// 0: none needed). It stops when ctx ends.
func Stamp(ctx context.Context, profile identity.PublicKey, box []byte, work int) ([]byte, error) {
	if work < 0 || work > MaxStampBits {
		return nil, fmt.Errorf("profile: a stamp of %d bits (0 to %d)", work, MaxStampBits)
	}
	bh := sha256.Sum256(box)
	for nonce := uint64(0); ; nonce++ {
		if nonce&0xffff == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if leadingZeros(stampHash(profile, bh, nonce)) >= work {
			return binary.BigEndian.AppendUint64(nil, nonce), nil
		}
	}
}

// CheckStamp reports whether stamp is a proof of work of at least work bits
// for box sent to profile.
func CheckStamp(profile identity.PublicKey, box, stamp []byte, work int) bool {
	if len(stamp) != StampSize {
		return false
	}
	if work <= 0 {
		return true
	}
	return leadingZeros(stampHash(profile, sha256.Sum256(box), binary.BigEndian.Uint64(stamp))) >= work
}

// ParseProfileKey parses a profile key in its hex form (as relays' paths
// carry it).
func ParseProfileKey(s string) (identity.PublicKey, error) {
	var k identity.PublicKey
	b, err := hex.DecodeString(strings.ToLower(s))
	if err != nil || len(b) != identity.PublicKeySize {
		return k, fmt.Errorf("bad profile key %.80q: want %d hex digits", s, 2*identity.PublicKeySize)
	}
	copy(k[:], b)
	return k, nil
}
