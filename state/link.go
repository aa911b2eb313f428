package state

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

// Links between pursuances (docs/links.md). Pursuance A offers a link
// (LinkOffer, kind 21 "link"): holders of some of its roles may send
// tasks to pursuance B. B accepts it (LinkAccept): they arrive for one of
// its roles. A member of A holding such a role hands a task off
// (Handoff); a member of B receives it (LinkReceive, which embeds the
// hand-off event of A), and it becomes a task of B; B's members may
// report on it (LinkReport). Either side ends the link (LinkEnd). Each
// event is judged by its own pursuance's rules, on clear fields only:
// the peer's ID and everything sent are sealed under the link's secret,
// which no verdict depends on.

// LinkOffer is A's side of a link: holders of Roles may send tasks to the
// pursuance sealed in Peer.
type LinkOffer struct {
	Link   event.ID `cbor:"1,keyasint"`           // the link's ID (keys.LinkSecret.ID)
	Roles  []string `cbor:"2,keyasint"`           // the roles whose holders send; sorted, no repeats
	Peer   []byte   `cbor:"3,keyasint"`           // the peer pursuance's ID, sealed under the link's secret (LinkPeerAD)
	Update event.ID `cbor:"4,keyasint,omitzero"`  // the group key-update whose generation Key is wrapped under
	Key    []byte   `cbor:"5,keyasint,omitempty"` // the link's secret wrapped under that generation (LinkKeyAD)
}

// LinkAccept is B's side of a link: tasks from the pursuance sealed in
// Peer arrive for Role.
type LinkAccept struct {
	Link   event.ID `cbor:"1,keyasint"`
	Role   string   `cbor:"2,keyasint"`
	Peer   []byte   `cbor:"3,keyasint"`
	Update event.ID `cbor:"4,keyasint,omitzero"`
	Key    []byte   `cbor:"5,keyasint,omitempty"`
}

// LinkEnd ends a link on this side: no hand-off (A's side), receive or
// report (B's side) over it after it, or concurrent with it, stands.
type LinkEnd struct {
	Link event.ID `cbor:"1,keyasint"`
}

// Handoff sends a task over a link: Content is a HandoffContent sealed
// under the link's secret, with SealedAD of this event.
type Handoff struct {
	Link    event.ID `cbor:"1,keyasint"`
	Content []byte   `cbor:"2,keyasint"`
}

// HandoffContent is what a hand-off sends: the task's title, body and due
// date, and the ID of the task of the sending pursuance it came from
// (zero if none), which only the link's two sides read.
type HandoffContent struct {
	Task  event.ID `cbor:"1,keyasint,omitzero"`
	Title string   `cbor:"2,keyasint"`
	Body  string   `cbor:"3,keyasint,omitempty"`
	Due   string   `cbor:"4,keyasint,omitempty"`
	// Files are the task's attachments, by reference: each the encoded
	// TaskAttach (its manifest, chunk keys included) of a file of the
	// task, so that the receiving side reads the same blobs without
	// their being uploaded again (docs/attachments.md, "Hand-off").
	Files [][]byte `cbor:"5,keyasint,omitempty"`
}

// HandoffFileID is the ID a file handed off with a task takes in the
// receiving pursuance: SHA-256 of a label, the hand-off's ID and the
// file's place in the hand-off.
func HandoffFileID(handoff event.ID, i int) event.ID {
	h := sha256.New()
	h.Write([]byte("pursuance/v1/handoff-file\x00"))
	h.Write(handoff[:])
	h.Write(binary.AppendUvarint(nil, uint64(i)))
	return event.ID(h.Sum(nil))
}

// LinkReceive receives a hand-off: Handoff is the hand-off event of the
// other pursuance, encoded whole (event.Encode, its body included). It
// makes a task of this pursuance whose ID is the hand-off's.
type LinkReceive struct {
	Link    event.ID `cbor:"1,keyasint"`
	Handoff []byte   `cbor:"2,keyasint"`
}

// LinkReport reports on a received task back over its link: Content is a
// ReportContent sealed under the link's secret, with SealedAD of this
// event.
type LinkReport struct {
	Link    event.ID `cbor:"1,keyasint"`
	Handoff event.ID `cbor:"2,keyasint"`
	Content []byte   `cbor:"3,keyasint"`
}

// ReportContent is what a report says: a status, a comment, or both.
type ReportContent struct {
	Status  *Status `cbor:"1,keyasint,omitempty"`
	Comment string  `cbor:"2,keyasint,omitempty"`
}

