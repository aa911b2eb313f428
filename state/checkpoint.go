package state

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/fxamacker/cbor/v2"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// A checkpoint of a fold (docs/fold.md, "The checkpoint on disk") is,
// in two sections:
//
//   - the view: what a state's readers of members, tasks, relays and keys
//     answer (ckView, lazy.go), from which OpenCheckpoint makes a state
//     without its events;
//   - the verdicts: what judging decided for each event of the state and
//     the settled facts (a task's visibility, the invite a join used as
//     its parents saw it, the devices a revocation cuts off, ...) that
//     apply replays, and the restrictions pinned by the last pass. A
//     state is rebuilt from them and the same events (Builder.FinishFrom)
//     by applying the recorded effects in log order, as Extend does for
//     the events before the first new one, without judging any: the
//     judging is the expensive part of a fold.
//
// The checkpoint is three CBOR items one after the other: its head
// (checkpoint), the view and the verdicts, the head giving the view's
// size, so that opening one decodes the head and the view only, and
// neither section is copied to be found.

// CheckpointVersion is the version of the checkpoint format; a checkpoint
// of another version is refused (and the fold done again). 2: the view
// section (lazy.go).
const CheckpointVersion = 2

// ErrCheckpoint is wrapped by FinishFrom's errors: the checkpoint does not
// fit the events added (another log, another version, corrupt), or the
// state rebuilt from it does not have the hash it recorded. The caller
// folds from scratch instead.
var ErrCheckpoint = errors.New("state: checkpoint does not fit")

type checkpoint struct {
	Version   int      `cbor:"1,keyasint"`
	Pursuance event.ID `cbor:"2,keyasint"`
	Secrets   bool     `cbor:"3,keyasint,omitempty"` // folded with a member's secrets
	Hash      [32]byte `cbor:"4,keyasint"`           // State.Hash of the state checkpointed
	Len       int      `cbor:"5,keyasint"`           // its events
	ViewSize  int      `cbor:"6,keyasint"`           // of the view's item, after the head's

	View     []byte `cbor:"-"` // ckView, encoded: the item after the head
	Verdicts []byte `cbor:"-"` // ckVerdicts, encoded: the rest
}

// encode returns ck's head, view and verdicts, one after the other.
func (ck *checkpoint) encode() ([]byte, error) {
	ck.ViewSize = len(ck.View)
	head, err := encMode.Marshal(ck)
	if err != nil {
		return nil, fmt.Errorf("state: encode the checkpoint: %w", err)
	}
	return append(append(head, ck.View...), ck.Verdicts...), nil
}

type ckVerdicts struct {
	IDs      []byte   `cbor:"1,keyasint"` // the events' IDs in log order, concatenated
	Nodes    []ckNode `cbor:"2,keyasint"` // aligned with IDs
	Pinned   []ckPin  `cbor:"3,keyasint,omitempty"`
	Excluded []int32  `cbor:"4,keyasint,omitempty"`
	Forks    []ckFork `cbor:"5,keyasint,omitempty"` // the fold's forks, which the verdicts assume
	Held     []ckHeld `cbor:"6,keyasint,omitempty"` // the key generations the member's secrets opened (Builder.HintHeld)
}

// ckHeld is a HeldKey in a checkpoint, with the key-update it is of.
type ckHeld struct {
	Update    event.ID  `cbor:"1,keyasint"`
	Pursuance event.ID  `cbor:"2,keyasint"` // the key's scope
	Role      string    `cbor:"3,keyasint,omitempty"`
	Gen       uint64    `cbor:"4,keyasint"`
	Seed      keys.Seed `cbor:"5,keyasint"`
	Via       string    `cbor:"6,keyasint"`
}

type ckNode struct {
	Accepted bool                 `cbor:"1,keyasint,omitempty"`
	Reason   string               `cbor:"2,keyasint,omitempty"`
	VisSet   bool                 `cbor:"3,keyasint,omitempty"` // vis is not nil (it may be empty)
	Vis      []string             `cbor:"4,keyasint,omitempty"`
	Inert    string               `cbor:"5,keyasint,omitempty"`
	KemsSet  bool                 `cbor:"6,keyasint,omitempty"`
	Kems     []event.ID           `cbor:"7,keyasint,omitempty"`
	SendRole string               `cbor:"8,keyasint,omitempty"`
	Revokes  []identity.PublicKey `cbor:"9,keyasint,omitempty"`
	Invite   *ckInvit             `cbor:"10,keyasint,omitempty"`
}

