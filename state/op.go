package state

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// An Op is the decoded body of an event: what the event asks to do. Each
// kind of event has its own Op type; docs/ops.md gives their wire form.
// Ops are plain data: decoding checks their shape, never their permission.
type Op interface {
	Kind() event.Kind
}

// ErrBadOp is wrapped by every error DecodeOp returns.
var ErrBadOp = errors.New("malformed event body")

// MaxTitle and friends bound the text an op may carry, in bytes.
const (
	MaxTitle   = 200
	MaxText    = 64 << 10 // task bodies and comments
	MaxRoles   = 64       // roles named in one op
	MaxAssign  = 64       // assignees in one task-create
	MaxDueSize = len("2006-01-02")
)

// Genesis founds a pursuance. Its author is the founder and holds the
// charter's first role.
type Genesis struct {
	Charter []byte `cbor:"1,keyasint"` // charter wire form (charter.Unmarshal)
	Name    string `cbor:"2,keyasint"` // the founder's display name
	KEM     []byte `cbor:"3,keyasint"` // the founder's KEM public key
	Binding []byte `cbor:"4,keyasint"` // the founder's KEM binding signature
	// Root is the founder's root line when its signing key was rotated
	// (docs/devices.md §6.1): the replace certificates from the member
	// ID to the author, oldest first. Absent: the author is the member.
	Root []Device `cbor:"5,keyasint,omitempty"`
}

// CharterAmend replaces the charter.
type CharterAmend struct {
	Charter []byte `cbor:"1,keyasint"`
}

// RoleAssign gives Member the role Role; RoleRevoke takes it away.
type RoleAssign struct {
	Member identity.PublicKey `cbor:"1,keyasint"`
	Role   string             `cbor:"2,keyasint"`
}

// RoleRevoke takes a role from a member.
type RoleRevoke struct {
	Member identity.PublicKey `cbor:"1,keyasint"`
	Role   string             `cbor:"2,keyasint"`
}

// Invite publishes an invite: whoever holds the private half of Key may
// join once with the role Role, up to Uses times (0: no limit) and until
// Expires (Unix milliseconds, compared with the join's claimed time; 0:
// never). KEM is the invite's hybrid public key (derived from the same
// secret as Key, docs/invites.md) and Boxes are the current generations of
// the keys the newcomer needs (the group key and the role's), sealed to it:
// a newcomer reads them with nobody online.
type Invite struct {
	Key     identity.PublicKey `cbor:"1,keyasint"`
	Role    string             `cbor:"2,keyasint"`
	Uses    uint64             `cbor:"3,keyasint,omitempty"`
	Expires uint64             `cbor:"4,keyasint,omitempty"`
	KEM     []byte             `cbor:"5,keyasint,omitempty"`
	Boxes   []InviteSeal       `cbor:"6,keyasint,omitempty"` // sorted by role ("" first), no repeats
}

// InviteSeal is one key generation sealed to an invite's KEM key
// (keys.SealSeed, with the invite key as the recipient's ID): the
// generation published by the key-update Update, of the group key (Role
// "") or of Role's key.
type InviteSeal struct {
	Role   string   `cbor:"1,keyasint,omitempty"`
	Update event.ID `cbor:"2,keyasint"`
	Box    []byte   `cbor:"3,keyasint"`
}

// InviteRevoke withdraws an invite.
type InviteRevoke struct {
	Invite event.ID `cbor:"1,keyasint"`
}

// Join admits its author with an invite. Proof is the invite key's
// signature over JoinMessage(pursuance, invite, author).
type Join struct {
	Invite  event.ID `cbor:"1,keyasint"`
	Proof   []byte   `cbor:"2,keyasint"`
	Name    string   `cbor:"3,keyasint"`
	KEM     []byte   `cbor:"4,keyasint"`
	Binding []byte   `cbor:"5,keyasint"`
	// Root is the joiner's root line, as a genesis's (docs/devices.md
	// §6.1): the joiner is then the member it starts from.
	Root []Device `cbor:"6,keyasint,omitempty"`
}