func (LinkOffer) Kind() event.Kind   { return event.KindLink }
func (LinkAccept) Kind() event.Kind  { return event.KindLinkAccept }
func (LinkEnd) Kind() event.Kind     { return event.KindLinkEnd }
func (Handoff) Kind() event.Kind     { return event.KindHandoff }
func (LinkReceive) Kind() event.Kind { return event.KindLinkReceive }
func (LinkReport) Kind() event.Kind  { return event.KindLinkReport }

// LinkPeerSize is the size of a sealed peer ID: nonce, ID, tag.
const LinkPeerSize = 24 + event.IDSize + 16

// MaxEmbedded bounds the encoded hand-off a receive embeds.
const MaxEmbedded = event.MaxHeaderSize + 64 + 2*MaxText

// LinkPeerAD is what a link event's sealed peer is bound to: which side
// (the offer, "offer", or the accept, "accept"), the pursuance whose event
// it is and the link.
func LinkPeerAD(side string, pursuance, link event.ID) []byte {
	ad := append([]byte("pursuance/v1/link-peer/"+side+"\x00"), pursuance[:]...)
	return append(ad, link[:]...)
}

// LinkKeyAD is what a link's secret wrapped under a group key is bound to:
// the pursuance and the link.
func LinkKeyAD(pursuance, link event.ID) []byte {
	return append(append([]byte(nil), pursuance[:]...), link[:]...)
}

// linkOf returns the link an op names, zero for ops that name none.
func linkOf(op Op) event.ID {
	switch o := op.(type) {
	case *LinkOffer:
		return o.Link
	case *LinkAccept:
		return o.Link
	case *LinkEnd:
		return o.Link
	case *Handoff:
		return o.Link
	case *LinkReceive:
		return o.Link
	case *LinkReport:
		return o.Link
	}
	return event.ID{}
}

// usesLink reports whether an op is sent, received or reported over a
// link: what a link-end closes.
func usesLink(op Op) bool {
	switch op.(type) {
	case *Handoff, *LinkReceive, *LinkReport:
		return true
	}
	return false
}

// checkLinkOp checks a link op's shape.
func checkLinkOp(op Op) error {
	checkKey := func(update event.ID, key []byte) error {
		if (len(key) == 0) != update.IsZero() {
			return errors.New("a wrapped link key and the key update it is wrapped under go together")
		}
		if len(key) != 0 && len(key) != keys.LinkWrapSize {
			return fmt.Errorf("wrapped link key of %d bytes", len(key))
		}
		return nil
	}
	switch o := op.(type) {
	case *LinkOffer:
		if len(o.Roles) == 0 || len(o.Roles) > MaxRoles {
			return fmt.Errorf("%d roles (1 to %d)", len(o.Roles), MaxRoles)
		}
		for i, r := range o.Roles {
			if r == "" || len(r) > 32 {
				return fmt.Errorf("bad role name %q", r)
			}
			if i > 0 && o.Roles[i-1] >= r {
				return errors.New("roles not sorted, or repeated")
			}
		}
		if len(o.Peer) != LinkPeerSize {
			return fmt.Errorf("sealed peer of %d bytes", len(o.Peer))
		}
		return checkKey(o.Update, o.Key)
	case *LinkAccept:
		if o.Role == "" || len(o.Role) > 32 {
			return fmt.Errorf("bad role name %q", o.Role)
		}
		if len(o.Peer) != LinkPeerSize {
			return fmt.Errorf("sealed peer of %d bytes", len(o.Peer))
		}
		return checkKey(o.Update, o.Key)
	case *Handoff:
		if len(o.Content) == 0 {
			return errors.New("no content")
		}
	case *LinkReceive:
		if len(o.Handoff) == 0 || len(o.Handoff) > MaxEmbedded {
			return fmt.Errorf("an embedded hand-off of %d bytes (1 to %d)", len(o.Handoff), MaxEmbedded)
		}
	case *LinkReport:
		if len(o.Content) == 0 {
			return errors.New("no content")
		}
	}
	return nil
}

// linkState is a link of this pursuance: offered here (offer) or
// accepted here.
type linkState struct {
	id      event.ID // the link's ID
	by      event.ID // the event that made it here (or, carried, the proposal)
	offer   bool
	roles   []string // offer: the roles that send
	role    string   // accept: the role tasks arrive for
	peer    []byte   // the sealed peer
	ended   bool
	endedBy event.ID
}