type ckInvit struct {
	ID      event.ID           `cbor:"1,keyasint"`
	Author  identity.PublicKey `cbor:"2,keyasint"`
	Op      Invite             `cbor:"3,keyasint"`
	Used    uint64             `cbor:"4,keyasint,omitempty"`
	Revoked bool               `cbor:"5,keyasint,omitempty"`
}

type ckPin struct {
	Pos    int32              `cbor:"1,keyasint"`
	Target identity.PublicKey `cbor:"2,keyasint"`
	Role   string             `cbor:"3,keyasint,omitempty"`
	Invite event.ID           `cbor:"4,keyasint,omitempty"`
	Link   event.ID           `cbor:"5,keyasint,omitempty"`
	Device bool               `cbor:"6,keyasint,omitempty"`
}

type ckFork struct {
	Author identity.PublicKey `cbor:"1,keyasint"`
	Seq    uint64             `cbor:"2,keyasint"`
}

// ckDec returns the decoder of checkpoints: as strict as the events'
// (decMode) on form, without their limits on sizes (a checkpoint holds an
// entry per event). Made per call: the package keeps no global state but
// its tables (event's TestPurity).
func ckDec() cbor.DecMode {
	d, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  16,
		MaxArrayElements: math.MaxInt32,
		MaxMapPairs:      math.MaxInt32,
		TagsMd:           cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err) // only for options out of range
	}
	return d
}

// Checkpoint returns the checkpoint of s: what rebuilds s from the same
// events without judging them (Builder.FinishFrom), and what answers its
// readers without them (OpenCheckpoint).
func (s *State) Checkpoint() ([]byte, error) {
	b := s.b()
	ck := checkpoint{Version: CheckpointVersion, Pursuance: b.pursuance, Secrets: b.secrets != nil, Hash: s.Hash(), Len: len(b.nodes)}
	var vs ckVerdicts
	vs.IDs = make([]byte, 0, len(b.nodes)*event.IDSize)
	vs.Nodes = make([]ckNode, len(b.nodes))
	for i, n := range b.nodes {
		id := n.e.ID()
		vs.IDs = append(vs.IDs, id[:]...)
		c := &vs.Nodes[i]
		c.Accepted, c.Reason, c.Vis, c.VisSet, c.Inert = n.accepted, n.reason, n.vis, n.vis != nil, n.inert
		c.Kems, c.KemsSet, c.SendRole, c.Revokes = n.kems, n.kems != nil, n.sendRole, n.revokes
		if iv := n.invite; iv != nil {
			c.Invite = &ckInvit{ID: iv.id, Author: iv.author, Op: iv.op, Used: iv.used, Revoked: iv.revoked}
		}
	}
	for p, r := range b.pinned {
		vs.Pinned = append(vs.Pinned, ckPin{Pos: p, Target: r.target, Role: r.role, Invite: r.invite, Link: r.link, Device: r.device})
	}
	for p, x := range b.excluded {
		if x {
			vs.Excluded = append(vs.Excluded, p)
		}
	}
	for a, seq := range b.forks {
		vs.Forks = append(vs.Forks, ckFork{Author: a, Seq: seq})
	}
	for id, h := range b.held {
		vs.Held = append(vs.Held, ckHeld{Update: id, Pursuance: h.Key.Scope.Pursuance, Role: h.Key.Scope.Role, Gen: h.Key.Gen, Seed: h.Key.Seed, Via: h.Via})
	}
	slices.SortFunc(vs.Held, func(x, y ckHeld) int { return x.Update.Compare(y.Update) })
	var err error
	if ck.Verdicts, err = encMode.Marshal(&vs); err != nil {
		return nil, fmt.Errorf("state: encode the checkpoint: %w", err)
	}
	v := viewOf(s)
	if ck.View, err = encMode.Marshal(&v); err != nil {
		return nil, fmt.Errorf("state: encode the checkpoint: %w", err)
	}
	return ck.encode()
}