// Remove removes a member from the pursuance.
type Remove struct {
	Member identity.PublicKey `cbor:"1,keyasint"`
}

// Leave is a member leaving of its own accord.
type Leave struct{}

// Proposal proposes an action that the charter puts under a quorum. The
// action is an event body of kind Action, exactly as it would be signed on
// its own; it takes effect when enough approvals are accepted.
type Proposal struct {
	Action event.Kind `cbor:"1,keyasint"`
	Body   []byte     `cbor:"2,keyasint"`
}

// Approval approves a proposal.
type Approval struct {
	Proposal event.ID `cbor:"1,keyasint"`
}

// TaskCreate creates a task; the task's ID is the event's ID.
type TaskCreate struct {
	Parent    event.ID `cbor:"1,keyasint,omitzero"`
	Title     string   `cbor:"2,keyasint"`
	Body      string   `cbor:"3,keyasint,omitempty"`
	VisibleTo []string `cbor:"4,keyasint,omitempty"` // empty: the charter's default for the author
	Assignees []string `cbor:"5,keyasint,omitempty"` // member IDs or "role:NAME"
	Due       string   `cbor:"6,keyasint,omitempty"` // YYYY-MM-DD
}

// TaskEdit changes a task's fields; nil fields are left alone. An empty Due
// clears the due date.
type TaskEdit struct {
	Task  event.ID `cbor:"1,keyasint"`
	Title *string  `cbor:"2,keyasint,omitempty"`
	Body  *string  `cbor:"3,keyasint,omitempty"`
	Due   *string  `cbor:"4,keyasint,omitempty"`
}

// TaskMove re-parents a task; a zero Parent makes it a root task.
type TaskMove struct {
	Task   event.ID `cbor:"1,keyasint"`
	Parent event.ID `cbor:"2,keyasint,omitzero"`
}

// TaskAssign adds an assignee to a task. Brief, when the assignee did
// not read the task before (its creation was sealed to other roles),
// restates what it needs to act on it; a member who cannot open the
// task's creation takes the task's title, body and visibility from it.
type TaskAssign struct {
	Task     event.ID   `cbor:"1,keyasint"`
	Assignee string     `cbor:"2,keyasint"`
	Brief    *TaskBrief `cbor:"3,keyasint,omitempty"`
}

// TaskBrief is a task's text and visibility as its assigner saw them.
type TaskBrief struct {
	Title     string   `cbor:"1,keyasint"`
	Body      string   `cbor:"2,keyasint,omitempty"`
	VisibleTo []string `cbor:"3,keyasint,omitempty"`
}

// TaskUnassign removes an assignee from a task.
type TaskUnassign struct {
	Task     event.ID `cbor:"1,keyasint"`
	Assignee string   `cbor:"2,keyasint"`
}

// TaskStatus sets a task's status.
type TaskStatus struct {
	Task   event.ID `cbor:"1,keyasint"`
	Status Status   `cbor:"2,keyasint"`
}

// TaskComment adds a comment to a task.
type TaskComment struct {
	Task event.ID `cbor:"1,keyasint"`
	Text string   `cbor:"2,keyasint"`
}

// TaskArchive archives a task (Archived true) or brings it back.
type TaskArchive struct {
	Task     event.ID `cbor:"1,keyasint"`
	Archived bool     `cbor:"2,keyasint"`
}