// embedded is a receive's hand-off, decoded and checked once per event
// (it depends only on the receive's bytes).
type embedded struct {
	ev  *event.Event
	op  *Handoff
	err error
}

// embeddedOf decodes and checks the hand-off a receive embeds: a whole
// event whose signature and body verify, a hand-off over the link the
// receive names.
func (b *builder) embeddedOf(n *node, r *LinkReceive) embedded {
	id := n.e.ID()
	b.cmu.Lock()
	x, ok := b.embeds[id]
	b.cmu.Unlock()
	if ok {
		return x
	}
	x = decodeEmbedded(r)
	b.cmu.Lock()
	if b.embeds == nil {
		b.embeds = make(map[event.ID]embedded)
	}
	b.embeds[id] = x
	b.cmu.Unlock()
	return x
}

func decodeEmbedded(r *LinkReceive) embedded {
	bad := func(format string, args ...any) embedded {
		return embedded{err: fmt.Errorf("the hand-off received is not valid: "+format, args...)}
	}
	ev, err := event.Decode(r.Handoff)
	if err != nil {
		return bad("%v", err)
	}
	if !ev.HasBody() {
		return bad("its content is missing")
	}
	if err := ev.StaticValidate(); err != nil { // the body against its hash too
		return bad("%v", err)
	}
	if err := ev.VerifySignature(); err != nil {
		return bad("%v", err)
	}
	if ev.Kind != event.KindHandoff {
		return bad("it is a %s event", ev.Kind)
	}
	op, err := DecodeOp(ev.Kind, ev.Body())
	if err != nil {
		return bad("%v", err)
	}
	h := op.(*Handoff)
	if h.Link != r.Link {
		return bad("it was sent over link %s, not %s", h.Link.Short(), r.Link.Short())
	}
	return embedded{ev: ev, op: h}
}

// permittedLink checks a link op by author, with roles, against the view.
// It is called from permitted, after membership and the quorum gate.
func (b *builder) permittedLink(v view, n *node, op Op, author identity.PublicKey, roles []string) error {
	a := v.auth
	c := a.charter
	switch op := op.(type) {
	case *LinkOffer:
		for _, r := range op.Roles {
			if c.Rank(r) < 0 {
				return fmt.Errorf("no role %q in the charter", r)
			}
		}
		if err := checkLinkNew(a, op.Link, op.Update); err != nil {
			return err
		}
		return c.Allows(roles, charter.LinkPursuances, nil, nil)
	case *LinkAccept:
		if c.Rank(op.Role) < 0 {
			return fmt.Errorf("no role %q in the charter", op.Role)
		}
		if err := checkLinkNew(a, op.Link, op.Update); err != nil {
			return err
		}
		return c.Allows(roles, charter.LinkPursuances, nil, nil)
	case *LinkEnd:
		l, ok := a.links[op.Link]
		switch {
		case !ok:
			return fmt.Errorf("no link %s", op.Link.Short())
		case l.ended:
			return fmt.Errorf("link %s was ended already (by %s)", op.Link.Short(), l.endedBy.Short())
		}
		return c.Allows(roles, charter.LinkPursuances, nil, nil)
	case *Handoff:
		l, err := openLink(a, op.Link, true)
		if err != nil {
			return err
		}
		for _, r := range l.roles {
			if slices.Contains(roles, r) {
				n.w().sendRole = r
				return nil
			}
		}
		return fmt.Errorf("not permitted: %s holds none of the roles link %s sends from (%s)", b.name(a, author), op.Link.Short(), strings.Join(l.roles, ", "))
	case *LinkReceive:
		l, err := openLink(a, op.Link, false)
		if err != nil {
			return err
		}
		x := b.embeddedOf(n, op)
		if x.err != nil {
			return x.err
		}
		if x.ev.PursuanceID() == b.pursuance {
			return errors.New("the hand-off received is one of this pursuance's own events")
		}
		if v.task(x.ev.ID()) != nil {
			return fmt.Errorf("hand-off %s was received already", x.ev.ID().Short())
		}
		n.w().vis = []string{l.role}
		return nil
	case *LinkReport:
		l, err := openLink(a, op.Link, false)
		if err != nil {
			return err
		}
		t := v.task(op.Handoff)
		if t == nil || t.Origin == nil || t.Origin.Link != op.Link {
			return fmt.Errorf("no hand-off %s received over link %s", op.Handoff.Short(), op.Link.Short())
		}
		// The task's assignees are not looked at: the other side, which
		// checks reports too, does not read them.
		if !c.CanSee(roles, charter.TaskFacts{VisibleTo: t.VisibleTo}) {
			return fmt.Errorf("not permitted: %s may not report on tasks for %q", rolesText(roles), l.role)
		}
		return nil
	}
	return fmt.Errorf("%s is not a link op", op.Kind())
}

