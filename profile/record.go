package profile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// Limits of a record, in bytes. A relay refuses a record over any of them.
const (
	MaxRecordSize = 4096 // a signed record, as stored and sent
	MaxName       = 100  // as a charter's name
	MaxMission    = 1000
	MaxSeeking    = 1000
	MaxRelays     = 8
	MaxRelayURL   = 256
)

// labelRecord is the signature's domain separation. Part of the format.
const labelRecord = "pursuance/v1/profile-record"

// ErrBadRecord is wrapped by every error about a record's form or
// signature.
var ErrBadRecord = errors.New("not a valid profile record")

// Record is one signed statement of a pursuance's public profile, under
// one profile key: the profile (name, mission, what it seeks, the intake
// key join requests are sealed to, the relays where it takes them), or,
// with Withdrawn, its withdrawal, which is final for that key. Versions
// under one key only ever rise; a relay keeps the highest.
type Record struct {
	Key       identity.PublicKey    // the profile key, which signs the record
	Pursuance event.ID              // the pursuance it speaks for (a claim: see the package doc)
	Version   uint64                // higher supersedes lower, under one key
	Withdrawn bool                  // the profile is withdrawn; nothing else is set
	Name      string                // one line
	Mission   string                // what the pursuance is for
	Seeking   string                // what, or whom, it looks for
	Intake    identity.KEMPublicKey // where join requests are sealed to
	Relays    []string              // where it takes join requests (http(s) URLs)

	raw []byte // the signed wire form, once signed or parsed
}

// body is a record's signed part on the wire (deterministic CBOR).
type body struct {
	Key       []byte   `cbor:"1,keyasint"`
	Pursuance []byte   `cbor:"2,keyasint"`
	Version   uint64   `cbor:"3,keyasint"`
	Withdrawn bool     `cbor:"4,keyasint,omitempty"`
	Name      string   `cbor:"5,keyasint,omitempty"`
	Mission   string   `cbor:"6,keyasint,omitempty"`
	Seeking   string   `cbor:"7,keyasint,omitempty"`
	Intake    []byte   `cbor:"8,keyasint,omitempty"`
	Relays    []string `cbor:"9,keyasint,omitempty"`
}

// signed is the wire form: the body's bytes and the signature over them.
type signed struct {
	Body []byte `cbor:"1,keyasint"`
	Sig  []byte `cbor:"2,keyasint"`
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	if encMode, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   4,
		MaxArrayElements:  64,
		MaxMapPairs:       16,
		TagsMd:            cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// decodeStrict decodes b into v and requires b to be v's one canonical
// encoding.
func decodeStrict(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return err
	}
	again, err := encMode.Marshal(v)
	if err != nil || !bytes.Equal(again, b) {
		return errors.New("not in canonical form")
	}
	return nil
}

// Sign checks r and signs it with key, whose public key must be r.Key. It
// returns the wire form, which Bytes returns from then on.
func (r *Record) Sign(key *identity.SigningKey) ([]byte, error) {
	if key.Public() != r.Key {
		return nil, fmt.Errorf("%w: signed by another key than the one it names", ErrBadRecord)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	b := body{Key: r.Key[:], Pursuance: r.Pursuance[:], Version: r.Version, Withdrawn: r.Withdrawn,
		Name: r.Name, Mission: r.Mission, Seeking: r.Seeking, Relays: r.Relays}
	if !r.Withdrawn {
		b.Intake = r.Intake[:]
	}
	bb, err := encMode.Marshal(b)
	if err != nil {
		return nil, err
	}
	wire, err := encMode.Marshal(signed{Body: bb, Sig: key.Sign(recordMessage(bb))})
	if err != nil {
		return nil, err
	}
	if len(wire) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d: shorten the mission or what it seeks", ErrBadRecord, len(wire), MaxRecordSize)
	}
	r.raw = wire
	return slices.Clone(wire), nil
}

func recordMessage(body []byte) []byte {
	return append([]byte(labelRecord+"\x00"), body...)
}

// Bytes returns the record's signed wire form (nil before Sign or Parse).
func (r *Record) Bytes() []byte { return slices.Clone(r.raw) }

// ID returns the SHA-256 of the record's wire form.
func (r *Record) ID() [32]byte { return sha256.Sum256(r.raw) }