// KeyUpdate publishes a new generation of the group key (Role "") or of a
// role's key: its seed sealed to every member entitled to it (docs/keys.md),
// and optionally the previous generation's seed chained under it, with
// the ID of the key-update that published that one.
//
// A generation sealed to more members than one event holds
// (MaxSealedSeeds) is published in Parts events by one author, in order:
// part 0 carries the chain; part k ≥ 1 names part 0 (First) and carries
// the next members' seeds, each part's members sorting after the last
// part's. The generation exists once its last part is accepted; it is
// named by part 0's ID.
type KeyUpdate struct {
	Role  string       `cbor:"1,keyasint,omitempty"`
	Gen   uint64       `cbor:"2,keyasint"`
	Boxes []SealedSeed `cbor:"3,keyasint"` // sorted by member, no repeats
	Chain []byte       `cbor:"4,keyasint,omitempty"`
	Prev  event.ID     `cbor:"5,keyasint,omitzero"` // the key-update whose seed Chain holds
	Part  uint64       `cbor:"6,keyasint,omitempty"`
	Parts uint64       `cbor:"7,keyasint,omitempty"` // 0: a single event
	First event.ID     `cbor:"8,keyasint,omitzero"`  // part 0's ID, in parts 1 and on
	// Siblings chains earlier generations of the scope that Prev does not
	// lead to (made concurrently with the one it chains: two members
	// rotating at once), so that whoever holds this one reads them too
	// (keys.ChainSibling). Sorted by Prev, only in part 0.
	Siblings []ChainedSibling `cbor:"9,keyasint,omitempty"`
}

// ChainedSibling is an earlier generation of a key update's scope, chained
// under the new one with keys.ChainSibling: the key update Prev published
// it, with number Gen.
type ChainedSibling struct {
	Prev  event.ID `cbor:"1,keyasint"`
	Gen   uint64   `cbor:"2,keyasint"`
	Chain []byte   `cbor:"3,keyasint"`
}

// SealedSeed is a generation's seed sealed to one member (keys.SealSeed).
type SealedSeed struct {
	Member identity.PublicKey `cbor:"1,keyasint"`
	Box    []byte             `cbor:"2,keyasint"`
}

// Sizes of what a KeyUpdate carries: a sealed seed and a chained seed.
const (
	SealedSeedSize  = 1168
	ChainedSeedSize = 48
	MaxSealedSeeds  = 256 // per event (the decoder's array limit); larger scopes take several parts
	MaxKeyParts     = 16  // so at most 4,096 members per generation
	MaxSiblings     = 16  // earlier generations one key update chains beside Prev
)

// TaskSealed is a task event sealed for the task's readers (docs/ops.md
// §4.23, docs/keys.md "Content"). Content is the task op (its kind as a
// uvarint, then its body) sealed with a fresh content key; Wraps wrap that
// key under the current generation of each scope that reads the task (the
// group key for a task every member sees, else the roles it is visible
// or assigned to); Boxes seal it to each reader outside those scopes (the
// task's creator, members it is assigned to), without naming them. Only
// the task's ID is in clear, so a member who reads none of it sees that
// an opaque task exists and is acted on, nothing more.
type TaskSealed struct {
	Task    event.ID      `cbor:"1,keyasint,omitzero"` // the task acted on; zero when the sealed op creates one (the task is this event)
	Wraps   []ContentWrap `cbor:"2,keyasint,omitempty"`
	Boxes   [][]byte      `cbor:"3,keyasint,omitempty"`
	Content []byte        `cbor:"4,keyasint"`
}

// ContentWrap is a content key wrapped under the generation that the
// key-update Update published (keys.WrapContentKey).
type ContentWrap struct {
	Update event.ID `cbor:"1,keyasint"`
	Key    []byte   `cbor:"2,keyasint"`
}

// Sizes of what a TaskSealed carries.
const (
	WrappedKeySize = 72   // nonce, content key, tag
	ContentBoxSize = 1168 // HPKE encapsulation, content key, tag
	MaxWraps       = MaxRoles + 1
	MaxBoxes       = 256 // readers sealed to one by one
)