func rolesText(roles []string) string {
	switch len(roles) {
	case 0:
		return "a member with no role"
	case 1:
		return fmt.Sprintf("role %q", roles[0])
	}
	q := make([]string, len(roles))
	for i, r := range roles {
		q[i] = fmt.Sprintf("%q", r)
	}
	return "roles " + strings.Join(q, ", ")
}

// checkLinkNew checks a new link's ID and the generation its key is
// wrapped under.
func checkLinkNew(a *authState, link, update event.ID) error {
	if _, ok := a.links[link]; ok {
		return fmt.Errorf("link %s is already a link of this pursuance", link.Short())
	}
	if !update.IsZero() {
		if kg, ok := a.generation(update); !ok || kg.Role != "" {
			return fmt.Errorf("the link key is wrapped under %s, which is no group key generation", update.Short())
		}
	}
	return nil
}

// openLink returns a link of this pursuance that is open: offered here
// (offer) or accepted here (!offer), and not ended.
func openLink(a *authState, id event.ID, offer bool) (*linkState, error) {
	l, ok := a.links[id]
	switch {
	case !ok || l.offer != offer:
		if offer {
			return nil, fmt.Errorf("link %s is not a link this pursuance sends over", id.Short())
		}
		return nil, fmt.Errorf("link %s is not a link this pursuance receives over", id.Short())
	case l.ended:
		return nil, fmt.Errorf("link %s was ended (by %s)", id.Short(), l.endedBy.Short())
	}
	return l, nil
}

// applyLink records an accepted (or carried) link op in a; id names its
// effect: the event, or the proposal that carried it.
func applyLink(a *authState, id event.ID, op Op) {
	switch op := op.(type) {
	case *LinkOffer:
		a.links[op.Link] = &linkState{id: op.Link, by: id, offer: true, roles: op.Roles, peer: op.Peer}
	case *LinkAccept:
		a.links[op.Link] = &linkState{id: op.Link, by: id, role: op.Role, peer: op.Peer}
	case *LinkEnd:
		if l := a.links[op.Link]; l != nil && !l.ended {
			l.ended, l.endedBy = true, id
		}
	}
}

// TaskOrigin is where a received task came from.
type TaskOrigin struct {
	Pursuance event.ID           // the sending pursuance
	Link      event.ID           // the link it came over
	Handoff   event.ID           // the hand-off event (the task's ID)
	Sender    identity.PublicKey // the hand-off's author
	Receive   event.ID           // the receive that made the task here
}

// newReceivedTask makes the task a receive founds: visible to vis, its
// text opened from the hand-off with the link's secret, or a placeholder
// (Sealed) when this member does not hold it.
func (b *builder) newReceivedTask(n *node, x embedded, vis []string) *Task {
	e := &n.e
	t := &Task{ID: x.ev.ID(), Creator: *n.member, VisibleTo: slices.Compact(slices.Sorted(slices.Values(vis))),
		Created: e.Time, Updated: e.Time,
		Origin: &TaskOrigin{Pursuance: x.ev.PursuanceID(), Link: x.op.Link, Handoff: x.ev.ID(), Sender: x.ev.Author, Receive: e.ID()}}
	if c, ok := b.handoffContent(x.ev, x.op); ok {
		t.Title, t.Body, t.Due = c.Title, c.Body, c.Due
		for i, raw := range c.Files {
			op, err := DecodeOp(event.KindTaskAttach, raw)
			if err != nil {
				continue // a manifest that does not decode: that file is not shown
			}
			a := op.(*TaskAttach)
			a.Task = t.ID
			t.Files = append(t.Files, File{ID: HandoffFileID(x.ev.ID(), i), Author: x.ev.Author, Time: x.ev.Time, TaskAttach: *a})
		}
	} else {
		t.Sealed = true
	}
	return t
}