// decodeCheckpoint decodes a checkpoint's outer part (its sections left
// encoded) and checks its version.
func decodeCheckpoint(data []byte) (*checkpoint, error) {
	var ck checkpoint
	rest, err := ckDec().UnmarshalFirst(data, &ck)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	if ck.Version != CheckpointVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrCheckpoint, ck.Version, CheckpointVersion)
	}
	if ck.ViewSize < 0 || ck.ViewSize > len(rest) {
		return nil, fmt.Errorf("%w: cut", ErrCheckpoint)
	}
	ck.View, ck.Verdicts = rest[:ck.ViewSize], rest[ck.ViewSize:]
	return &ck, nil
}

// ckVerdictsRaw is ckVerdicts with its nodes left encoded: FinishFrom
// decodes them one at a time into one ckNode (a million decoded at once
// are 144 MB more at the load's peak, for a few bytes each encoded).
// Its IDs are read in place (verdictIDs).
type ckVerdictsRaw struct {
	IDs      []byte          `cbor:"-"`
	Nodes    cbor.RawMessage `cbor:"2,keyasint"`
	Pinned   []ckPin         `cbor:"3,keyasint,omitempty"`
	Excluded []int32         `cbor:"4,keyasint,omitempty"`
	Forks    []ckFork        `cbor:"5,keyasint,omitempty"`
	Held     []ckHeld        `cbor:"6,keyasint,omitempty"`
}

// decodeVerdictsRaw decodes a checkpoint and its verdicts but for their
// nodes, and returns the nodes' items after their array's head.
func decodeVerdictsRaw(data []byte) (*checkpoint, *ckVerdictsRaw, []byte, error) {
	ck, err := decodeCheckpoint(data)
	if err != nil {
		return nil, nil, nil, err
	}
	var vs ckVerdictsRaw
	if err := ckDec().Unmarshal(ck.Verdicts, &vs); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: its verdicts: %v", ErrCheckpoint, err)
	}
	if vs.IDs, err = verdictIDs(ck.Verdicts, ck.Len); err != nil {
		return nil, nil, nil, err
	}
	n, items, err := cborArray(vs.Nodes)
	if err != nil || n != uint64(ck.Len) {
		return nil, nil, nil, fmt.Errorf("%w: %d events, %d verdicts (%v)", ErrCheckpoint, ck.Len, n, err)
	}
	return ck, &vs, items, nil
}

// cborArray returns the length of the definite-length CBOR array item
// and what follows its head: its items, one after the other.
func cborArray(item []byte) (n uint64, items []byte, err error) {
	major, n, items, err := cborHead(item)
	if err == nil && major != 4 {
		err = errors.New("not an array")
	}
	return n, items, err
}

// cborHead splits a definite-length CBOR item's head from what follows:
// its major type and its argument (a length, or an unsigned integer's
// value).
func cborHead(item []byte) (major byte, arg uint64, rest []byte, err error) {
	if len(item) == 0 {
		return 0, 0, nil, errors.New("cut")
	}
	major, ai := item[0]>>5, item[0]&0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), item[1:], nil
	case ai <= 27:
		size := 1 << (ai - 24) // 1, 2, 4 or 8 bytes of argument
		if len(item) < 1+size {
			return 0, 0, nil, errors.New("cut")
		}
		for _, c := range item[1 : 1+size] {
			arg = arg<<8 | uint64(c)
		}
		return major, arg, item[1+size:], nil
	}
	return 0, 0, nil, errors.New("not of a definite length")
}

// verdictIDs returns the IDs of a verdicts section (ckVerdicts.IDs, its
// first entry as encoded) in place: a million events' are 32 MB, and the
// loader and FinishFrom each decoded a copy.
func verdictIDs(verdicts []byte, n int) ([]byte, error) {
	bad := func(why string) ([]byte, error) {
		return nil, fmt.Errorf("%w: its verdicts' IDs: %s", ErrCheckpoint, why)
	}
	major, _, rest, err := cborHead(verdicts)
	if err != nil || major != 5 {
		return bad("not a map")
	}
	major, key, rest, err := cborHead(rest)
	if err != nil || major != 0 || key != 1 {
		return bad("not first")
	}
	major, size, rest, err := cborHead(rest)
	if err != nil || major != 2 || size > uint64(len(rest)) {
		return bad("not a byte string")
	}
	if size != uint64(n)*event.IDSize {
		return bad(fmt.Sprintf("%d bytes for %d events", size, n))
	}
	return rest[:size:size], nil
}