// MemberKey is a member's new KEM key, published by the member itself
// (docs/keys.md, "A member's own KEM key"): key generations published on
// top of it are sealed to the new key, and generations sealed to the old
// one are stale for the member until rotated. Binding is the member's
// signature of KEM (identity.SignKEMBinding).
type MemberKey struct {
	KEM     []byte `cbor:"1,keyasint"`
	Binding []byte `cbor:"2,keyasint"`
	// Boxes give the new key to the member's other current devices
	// (docs/devices.md §5): one each, sorted by device; none for a
	// member with one device.
	Boxes []DeviceBox `cbor:"3,keyasint,omitempty"`
}

// Relays changes the pursuance's relay list: the URLs in Add join it, those
// in Remove leave it. Accepted changes apply in log order, so concurrent
// ones settle the same way everywhere.
type Relays struct {
	Add    []string `cbor:"1,keyasint,omitempty"`
	Remove []string `cbor:"2,keyasint,omitempty"`
}

// MaxRelays bounds the URLs one relays event names, and MaxRelayURL one URL.
const (
	MaxRelays   = 16
	MaxRelayURL = 256
)

// MaxFronts bounds the fronts one relay's name lists.
const MaxFronts = 8

// CheckRelayURL checks a relay's URL: "http://" or "https://", a host
// (letters, digits, '.', '-', or a bracketed IPv6 address) with an
// optional port, and an optional path of unreserved characters and '/',
// with no trailing slash, no user, query or fragment, at most MaxRelayURL
// bytes. A relay run as several fronts (docs/relay.md) is named by up to
// MaxFronts such URLs, distinct, joined with commas. (Hand-written rather
// than net/url: this package stays pure, and the form must be canonical,
// one spelling per relay.)
func CheckRelayURL(s string) error {
	if len(s) > MaxRelayURL {
		return fmt.Errorf("relay URL of %d bytes", len(s))
	}
	if !strings.Contains(s, ",") {
		return checkFrontURL(s)
	}
	fronts := strings.Split(s, ",")
	if len(fronts) > MaxFronts {
		return fmt.Errorf("bad relay URL %q: %d fronts, at most %d", s, len(fronts), MaxFronts)
	}
	for i, f := range fronts {
		if err := checkFrontURL(f); err != nil {
			return err
		}
		if slices.Contains(fronts[:i], f) {
			return fmt.Errorf("bad relay URL %q: the front %s twice", s, f)
		}
	}
	return nil
}

// checkFrontURL checks one URL of CheckRelayURL.
func checkFrontURL(s string) error {
	bad := func(why string) error { return fmt.Errorf("bad relay URL %q: %s", s, why) }
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "http://"); !ok {
			return bad("want http(s)://host[:port][/path]")
		}
	}
	host, path, _ := strings.Cut(rest, "/")
	if host == "" {
		return bad("no host")
	}
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return bad("unclosed [")
		}
		name, port = host[:end+1], host[end+1:]
		for _, c := range name[1:end] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == ':' || c == '.') {
				return bad("not an IPv6 address in lower case")
			}
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		name, port = host[:i], host[i:]
	}
	if !strings.HasPrefix(name, "[") {
		if name == "" {
			return bad("no host")
		}
		for _, c := range name {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
				return bad("host in lower case letters, digits, '.' and '-' only")
			}
		}
	}
	if port != "" {
		digits := port[1:]
		if port[0] != ':' || digits == "" || len(digits) > 5 || digits[0] == '0' && len(digits) > 1 {
			return bad("bad port")
		}
		for _, c := range digits {
			if c < '0' || c > '9' {
				return bad("bad port")
			}
		}
	}
	if strings.HasSuffix(s, "/") {
		return fmt.Errorf("relay URL %q is not in canonical form (no trailing slash)", s)
	}
	for _, c := range path {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~/", c)) {
			return bad("path characters beyond letters, digits and -._~/")
		}
	}
	if strings.HasPrefix(path, "/") || strings.Contains(path, "//") {
		return bad("empty path segment")
	}
	return nil
}