// handoffContent opens a hand-off's content with the link's secret, if
// this member holds it; once per hand-off.
func (b *builder) handoffContent(e *event.Event, h *Handoff) (HandoffContent, bool) {
	id := e.ID()
	b.cmu.Lock()
	c, ok := b.contents[id]
	b.cmu.Unlock()
	if ok {
		return c.c, c.ok
	}
	var r struct {
		c  HandoffContent
		ok bool
	}
	if s, held := b.linkKeys[h.Link]; held {
		r.c, r.ok = OpenHandoff(s, e, h)
	}
	b.cmu.Lock()
	if b.contents == nil {
		b.contents = make(map[event.ID]struct {
			c  HandoffContent
			ok bool
		})
	}
	b.contents[id] = r
	b.cmu.Unlock()
	return r.c, r.ok
}

// SealHandoff seals a hand-off's content under the link's secret, for the
// event of pursuance p by author at seq that will carry it.
func SealHandoff(s keys.LinkSecret, p event.ID, author identity.PublicKey, seq uint64, c HandoffContent, rand io.Reader) (*Handoff, error) {
	if err := checkTitle(c.Title); err != nil {
		return nil, err
	}
	if err := checkText("body", c.Body); err != nil {
		return nil, err
	}
	if c.Due != "" {
		if err := CheckDue(c.Due); err != nil {
			return nil, err
		}
	}
	pt, err := encMode.Marshal(c)
	if err != nil {
		return nil, err
	}
	box, err := s.SealLink(SealedAD(p, author, seq), pt, rand)
	if err != nil {
		return nil, err
	}
	return &Handoff{Link: s.ID(), Content: box}, nil
}

// OpenHandoff opens the content of the hand-off h, the body of e.
func OpenHandoff(s keys.LinkSecret, e *event.Event, h *Handoff) (HandoffContent, bool) {
	return openHandoff(s, SealedAD(e.PursuanceID(), e.Author, e.Seq), h)
}

// openHandoff opens the content of the hand-off h, sealed for ad.
func openHandoff(s keys.LinkSecret, ad []byte, h *Handoff) (HandoffContent, bool) {
	pt, err := s.OpenLink(ad, h.Content)
	if err != nil {
		return HandoffContent{}, false
	}
	var c HandoffContent
	if decodeCanonical(pt, &c) != nil || checkTitle(c.Title) != nil || checkText("body", c.Body) != nil || c.Due != "" && CheckDue(c.Due) != nil {
		return HandoffContent{}, false
	}
	return c, true
}

// SealReport seals a report's content under the link's secret, for the
// event of pursuance p by author at seq that will carry it.
func SealReport(s keys.LinkSecret, p event.ID, author identity.PublicKey, seq uint64, handoff event.ID, c ReportContent, rand io.Reader) (*LinkReport, error) {
	if c.Status == nil && c.Comment == "" {
		return nil, errors.New("a report says a status, a comment or both")
	}
	if c.Status != nil && !c.Status.Valid() {
		return nil, fmt.Errorf("unknown status %d", *c.Status)
	}
	if err := checkText("comment", c.Comment); err != nil {
		return nil, err
	}
	pt, err := encMode.Marshal(c)
	if err != nil {
		return nil, err
	}
	box, err := s.SealLink(SealedAD(p, author, seq), pt, rand)
	if err != nil {
		return nil, err
	}
	return &LinkReport{Link: s.ID(), Handoff: handoff, Content: box}, nil
}

// OpenReport opens the content of the report r, the body of e.
func OpenReport(s keys.LinkSecret, e *event.Event, r *LinkReport) (ReportContent, bool) {
	return openReport(s, SealedAD(e.PursuanceID(), e.Author, e.Seq), r)
}

// openReport opens the content of the report r, sealed for ad.
func openReport(s keys.LinkSecret, ad []byte, r *LinkReport) (ReportContent, bool) {
	pt, err := s.OpenLink(ad, r.Content)
	if err != nil {
		return ReportContent{}, false
	}
	var c ReportContent
	if decodeCanonical(pt, &c) != nil || c.Status != nil && !c.Status.Valid() || checkText("comment", c.Comment) != nil {
		return ReportContent{}, false
	}
	return c, true
}

// decodeCanonical decodes strict, canonical CBOR into v.
func decodeCanonical(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return err
	}
	again, err := encMode.Marshal(v)
	if err != nil || !bytes.Equal(again, b) {
		return errors.New("not in canonical form")
	}
	return nil
}