// Parse decodes a signed record, checks its form and limits and verifies
// its signature by the key it names. It says nothing of whether that key
// is the named pursuance's: only that pursuance's log says so.
func Parse(b []byte) (*Record, error) {
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrBadRecord, len(b), MaxRecordSize)
	}
	var s signed
	if err := decodeStrict(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	var bd body
	if err := decodeStrict(s.Body, &bd); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrBadRecord, err)
	}
	if len(bd.Key) != identity.PublicKeySize || len(bd.Pursuance) != event.IDSize || len(s.Sig) != identity.SignatureSize {
		return nil, fmt.Errorf("%w: a key, pursuance or signature of the wrong size", ErrBadRecord)
	}
	r := &Record{Version: bd.Version, Withdrawn: bd.Withdrawn, Name: bd.Name, Mission: bd.Mission, Seeking: bd.Seeking, Relays: bd.Relays, raw: slices.Clone(b)}
	copy(r.Key[:], bd.Key)
	copy(r.Pursuance[:], bd.Pursuance)
	switch {
	case bd.Withdrawn && len(bd.Intake) != 0:
		return nil, fmt.Errorf("%w: a withdrawal with an intake key", ErrBadRecord)
	case !bd.Withdrawn:
		k, err := identity.ParseKEMPublicKey(bd.Intake)
		if err != nil {
			return nil, fmt.Errorf("%w: intake key: %v", ErrBadRecord, err)
		}
		r.Intake = k
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if !r.Key.Verify(recordMessage(s.Body), s.Sig) {
		return nil, fmt.Errorf("%w: the signature does not verify", ErrBadRecord)
	}
	return r, nil
}

// check checks a record's fields against the limits.
func (r *Record) check() error {
	if r.Key.IsZero() || r.Pursuance.IsZero() {
		return errors.New("no key or no pursuance")
	}
	if r.Version == 0 {
		return errors.New("version 0")
	}
	if r.Withdrawn {
		if r.Name != "" || r.Mission != "" || r.Seeking != "" || len(r.Relays) > 0 || !r.Intake.IsZero() {
			return errors.New("a withdrawal says nothing but that it withdraws")
		}
		return nil
	}
	if strings.TrimSpace(r.Name) == "" {
		return errors.New("the profile has no name")
	}
	if r.Intake.IsZero() {
		return errors.New("the profile has no intake key")
	}
	if err := checkText("name", r.Name, MaxName, false); err != nil {
		return err
	}
	if err := checkText("mission", r.Mission, MaxMission, true); err != nil {
		return err
	}
	if err := checkText("what it seeks", r.Seeking, MaxSeeking, true); err != nil {
		return err
	}
	if len(r.Relays) > MaxRelays {
		return fmt.Errorf("%d relays, more than %d", len(r.Relays), MaxRelays)
	}
	for _, u := range r.Relays {
		if err := CheckURL(u); err != nil {
			return err
		}
	}
	return nil
}

// checkText bounds a text field: valid UTF-8, at most max bytes, no
// control characters but line breaks where lines are allowed.
func checkText(what, s string, max int, lines bool) error {
	if len(s) > max {
		return fmt.Errorf("the %s is %d bytes long, over the limit of %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("the %s is not valid UTF-8", what)
	}
	for _, c := range s {
		if unicode.IsControl(c) && !(lines && c == '\n') {
			return fmt.Errorf("the %s has a control character", what)
		}
	}
	return nil
}

// CheckURL checks a relay URL of a record or request: http:// or
// https://, a host, at most MaxRelayURL bytes, no spaces or controls.
func CheckURL(u string) error {
	rest, ok := strings.CutPrefix(u, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(u, "http://")
	}
	switch {
	case len(u) > MaxRelayURL:
		return fmt.Errorf("a relay URL of %d bytes, over the limit of %d", len(u), MaxRelayURL)
	case !ok || rest == "" || rest[0] == '/':
		return fmt.Errorf("bad relay URL %q: want http(s)://host[:port][/path]", u)
	case strings.IndexFunc(u, func(c rune) bool { return c <= ' ' || c == 0x7f }) >= 0:
		return fmt.Errorf("bad relay URL %q: spaces or control characters", u)
	}
	return nil
}

// Supersedes reports whether r replaces old under the same key: a higher
// version, or the same version and a smaller record ID (so that two
// records signed concurrently at one version resolve alike everywhere).
// Nothing supersedes a withdrawal.
func (r *Record) Supersedes(old *Record) bool {
	if old.Withdrawn {
		return false
	}
	if r.Version != old.Version {
		return r.Version > old.Version
	}
	a, b := r.ID(), old.ID()
	return bytes.Compare(a[:], b[:]) < 0
}

// Words returns the lower-case words of a record's name, mission and what
// it seeks, which a directory search matches.
func (r *Record) Words() []string {
	return Words(r.Name + " " + r.Mission + " " + r.Seeking)
}

// Words splits s into lower-case words of letters and digits.
func Words(s string) []string {
	f := strings.FieldsFunc(strings.ToLower(s), func(c rune) bool { return !unicode.IsLetter(c) && !unicode.IsDigit(c) })
	slices.Sort(f)
	return slices.Compact(f)
}