// Opaque is the body of a kind this version decodes but does not interpret
// yet (keys, relays, links).
type Opaque struct {
	kind event.Kind
	Body []byte
}

func (Genesis) Kind() event.Kind      { return event.KindGenesis }
func (CharterAmend) Kind() event.Kind { return event.KindCharterAmend }
func (RoleAssign) Kind() event.Kind   { return event.KindRoleAssign }
func (RoleRevoke) Kind() event.Kind   { return event.KindRoleRevoke }
func (Invite) Kind() event.Kind       { return event.KindInvite }
func (InviteRevoke) Kind() event.Kind { return event.KindInviteRevoke }
func (Join) Kind() event.Kind         { return event.KindJoin }
func (Remove) Kind() event.Kind       { return event.KindRemove }
func (Leave) Kind() event.Kind        { return event.KindLeave }
func (Proposal) Kind() event.Kind     { return event.KindProposal }
func (Approval) Kind() event.Kind     { return event.KindApproval }
func (TaskCreate) Kind() event.Kind   { return event.KindTaskCreate }
func (TaskEdit) Kind() event.Kind     { return event.KindTaskEdit }
func (TaskMove) Kind() event.Kind     { return event.KindTaskMove }
func (TaskAssign) Kind() event.Kind   { return event.KindTaskAssign }
func (TaskUnassign) Kind() event.Kind { return event.KindTaskUnassign }
func (TaskStatus) Kind() event.Kind   { return event.KindTaskStatus }
func (TaskComment) Kind() event.Kind  { return event.KindTaskComment }
func (TaskArchive) Kind() event.Kind  { return event.KindTaskArchive }
func (KeyUpdate) Kind() event.Kind    { return event.KindKeyUpdate }
func (TaskSealed) Kind() event.Kind   { return event.KindTaskSealed }
func (Relays) Kind() event.Kind       { return event.KindRelays }
func (MemberKey) Kind() event.Kind    { return event.KindMemberKey }
func (o Opaque) Kind() event.Kind     { return o.kind }

var (
	encMode cbor.UserBufferEncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().UserBufferEncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   4,
		MaxArrayElements:  256,
		MaxMapPairs:       32,
		TagsMd:            cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// EncodeOp returns op's canonical body bytes.
func EncodeOp(op Op) ([]byte, error) {
	switch o := op.(type) {
	case Opaque:
		return bytes.Clone(o.Body), nil
	case *Opaque:
		return bytes.Clone(o.Body), nil
	}
	b, err := encMode.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("state: encode %s: %w", op.Kind(), err)
	}
	return b, nil
}

// newOp returns a pointer to a zero Op of the given kind, if this version
// interprets it (the kind table).
func newOp(k event.Kind) (Op, bool) {
	if f := kindOf(k).new; f != nil {
		return f(), true
	}
	return nil, false
}

// DecodeOp decodes an event body of kind k into a pointer to its Op type
// (*TaskCreate for task-create, and so on; Opaque for kinds this version
// does not interpret). The decoder is strict: unknown
// fields, duplicate keys and any encoding other than the canonical one are
// errors wrapping ErrBadOp, as are texts over their limits.
func DecodeOp(k event.Kind, body []byte) (Op, error) { return decodeOp(k, body, nil) }

// decodeOp is DecodeOp; with scratch, the canonical form is checked by
// encoding into it instead of a new buffer (a fold decodes every event's
// body: at 100,000 events the copies were 42 MB of garbage). scratch must
// be the caller's alone.
func decodeOp(k event.Kind, body []byte, scratch *bytes.Buffer) (Op, error) {
	p, ok := newOp(k)
	if !ok {
		if k.Known() {
			return Opaque{kind: k, Body: bytes.Clone(body)}, nil
		}
		return nil, fmt.Errorf("%w: unknown kind %d", ErrBadOp, k)
	}
	if err := decMode.Unmarshal(body, p); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadOp, k, err)
	}
	var again []byte
	var err error
	if scratch != nil {
		scratch.Reset()
		err = encMode.MarshalToBuffer(p, scratch)
		again = scratch.Bytes()
	} else {
		again, err = encMode.Marshal(p)
	}
	if err != nil || !bytes.Equal(again, body) {
		return nil, fmt.Errorf("%w: %s: not in canonical form", ErrBadOp, k)
	}
	if err := checkOp(p); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadOp, k, err)
	}
	return p, nil
}