// SealPeer seals the peer's pursuance ID for a link event of pursuance p
// on side "offer" or "accept".
func SealPeer(s keys.LinkSecret, side string, p, peer event.ID, rand io.Reader) ([]byte, error) {
	return s.SealLink(LinkPeerAD(side, p, s.ID()), peer[:], rand)
}

// openPeer opens a link's sealed peer.
func openPeer(s keys.LinkSecret, side string, p event.ID, sealed []byte) (event.ID, bool) {
	pt, err := s.OpenLink(LinkPeerAD(side, p, s.ID()), sealed)
	if err != nil || len(pt) != event.IDSize {
		return event.ID{}, false
	}
	return event.ID(pt), true
}

// openLinkKeys works out the secrets of this pursuance's links that the
// member holds: those given in Secrets.Links, and those wrapped, in a link
// or link-accept event (or a proposal of one), under a group key
// generation it holds.
func (b *builder) openLinkKeys(sec *Secrets) map[event.ID]keys.LinkSecret {
	out := map[event.ID]keys.LinkSecret{}
	for _, s := range sec.Links {
		out[s.ID()] = s
	}
	for _, n := range b.nodes {
		op := n.op
		if pr, ok := op.(*Proposal); ok {
			inner, err := b.innerOf(n.e.ID(), pr)
			if err != nil {
				continue
			}
			op = inner
		}
		var link, update event.ID
		var key []byte
		switch o := op.(type) {
		case *LinkOffer:
			link, update, key = o.Link, o.Update, o.Key
		case *LinkAccept:
			link, update, key = o.Link, o.Update, o.Key
		default:
			continue
		}
		if _, ok := out[link]; ok || update.IsZero() {
			continue
		}
		h, ok := b.held[update]
		if !ok {
			continue
		}
		s, err := keys.UnwrapLinkSecret(&h.Key, LinkKeyAD(b.pursuance, link), key)
		if err == nil && s.ID() == link {
			out[link] = s
		}
	}
	return out
}

// LinkInfo is a link of this pursuance as the log has settled it.
type LinkInfo struct {
	ID    event.ID
	By    event.ID // the event that made it (or the proposal that carried it)
	Offer bool     // offered by this pursuance (it sends); else accepted (it receives)
	Roles []string // offer: the roles whose holders send
	Role  string   // accept: the role tasks arrive for
	Ended bool
	// EndedBy names the event that ended it on this side.
	EndedBy event.ID
	// Peer is the other pursuance, when this member holds the link's
	// secret (HasSecret); zero otherwise.
	Peer      event.ID
	HasSecret bool
}

// Links returns the links of this pursuance, offered and accepted, by the
// order of the events that made them.
func (s *State) Links() []LinkInfo {
	var out []LinkInfo
	for _, l := range s.b().auth.links {
		li := LinkInfo{ID: l.id, By: l.by, Offer: l.offer, Roles: slices.Clone(l.roles), Role: l.role, Ended: l.ended, EndedBy: l.endedBy}
		if sec, ok := s.b().linkKeys[l.id]; ok {
			li.HasSecret = true
			side := "accept"
			if l.offer {
				side = "offer"
			}
			li.Peer, _ = openPeer(sec, side, s.b().pursuance, l.peer)
		}
		out = append(out, li)
	}
	slices.SortFunc(out, func(x, y LinkInfo) int { return cmp.Compare(s.b().at(x.By), s.b().at(y.By)) })
	return out
}

// Link returns one link of this pursuance.
func (s *State) Link(id event.ID) (LinkInfo, bool) {
	for _, l := range s.Links() {
		if l.ID == id {
			return l, true
		}
	}
	return LinkInfo{}, false
}

// LinkSecret returns the secret of one of this pursuance's links, if this
// member holds it (State built with Builder.SetSecrets).
func (s *State) LinkSecret(id event.ID) (keys.LinkSecret, bool) {
	k, ok := s.b().linkKeys[id]
	return k, ok
}

// HandoffInfo is a hand-off of this pursuance.
type HandoffInfo struct {
	ID       event.ID
	Link     event.ID
	Sender   identity.PublicKey
	Role     string // the offer role the sender held at its parents
	Accepted bool
	Reason   string
	// Content is the hand-off's content, when this member holds the
	// link's secret (Opened).
	Content HandoffContent
	Opened  bool
}