// CheckpointVerdicts returns checkpoint data without its view: what
// NewCheckpointCover and Builder.FinishFrom read, in memory of its own,
// for a loader that keeps it while a state opened from the checkpoint
// serves from its view (at 1M events of a filled home, about 40 of the
// checkpoint's 192 MB).
func CheckpointVerdicts(data []byte) ([]byte, error) {
	ck, err := decodeCheckpoint(data)
	if err != nil {
		return nil, err
	}
	ck.View = nil
	return ck.encode()
}

// CheckpointCover tells, going through a store's events in log order,
// which are the events a checkpoint covers, so that its caller adds
// exactly those to a Builder before FinishFrom (and extends the state with
// the others). The checkpoint lists them in log order, a subsequence of
// the store's: an event is covered when it is the next one listed. It
// holds the list, not a set of it (a map of a million IDs is ~100 MB).
type CheckpointCover struct {
	ids  []byte // the IDs, concatenated, in log order
	next int    // the next one's offset
}

// NewCheckpointCover returns the cover of checkpoint data; it holds data's
// IDs in place.
func NewCheckpointCover(data []byte) (*CheckpointCover, error) {
	ck, err := decodeCheckpoint(data)
	if err != nil {
		return nil, err
	}
	ids, err := verdictIDs(ck.Verdicts, ck.Len)
	if err != nil {
		return nil, err
	}
	return &CheckpointCover{ids: ids}, nil
}

// Covers reports whether id, the store's next event in log order after
// those Covers was asked of, is the checkpoint's next event.
func (c *CheckpointCover) Covers(id event.ID) bool {
	if c.next < len(c.ids) && string(c.ids[c.next:c.next+event.IDSize]) == string(id[:]) {
		c.next += event.IDSize
		return true
	}
	return false
}

// Len returns the number of events the checkpoint covers.
func (c *CheckpointCover) Len() int { return len(c.ids) / event.IDSize }

// Complete reports whether every event the checkpoint covers was met.
func (c *CheckpointCover) Complete() bool { return c.next == len(c.ids) }