// checkOp checks the shape of an op: lengths, formats, required fields.
func checkOp(op Op) error {
	switch o := op.(type) {
	case *Genesis:
		if len(o.Charter) == 0 {
			return errors.New("no charter")
		}
		return checkRootLine(o.Root)
	case *Join:
		return checkRootLine(o.Root)
	case *CharterAmend:
		if len(o.Charter) == 0 {
			return errors.New("no charter")
		}
	case *Proposal:
		if _, ok := newOp(o.Action); !ok {
			return fmt.Errorf("cannot propose %s", o.Action)
		}
	case *TaskCreate:
		if err := checkTitle(o.Title); err != nil {
			return err
		}
		if err := checkText("body", o.Body); err != nil {
			return err
		}
		if len(o.VisibleTo) > MaxRoles || len(o.Assignees) > MaxAssign {
			return errors.New("too many roles or assignees")
		}
		for _, a := range o.Assignees {
			if err := checkAssigneeText(a); err != nil {
				return err
			}
		}
		if o.Due != "" {
			if err := CheckDue(o.Due); err != nil {
				return err
			}
		}
	case *TaskEdit:
		if o.Title != nil {
			if err := checkTitle(*o.Title); err != nil {
				return err
			}
		}
		if o.Body != nil {
			if err := checkText("body", *o.Body); err != nil {
				return err
			}
		}
		if o.Due != nil && *o.Due != "" {
			if err := CheckDue(*o.Due); err != nil {
				return err
			}
		}
	case *TaskAssign:
		if b := o.Brief; b != nil {
			if err := checkTitle(b.Title); err != nil {
				return err
			}
			if len(b.Body) > MaxText || len(b.VisibleTo) > MaxRoles {
				return errors.New("brief too long")
			}
		}
		return checkAssigneeText(o.Assignee)
	case *TaskUnassign:
		return checkAssigneeText(o.Assignee)
	case *TaskStatus:
		if !o.Status.Valid() {
			return fmt.Errorf("unknown status %d", o.Status)
		}
	case *KeyUpdate:
		switch {
		case o.Gen == 0:
			return errors.New("generation 0")
		case len(o.Boxes) == 0:
			return errors.New("no sealed seeds")
		case len(o.Boxes) > MaxSealedSeeds:
			return fmt.Errorf("%d sealed seeds, more than %d", len(o.Boxes), MaxSealedSeeds)
		case len(o.Chain) != 0 && len(o.Chain) != ChainedSeedSize:
			return fmt.Errorf("chained seed of %d bytes", len(o.Chain))
		case len(o.Chain) != 0 && o.Gen == 1:
			return errors.New("generation 1 has nothing to chain")
		case (len(o.Chain) == 0) != o.Prev.IsZero():
			return errors.New("a chained seed and the update it comes from go together")
		case len(o.Role) > 32:
			return errors.New("role name too long")
		case o.Parts > MaxKeyParts:
			return fmt.Errorf("%d parts, more than %d", o.Parts, MaxKeyParts)
		case o.Parts <= 1 && (o.Part != 0 || !o.First.IsZero()) || o.Parts == 1:
			return errors.New("a part of a single key update")
		case o.Parts > 1 && o.Part >= o.Parts:
			return fmt.Errorf("part %d of %d", o.Part, o.Parts)
		case (o.Part == 0) != o.First.IsZero():
			return errors.New("a later part names its first part, and only it does")
		case o.Part > 0 && len(o.Chain) > 0:
			return errors.New("only the first part carries the chained seed")
		case len(o.Siblings) > MaxSiblings:
			return fmt.Errorf("%d chained siblings, more than %d", len(o.Siblings), MaxSiblings)
		case o.Part > 0 && len(o.Siblings) > 0:
			return errors.New("only the first part carries chained siblings")
		}
		for i, sib := range o.Siblings {
			switch {
			case len(sib.Chain) != ChainedSeedSize:
				return fmt.Errorf("chained sibling seed of %d bytes", len(sib.Chain))
			case sib.Gen == 0 || sib.Gen >= o.Gen:
				return fmt.Errorf("a chained sibling of generation %d under generation %d", sib.Gen, o.Gen)
			case sib.Prev == o.Prev:
				return errors.New("a chained sibling repeats the chained generation")
			case i > 0 && o.Siblings[i-1].Prev.Compare(sib.Prev) >= 0:
				return errors.New("chained siblings not sorted by update, or repeated")
			}
		}
		for i, b := range o.Boxes {
			if len(b.Box) != SealedSeedSize {
				return fmt.Errorf("sealed seed of %d bytes", len(b.Box))
			}
			if i > 0 && o.Boxes[i-1].Member.Compare(b.Member) >= 0 {
				return errors.New("sealed seeds not sorted by member, or repeated")
			}
		}
	case *Relays:
		if len(o.Add)+len(o.Remove) == 0 || len(o.Add)+len(o.Remove) > MaxRelays {
			return fmt.Errorf("%d relay URLs (1 to %d)", len(o.Add)+len(o.Remove), MaxRelays)
		}
		for _, u := range append(slices.Clone(o.Add), o.Remove...) {
			if err := CheckRelayURL(u); err != nil {
				return err
			}
		}
	case *TaskSealed:
		switch {
		case len(o.Wraps) == 0 && len(o.Boxes) == 0:
			return errors.New("sealed for nobody")
		case len(o.Wraps) > MaxWraps || len(o.Boxes) > MaxBoxes:
			return errors.New("sealed for too many")
		case len(o.Content) == 0:
			return errors.New("no content")
		}
		for i, w := range o.Wraps {
			if len(w.Key) != WrappedKeySize {
				return fmt.Errorf("wrapped key of %d bytes", len(w.Key))
			}
			if i > 0 && o.Wraps[i-1].Update.Compare(w.Update) >= 0 {
				return errors.New("wraps not sorted by update, or repeated")
			}
		}
		for _, b := range o.Boxes {
			if len(b) != ContentBoxSize {
				return fmt.Errorf("sealed content key of %d bytes", len(b))
			}
		}
	case *Invite:
		if len(o.KEM) != 0 && len(o.KEM) != identity.KEMPublicKeySize {
			return fmt.Errorf("invite KEM key of %d bytes", len(o.KEM))
		}
		if len(o.Boxes) > 0 && len(o.KEM) == 0 {
			return errors.New("sealed seeds without a KEM key")
		}
		if len(o.Boxes) > 2 {
			return fmt.Errorf("%d sealed seeds: an invite carries the group key and its role's", len(o.Boxes))
		}
		for i, b := range o.Boxes {
			if len(b.Box) != SealedSeedSize {
				return fmt.Errorf("sealed seed of %d bytes", len(b.Box))
			}
			if b.Role != "" && b.Role != o.Role {
				return fmt.Errorf("a seed of role %q in an invite into %q", b.Role, o.Role)
			}
			if i > 0 && o.Boxes[i-1].Role >= b.Role {
				return errors.New("sealed seeds not sorted by role, or repeated")
			}
		}
	case *MemberKey:
		if len(o.KEM) != identity.KEMPublicKeySize {
			return fmt.Errorf("KEM key of %d bytes", len(o.KEM))
		}
		if len(o.Binding) != identity.SignatureSize {
			return fmt.Errorf("KEM binding of %d bytes", len(o.Binding))
		}
		return checkDeviceBoxes(o.Boxes)
	case *Device:
		return checkDeviceOp(o)
	case *LinkOffer, *LinkAccept, *Handoff, *LinkReceive, *LinkReport:
		return checkLinkOp(o)
	case *Profile:
		return checkProfileOp(o)
	case *Succession, *Succeed:
		return checkSuccessionOp(o)
	case *NodeAddress:
		return checkNodeAddressOp(o)
	case *TaskAttach:
		return checkAttachOp(o)
	case *TaskComment:
		if strings.TrimSpace(o.Text) == "" {
			return errors.New("the comment is empty")
		}
		if err := checkText("comment", o.Text); err != nil {
			return err
		}
	}
	return nil
}