// Handoffs returns the hand-offs of this pursuance, accepted or not, in
// log order.
func (s *State) Handoffs() []HandoffInfo {
	var out []HandoffInfo
	for _, n := range s.b().nodes {
		h, ok := n.op.(*Handoff)
		if !ok {
			continue
		}
		hi := HandoffInfo{ID: n.e.ID(), Link: h.Link, Sender: *n.e.Author, Role: n.sendRole, Accepted: n.accepted, Reason: n.reason}
		// Opened here, not through the builder's cache: a State is read
		// concurrently, and reading must not write.
		if sec, ok := s.b().linkKeys[h.Link]; ok {
			hi.Content, hi.Opened = openHandoff(sec, SealedAD(s.b().pursuance, *n.e.Author, n.e.Seq), h)
		}
		out = append(out, hi)
	}
	return out
}

// ReportInfo is a report of this pursuance on a received task.
type ReportInfo struct {
	ID       event.ID
	Link     event.ID
	Handoff  event.ID
	Author   identity.PublicKey
	Name     string
	Time     uint64 // claimed, display only
	Accepted bool
	Reason   string
	Content  ReportContent
	Opened   bool // Content was opened with the link's secret
}

// Reports returns the reports on the hand-off handoff in this pursuance's
// log, accepted or not, in log order, their content opened with secret.
// The other side of the link calls it on its fold of this pursuance.
func (s *State) Reports(secret keys.LinkSecret, handoff event.ID) []ReportInfo {
	var out []ReportInfo
	for _, n := range s.b().nodes {
		r, ok := n.op.(*LinkReport)
		if !ok || r.Handoff != handoff || r.Link != secret.ID() {
			continue
		}
		ri := ReportInfo{ID: n.e.ID(), Link: r.Link, Handoff: r.Handoff, Author: *n.e.Author, Name: s.NameOf(*n.e.Author), Time: n.e.Time, Accepted: n.accepted, Reason: n.reason}
		ri.Content, ri.Opened = openReport(secret, SealedAD(s.b().pursuance, *n.e.Author, n.e.Seq), r)
		out = append(out, ri)
	}
	return out
}

// Receipts returns the accepted receives of hand-off handoff in this
// pursuance's log, in log order: who received it here, and when.
func (s *State) Receipts(handoff event.ID) []Entry {
	var out []Entry
	for _, n := range s.b().nodes {
		if _, ok := n.op.(*LinkReceive); ok && n.accepted {
			// Every accepted receive was decided, so its hand-off is in
			// the cache: reading it writes nothing.
			s.b().cmu.Lock()
			x, ok := s.b().embeds[n.e.ID()]
			s.b().cmu.Unlock()
			if ok && x.err == nil && x.ev.ID() == handoff {
				out = append(out, s.entry(n))
			}
		}
	}
	return out
}

// Withheld returns the number of events of kinds whose content the other
// side of a link always sends (authority and link events) that this log
// holds without their body: while there are any, a verdict that might
// depend on them is pending.
func (s *State) Withheld() int {
	k := 0
	for _, n := range s.b().nodes {
		if !n.body && CarriedOverLinks(n.e.Kind) {
			k++
		}
	}
	return k
}

// CarriedOverLinks reports whether events of kind k travel with their
// bodies on a link's channel: authority and link events, never task
// events (docs/links.md §4).
func CarriedOverLinks(k event.Kind) bool {
	row := kindOf(k)
	return row.authority || row.link
}

// Verdicts of a hand-off's origin, or of a report, as the receiving side
// shows them.
const (
	Verified = "verified"
	Pending  = "pending"
	Invalid  = "invalid"
)

// OriginVerdict is what a member concludes of a hand-off's origin.
type OriginVerdict struct {
	Pursuance  event.ID
	Name       string // the sending pursuance's name, as its charter has it ("" before its history)
	Role       string // the role the sender held (verified only)
	Sender     identity.PublicKey
	SenderName string
	Verdict    string // Verified, Pending or Invalid
	Reason     string
}