// FinishFrom is Finish for a Builder given exactly the events of the
// checkpoint data (State.Checkpoint), in log order, with the same evidence
// and secrets: the verdicts recorded are taken and their effects applied
// instead of judging every event. The state rebuilt must have the hash
// the checkpoint recorded; any misfit is an error wrapping ErrCheckpoint
// (and the Builder must not be used again: fold from scratch).
func (x *Builder) FinishFrom(data []byte) (_ *State, err error) {
	// Verdicts that do not fit the events (a checkpoint of a build with
	// other rules) may make apply meet what judging rules out, such as a
	// join applied before any genesis: that is a misfit too.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: its verdicts do not apply (%v)", ErrCheckpoint, r)
		}
	}()
	defer func() { x.b.reuse, x.b.hint = nil, nil }()
	if x.err != nil {
		return nil, x.err
	}
	b := x.b
	ck, vs, items, err := decodeVerdictsRaw(data)
	if err != nil {
		return nil, err
	}
	switch {
	case ck.Pursuance != b.pursuance:
		return nil, fmt.Errorf("%w: another pursuance", ErrCheckpoint)
	case ck.Secrets != (b.secrets != nil):
		return nil, fmt.Errorf("%w: folded with other secrets", ErrCheckpoint)
	case len(b.nodes) == 0 || ck.Len != len(b.nodes):
		return nil, fmt.Errorf("%w: %d events, %d added", ErrCheckpoint, ck.Len, len(b.nodes))
	case len(vs.Forks) != len(b.forks):
		return nil, fmt.Errorf("%w: other forks", ErrCheckpoint)
	}
	for _, f := range vs.Forks {
		if s, ok := b.forks[f.Author]; !ok || s != f.Seq {
			return nil, fmt.Errorf("%w: other forks", ErrCheckpoint)
		}
	}
	for i, n := range b.nodes {
		if id := n.e.ID(); string(id[:]) != string(vs.IDs[i*event.IDSize:(i+1)*event.IDSize]) {
			return nil, fmt.Errorf("%w: event %d differs", ErrCheckpoint, i)
		}
	}
	if b.secrets != nil {
		b.held = b.openKeys(b.secrets)
		if b.hint != nil && !maps.Equal(b.held, b.hint) {
			return nil, fmt.Errorf("%w: the keys it says were held are not those the log opens", ErrCheckpoint)
		}
		b.hint = nil
		b.linkKeys = b.openLinkKeys(b.secrets)
		b.openSealed()
	}
	dec := ckDec()
	var c ckNode
	for _, n := range b.nodes {
		c = ckNode{}
		if items, err = dec.UnmarshalFirst(items, &c); err != nil {
			return nil, fmt.Errorf("%w: its verdicts: %v", ErrCheckpoint, err)
		}
		n.accepted, n.reason = c.Accepted, c.Reason
		r := n.w()
		r.inert, r.sendRole, r.revokes = c.Inert, c.SendRole, c.Revokes
		r.vis, r.kems = c.Vis, c.Kems
		if c.VisSet && r.vis == nil {
			r.vis = []string{}
		}
		if c.KemsSet && r.kems == nil {
			r.kems = []event.ID{}
		}
		if iv := c.Invite; iv != nil {
			r.invite = &inviteState{id: iv.ID, author: iv.Author, op: iv.Op, used: iv.Used, revoked: iv.Revoked}
		}
		b.settleRare(n)
	}
	if len(items) != 0 {
		return nil, fmt.Errorf("%w: its verdicts: %d bytes after the last", ErrCheckpoint, len(items))
	}
	b.pinned, b.excluded = map[int32]restriction{}, map[int32]bool{}
	for _, p := range vs.Pinned {
		if p.Pos < 0 || int(p.Pos) >= len(b.nodes) {
			return nil, fmt.Errorf("%w: a pin out of range", ErrCheckpoint)
		}
		b.pinned[p.Pos] = restriction{target: p.Target, role: p.Role, invite: p.Invite, link: p.Link, device: p.Device}
	}
	for _, p := range vs.Excluded {
		b.excluded[p] = true
	}
	b.startPass()
	for p, n := range b.nodes {
		if n.accepted {
			b.apply(int32(p), n)
		}
	}
	s := &State{folded: b}
	if s.Hash() != ck.Hash {
		return nil, fmt.Errorf("%w: the state rebuilt has another hash", ErrCheckpoint)
	}
	return s, nil
}

// HintHeld gives the Builder the key generations checkpoint data (its
// verdicts) says the member's secrets opened, before its events are
// added: a sealed event is then opened as it is added, through the wraps
// of those generations (openEarly), and the ciphertext not kept until
// FinishFrom has worked out the held keys from the log (at a million
// sealed events, ~250 MB of the load's peak). FinishFrom refuses the
// checkpoint unless the keys the log opens are exactly those. Data
// without them (a checkpoint of a state folded without secrets, or
// written before they were recorded) hints nothing.
func (x *Builder) HintHeld(data []byte) error {
	if x.b.secrets == nil {
		return nil
	}
	ck, err := decodeCheckpoint(data)
	if err != nil {
		return err
	}
	var vs struct {
		Held []ckHeld `cbor:"6,keyasint,omitempty"`
	}
	if err := ckDec().Unmarshal(ck.Verdicts, &vs); err != nil {
		return fmt.Errorf("%w: its verdicts: %v", ErrCheckpoint, err)
	}
	if len(vs.Held) == 0 {
		return nil
	}
	hint := make(map[event.ID]HeldKey, len(vs.Held))
	for _, h := range vs.Held {
		hint[h.Update] = HeldKey{Key: keys.Key{Scope: keys.Scope{Pursuance: h.Pursuance, Role: h.Role}, Gen: h.Gen, Seed: h.Seed}, Update: h.Update, Via: h.Via}
	}
	x.b.hint = hint
	return nil
}