func checkTitle(t string) error {
	switch {
	case strings.TrimSpace(t) == "":
		return errors.New("the title is empty")
	case len(t) > MaxTitle:
		return fmt.Errorf("the title is %d bytes long, over the limit of %d: shorten it (details go in the body)", len(t), MaxTitle)
	case strings.ContainsAny(t, "\n\r"):
		return errors.New("the title has a line break: keep it to one line (details go in the body)")
	}
	return nil
}

// checkText checks a task body or comment (what names it) against MaxText.
func checkText(what, t string) error {
	if len(t) > MaxText {
		return fmt.Errorf("the %s is %d bytes long, over the limit of %d (%d KiB): shorten it or split it", what, len(t), MaxText, MaxText>>10)
	}
	return nil
}

// InputError is CheckInput's error: what is wrong with an op a member is
// about to sign, in words for the person who typed it.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// CheckInput checks an op as a member is about to sign it, before it is
// sealed: the limits DecodeOp holds every event to (a title's length, a
// body's, a due date's form…), said for the person who typed it ("the
// title is 312 bytes long, over the limit of 200: …"), without the
// decoder's framing. Its errors are *InputError.
func CheckInput(op Op) error {
	if err := checkOp(op); err != nil {
		return &InputError{err}
	}
	return nil
}