// VerifyHandoff is the verdict on the origin of hand-off h, sent by
// pursuance from to pursuance to over the link whose secret is secret: did
// its sender hold a role the link sends from, when it sent it, by the
// sending pursuance's own rules (docs/links.md §6)? a is the member's fold
// of the sending pursuance (nil when it holds nothing of it): its verdict
// on h, once it holds h's causal past and the content of every authority
// and link event, is A's. The sending side calls it on its own state, with
// the peer its offer names, and reaches the same verdict from the same
// events.
func VerifyHandoff(a *State, h *event.Event, from, to event.ID, secret keys.LinkSecret) OriginVerdict {
	ov := OriginVerdict{Pursuance: h.PursuanceID(), Sender: h.Author, Verdict: Invalid}
	var op Op
	err := errors.New("no body")
	if h.HasBody() {
		op, err = DecodeOp(h.Kind, h.Body())
	}
	hop, ok := op.(*Handoff)
	switch {
	case err != nil || !ok || hop.Link != secret.ID():
		ov.Reason = "not a hand-off over this link"
		return ov
	case h.PursuanceID() != from:
		ov.Reason = "the hand-off is not from the pursuance this link joins"
		return ov
	}
	pending := func(why string) OriginVerdict {
		ov.Verdict, ov.Reason = Pending, "waiting for the sending pursuance's history: "+why
		return ov
	}
	if a == nil || a.Pursuance() != h.PursuanceID() {
		return pending("none of it has arrived")
	}
	ov.Name, ov.SenderName = a.Name(), a.NameOf(h.Author)
	var accepted bool
	var reason, role string
	if p, ok := a.b().posOf(h.ID()); ok {
		n := a.b().nodes[p]
		accepted, reason, role = n.accepted, n.reason, n.sendRole
	} else if a.last(h) {
		// Not folded yet, but its causal past is, and it sorts after
		// every event of the fold: deciding it alone against the fold
		// (State.Check) is what folding it would give.
		var err error
		role, err = a.check(h)
		accepted = err == nil
		if err != nil {
			reason = err.Error()
		}
	} else {
		return pending("the hand-off's causal past has not all arrived")
	}
	if k := a.Withheld(); k > 0 {
		return pending(fmt.Sprintf("%d of its events came without their content", k))
	}
	if !accepted {
		ov.Reason = reason
		return ov
	}
	l := a.b().auth.links[hop.Link]
	peer, ok := event.ID{}, false
	if l != nil {
		peer, ok = openPeer(secret, "offer", a.b().pursuance, l.peer)
	}
	if !ok || peer != to {
		ov.Reason = fmt.Sprintf("link %s of %s was offered to another pursuance, not this one", hop.Link.Short(), a.Name())
		return ov
	}
	ov.Verdict, ov.Role = Verified, role
	return ov
}

// last reports whether e, not in the fold, has every event it links to
// in it and sorts after all of its events: the fold with e added would
// decide e last, and change nothing before it.
func (s *State) last(e *event.Event) bool {
	b := s.b()
	links := slices.Clone(e.Parents)
	if !e.Backlink.IsZero() {
		links = append(links, e.Backlink)
	}
	for _, l := range links {
		if _, ok := b.posOf(l); !ok {
			return false
		}
	}
	end := b.nodes[len(b.nodes)-1].e
	return e.Lamport > end.Lamport || e.Lamport == end.Lamport && e.ID().Compare(end.ID()) > 0
}

// VerifyReport is the verdict on report id as the sending side of the link
// shows it: b is its fold of the reporting pursuance. Accepted by b's
// rules: verified; rejected: invalid; while b holds authority or link
// events without their content: pending.
func VerifyReport(b *State, id event.ID) (verdict, reason string) {
	p, ok := b.b().posOf(id)
	if !ok {
		return Pending, "waiting for the reporting pursuance's history"
	}
	if k := b.Withheld(); k > 0 {
		return Pending, fmt.Sprintf("waiting for the reporting pursuance's history: %d of its events came without their content", k)
	}
	if n := b.b().nodes[p]; !n.accepted {
		return Invalid, n.reason
	}
	return Verified, ""
}

// RemovedUnseen reports whether an event of author whose causal past is
// that of links (events of this log) is one that an accepted removal of
// its author did not precede: an action concurrent with its author's
// removal, which every replica must hold to mark it invalidated. It is
// false when some link is not in this log, or the author was never
// removed.
func (s *State) RemovedUnseen(author identity.PublicKey, links []event.ID) bool {
	b := s.b()
	for _, l := range links {
		if _, ok := b.posOf(l); !ok {
			return false
		}
	}
	for _, r := range b.restrictBy[author] {
		rn := b.nodes[r]
		if rn.restrict != nil && rn.restrict.role == "" && !b.saw(links, rn) {
			return true
		}
	}
	return false
}

// saw reports whether x is in the causal past of the events links.
func (b *builder) saw(links []event.ID, x *node) bool {
	for _, l := range links {
		if p, ok := b.posOf(l); ok && b.inPast(x, b.nodes[p]) {
			return true
		}
	}
	return false
}