// CheckDue checks a due date's form, YYYY-MM-DD.
func CheckDue(s string) error {
	if len(s) != MaxDueSize || s[4] != '-' || s[7] != '-' {
		return fmt.Errorf("due date %q is not YYYY-MM-DD", s)
	}
	for i, c := range s {
		if i == 4 || i == 7 {
			continue
		}
		if c < '0' || c > '9' {
			return fmt.Errorf("due date %q is not YYYY-MM-DD", s)
		}
	}
	m := (s[5]-'0')*10 + s[6] - '0'
	d := (s[8]-'0')*10 + s[9] - '0'
	if m < 1 || m > 12 || d < 1 || d > 31 {
		return fmt.Errorf("due date %q is not a date", s)
	}
	return nil
}

// JoinMessage is what an invite key signs to admit a member: a label, the
// pursuance, the invite event and the joiner's signing key.
func JoinMessage(pursuance, invite event.ID, joiner identity.PublicKey) []byte {
	const label = "pursuance/v1/join\x00"
	m := make([]byte, 0, len(label)+2*event.IDSize+identity.PublicKeySize)
	m = append(m, label...)
	m = append(m, pursuance[:]...)
	m = append(m, invite[:]...)
	return append(m, joiner[:]...)
}

// checkAssigneeText checks that s is an assignee in its one canonical text
// form, so that one assignee is one key of the add-wins set.
func checkAssigneeText(s string) error {
	a, err := ParseAssignee(s)
	if err != nil {
		return err
	}
	if a.String() != s {
		return fmt.Errorf("assignee %q is not in canonical form %q", s, a.String())
	}
	return nil
}
