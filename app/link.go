package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// Links between pursuances (docs/links.md): one app-level function per
// action, as the CLI and the web UI use them — LinkCreate, LinkAccept,
// LinkEnd, Links, Handoff, Report — and the views TaskOrigin and
// TaskHandoffs. The link channel's sync is in linksync.go.

// LinkCode is what the pursuance that offers a link hands to the one it
// links to: the offering pursuance, the link's secret, and where its log
// is. Whoever holds it reads the link's channel, so it travels like an
// invite code.
type LinkCode struct {
	Pursuance event.ID
	Secret    keys.LinkSecret
	Relays    []string
}

const (
	linkCodePrefix        = "pl1"
	linkCodeChecksumLabel = "pursuance/v1/link-code-checksum"
	linkCodeSize          = event.IDSize + keys.LinkSecretSize + inviteChecksumSize // without relays
)

// ErrBadLinkCode is wrapped by ParseLinkCode's errors.
var ErrBadLinkCode = errors.New("not a valid link code")

// String returns the code's text form: "pl1" and the base32 of the
// pursuance ID, the link's secret, the relays (a uvarint count, then each
// a uvarint length and the URL) and a 3-byte checksum.
func (c LinkCode) String() string {
	raw := append(append([]byte(nil), c.Pursuance[:]...), c.Secret[:]...)
	raw = binary.AppendUvarint(raw, uint64(len(c.Relays)))
	for _, r := range c.Relays {
		raw = binary.AppendUvarint(raw, uint64(len(r)))
		raw = append(raw, r...)
	}
	raw = append(raw, linkCodeChecksum(raw)...)
	return linkCodePrefix + inviteEncoding.EncodeToString(raw)
}

func linkCodeChecksum(b []byte) []byte {
	h := sha256.New()
	h.Write([]byte(linkCodeChecksumLabel))
	h.Write(b)
	return h.Sum(nil)[:inviteChecksumSize]
}

// ParseLinkCode parses a link code; white space is dropped and case
// folded, as for invite codes.
func ParseLinkCode(s string) (LinkCode, error) {
	s = strings.ToLower(strings.Join(strings.Fields(s), ""))
	body, ok := strings.CutPrefix(s, linkCodePrefix)
	if !ok {
		return LinkCode{}, fmt.Errorf("%w: it does not start with %q", ErrBadLinkCode, linkCodePrefix)
	}
	raw, err := inviteEncoding.DecodeString(body)
	if err != nil || len(raw) < linkCodeSize+1 || inviteEncoding.EncodeToString(raw) != body {
		return LinkCode{}, fmt.Errorf("%w: wrong length or characters", ErrBadLinkCode)
	}
	n := len(raw) - inviteChecksumSize
	if !bytes.Equal(linkCodeChecksum(raw[:n]), raw[n:]) {
		return LinkCode{}, fmt.Errorf("%w: checksum mismatch (a typo?)", ErrBadLinkCode)
	}
	var c LinkCode
	copy(c.Pursuance[:], raw[:32])
	copy(c.Secret[:], raw[32:64])
	tail := raw[64:n]
	count, k := binary.Uvarint(tail)
	if k <= 0 || count > state.MaxRelays {
		return LinkCode{}, fmt.Errorf("%w: bad relay list", ErrBadLinkCode)
	}
	tail = tail[k:]
	for range count {
		size, k := binary.Uvarint(tail)
		if k <= 0 || size > uint64(len(tail)-k) {
			return LinkCode{}, fmt.Errorf("%w: bad relay list", ErrBadLinkCode)
		}
		r := string(tail[k : k+int(size)])
		if err := state.CheckRelayURL(r); err != nil {
			return LinkCode{}, fmt.Errorf("%w: %v", ErrBadLinkCode, err)
		}
		c.Relays = append(c.Relays, r)
		tail = tail[k+int(size):]
	}
	if len(tail) != 0 {
		return LinkCode{}, fmt.Errorf("%w: bytes after the relay list", ErrBadLinkCode)
	}
	return c, nil
}

// wrapLinkSecret wraps a link's secret under the current group key
// generation this member holds in s, for the link event that keeps it.
func (n *Node) wrapLinkSecret(s *state.State, secret keys.LinkSecret) (event.ID, []byte, error) {
	cur, ok := s.CurrentKey("")
	if !ok {
		return event.ID{}, nil, nil
	}
	h, ok := s.Held()[cur.Update]
	if !ok {
		return event.ID{}, nil, fmt.Errorf("you do not hold the current group key of %s yet: sync first", s.Name())
	}
	k, err := keys.WrapLinkSecret(&h.Key, secret, state.LinkKeyAD(s.Pursuance(), secret.ID()), n.rand())
	return cur.Update, k, err
}

// LinkCreate offers a link from pursuance p to pursuance peer: holders of
// roles may send it tasks (docs/links.md). It returns the code to hand to
// a member of peer who may link it (`pursuance link accept`). Under a
// charter that puts link-pursuances under a quorum, the link is proposed
// (Result.Proposed) and works once carried; the code can be handed out at
// once.
func (n *Node) LinkCreate(ctx context.Context, p, peer event.ID, roles []string, opts DoOptions) (LinkCode, Result, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return LinkCode{}, Result{}, err
	}
	if peer == p {
		return LinkCode{}, Result{}, errors.New("a pursuance does not link with itself")
	}
	if len(roles) == 0 {
		return LinkCode{}, Result{}, errors.New("name the roles whose holders may send tasks (--send-role)")
	}
	for _, r := range roles {
		if s.Charter().Rank(r) < 0 {
			return LinkCode{}, Result{}, fmt.Errorf("no role %q in the charter of %s (roles: %s)", r, s.Name(), strings.Join(s.Charter().RoleNames(), ", "))
		}
	}
	secret, err := keys.NewLinkSecret(n.rand())
	if err != nil {
		return LinkCode{}, Result{}, err
	}
	op := &state.LinkOffer{Link: secret.ID(), Roles: slices.Compact(slices.Sorted(slices.Values(roles)))}
	if op.Peer, err = state.SealPeer(secret, "offer", p, peer, n.rand()); err != nil {
		return LinkCode{}, Result{}, err
	}
	if op.Update, op.Key, err = n.wrapLinkSecret(s, secret); err != nil {
		return LinkCode{}, Result{}, err
	}
	res, err := n.Act(ctx, p, op, opts)
	if err != nil {
		return LinkCode{}, Result{}, err
	}
	relays, err := n.RelayURLs(ctx, p)
	if err != nil {
		return LinkCode{}, Result{}, err
	}
	if len(relays) == 0 && n.opts.NodeRelay != "" {
		relays = []string{n.opts.NodeRelay}
	}
	return LinkCode{Pursuance: p, Secret: secret, Relays: relays}, res, nil
}

// LinkAccept accepts, for pursuance p, the link a code offers: tasks sent
// over it arrive for role. The code's relays are kept (with the link's
// secret) until the sending pursuance's own history names its relays.
func (n *Node) LinkAccept(ctx context.Context, p event.ID, code LinkCode, role string, opts DoOptions) (event.ID, Result, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return event.ID{}, Result{}, err
	}
	if code.Pursuance == p {
		return event.ID{}, Result{}, errors.New("this link was offered by this pursuance itself: hand the code to the pursuance it links to")
	}
	if s.Charter().Rank(role) < 0 {
		return event.ID{}, Result{}, fmt.Errorf("no role %q in the charter of %s (roles: %s)", role, s.Name(), strings.Join(s.Charter().RoleNames(), ", "))
	}
	id := code.Secret.ID()
	op := &state.LinkAccept{Link: id, Role: role}
	if op.Peer, err = state.SealPeer(code.Secret, "accept", p, code.Pursuance, n.rand()); err != nil {
		return event.ID{}, Result{}, err
	}
	if op.Update, op.Key, err = n.wrapLinkSecret(s, code.Secret); err != nil {
		return event.ID{}, Result{}, err
	}
	if err := n.addSecrets(id, state.InviteSecret{}, keys.Key{}, code.Relays); err != nil {
		return event.ID{}, Result{}, err
	}
	res, err := n.Act(ctx, p, op, opts)
	return id, res, err
}

// ResolveLink finds a link of s by full ID or unique prefix of it (at
// least MinPrefix hex digits).
func ResolveLink(s *state.State, ref string) (state.LinkInfo, error) {
	low := strings.ToLower(ref)
	var found []state.LinkInfo
	for _, l := range s.Links() {
		if l.ID.String() == low {
			return l, nil
		}
		if len(low) >= MinPrefix && strings.HasPrefix(l.ID.String(), low) {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 0:
		return state.LinkInfo{}, fmt.Errorf("no link %q in %s (`pursuance links %s` lists them)", ref, s.Name(), s.Name())
	case 1:
		return found[0], nil
	}
	return state.LinkInfo{}, fmt.Errorf("%w: link %q could be several", ErrAmbiguous, ref)
}

// LinkEnd ends a link of p, on p's side.
func (n *Node) LinkEnd(ctx context.Context, p event.ID, ref string, opts DoOptions) (Result, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return Result{}, err
	}
	l, err := ResolveLink(s, ref)
	if err != nil {
		return Result{}, err
	}
	return n.Act(ctx, p, &state.LinkEnd{Link: l.ID}, opts)
}

// LinkView is one link of a pursuance as `pursuance links` shows it.
type LinkView struct {
	Link      string   `json:"link"`
	Pursuance string   `json:"pursuance"` // the other pursuance ("" if this member does not hold the link's secret)
	Name      string   `json:"name"`      // its name, once its history has come
	Direction string   `json:"direction"` // "out": this pursuance sends; "in": it receives
	Roles     []string `json:"roles"`     // out: the roles that send; in: the role tasks arrive for
	// State is "open", "waiting" (the other side has not accepted, as far
	// as this member knows) or "ended" (by either side; EndedBy says which).
	State   string `json:"state"`
	EndedBy string `json:"ended_by,omitempty"` // "here" or "there"
}

// Links returns the links of pursuance p, with what this member knows of
// the other side.
func (n *Node) Links(ctx context.Context, p event.ID) ([]LinkView, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return nil, err
	}
	out := []LinkView{}
	for _, l := range s.Links() {
		v := LinkView{Link: l.ID.String(), Direction: "in", Roles: []string{l.Role}, State: "open"}
		if l.Offer {
			v.Direction, v.Roles = "out", l.Roles
		}
		other, err := n.peerLink(ctx, l)
		if err != nil {
			return nil, err
		}
		if l.HasSecret {
			v.Pursuance = l.Peer.String()
		}
		v.Name = other.name
		switch {
		case l.Ended:
			v.State, v.EndedBy = "ended", "here"
		case other.ended:
			v.State, v.EndedBy = "ended", "there"
		case !other.known && l.Offer:
			v.State = "waiting"
		}
		out = append(out, v)
	}
	return out, nil
}

// peerSide is what this member knows of a link's other side, from its
// fold of the other pursuance (linked.db).
type peerSide struct {
	state *state.State // nil while nothing of it has come
	name  string
	known bool // the other side's link event is in its fold
	ended bool
}

func (n *Node) peerLink(ctx context.Context, l state.LinkInfo) (peerSide, error) {
	var ps peerSide
	if !l.HasSecret {
		return ps, nil
	}
	s, err := n.LinkedState(ctx, l.Peer)
	if err != nil || s == nil {
		return ps, err
	}
	ps.state, ps.name = s, s.Name()
	if o, ok := s.Link(l.ID); ok && o.Offer != l.Offer {
		ps.known, ps.ended = true, o.Ended
	}
	return ps, nil
}

// handoffDraft is a hand-off to seal when signed, once its seq (bound
// into its content's associated data) is known; reportDraft likewise.
type handoffDraft struct {
	secret  keys.LinkSecret
	content state.HandoffContent
}

type reportDraft struct {
	secret  keys.LinkSecret
	handoff event.ID
	content state.ReportContent
}

func (handoffDraft) Kind() event.Kind { return event.KindHandoff }
func (reportDraft) Kind() event.Kind  { return event.KindLinkReport }

// sealDraft seals a hand-off or report draft for the event of p by this
// member at seq; other ops are returned as they are.
func (n *Node) sealDraft(p event.ID, op state.Op, seq uint64) (state.Op, error) {
	switch d := op.(type) {
	case handoffDraft:
		return state.SealHandoff(d.secret, p, n.id.ID(), seq, d.content, n.rand())
	case reportDraft:
		return state.SealReport(d.secret, p, n.id.ID(), seq, d.handoff, d.content, n.rand())
	}
	return op, nil
}

// HandoffResult names a hand-off and the task it sent.
type HandoffResult struct {
	Handoff string `json:"handoff"`
	Task    string `json:"task"`
}

// Handoff sends a task of pursuance p to pursuance to, over an open link
// p offered to it: its title, body and due date, sealed for the link's
// two sides. It is refused when p has no open link to it, when this
// member holds none of the link's roles, and when the other side ended
// the link (as far as this member knows).
func (n *Node) Handoff(ctx context.Context, p event.ID, taskRef string, to event.ID, opts DoOptions) (HandoffResult, Result, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return HandoffResult{}, Result{}, err
	}
	t, err := ResolveTask(s, n.me(), taskRef)
	if err != nil {
		return HandoffResult{}, Result{}, err
	}
	op, err := n.handoffOp(ctx, s, t, to, opts)
	if err != nil {
		return HandoffResult{}, Result{}, err
	}
	res, err := n.Do(ctx, p, op, opts)
	if err != nil {
		return HandoffResult{}, Result{}, err
	}
	return HandoffResult{Handoff: res.Event.ID().String(), Task: t.ID.String()}, res, nil
}

// handoffOp is the hand-off of task t of s to pursuance to that Handoff
// publishes, sealed when signed: the open link s offered to, the task's
// text and its files' manifests. Handoff and MayHandoff both use it.
func (n *Node) handoffOp(ctx context.Context, s *state.State, t *state.Task, to event.ID, opts DoOptions) (state.Op, error) {
	var link *state.LinkInfo
	ended := false
	for _, l := range s.Links() {
		if !l.Offer || !l.HasSecret || l.Peer != to {
			continue
		}
		if l.Ended {
			ended = true
			continue
		}
		link = &l
		break
	}
	if link == nil && !opts.Unchecked {
		if ended {
			return nil, &refused{fmt.Errorf("not permitted: the link from %s to %s was ended", s.Name(), to.Short())}
		}
		return nil, fmt.Errorf("%s has no link to %s: make one with `pursuance link create %s --to %s --send-role ROLE`", s.Name(), to.Short(), s.Name(), to)
	}
	if link == nil {
		return nil, fmt.Errorf("%s has no link to %s", s.Name(), to.Short())
	}
	if other, err := n.peerLink(ctx, *link); err != nil {
		return nil, err
	} else if other.ended && !opts.Unchecked {
		return nil, &refused{fmt.Errorf("not permitted: %s ended link %s", other.name, link.ID.Short())}
	}
	secret, _ := s.LinkSecret(link.ID)
	c := state.HandoffContent{Task: t.ID, Title: t.Title, Body: t.Body, Due: t.Due}
	// The task's files go by reference: their manifests, not their
	// blobs (docs/attachments.md, "Hand-off").
	size := 0
	for _, f := range t.Files {
		b, err := state.EncodeOp(&f.TaskAttach)
		if err != nil {
			return nil, err
		}
		if size += len(b); size > MaxHandoffFiles || len(c.Files) == MaxHandoffFileCount {
			return nil, fmt.Errorf("the task's files take more than one hand-off carries (%d files, %d KiB of manifests): hand off a task with fewer files, and attach the rest there", MaxHandoffFileCount, MaxHandoffFiles>>10)
		}
		c.Files = append(c.Files, b)
	}
	return handoffDraft{secret: secret, content: c}, nil
}

// MayHandoff is May for handing task t of s off to pursuance to: the
// rules' verdict on the hand-off Handoff would publish, or why there is
// none (no open link).
func (n *Node) MayHandoff(ctx context.Context, s *state.State, t *state.Task, to event.ID) Permission {
	op, err := n.handoffOp(ctx, s, t, to, DoOptions{})
	if err != nil {
		return Permission{Reason: err.Error()}
	}
	return n.May(ctx, s, op)
}

// The bounds on the files a hand-off carries by reference: the
// manifests' bytes (a hand-off is one event, at most event.MaxBodySize)
// and their count.
const (
	MaxHandoffFiles     = 256 << 10
	MaxHandoffFileCount = 64
)

// Report reports on task ref of pursuance p, received over a link, back to
// the pursuance that sent it: a status, a comment, or both. It is B's
// choice, per task and per report, what goes back (docs/links.md §9).
func (n *Node) Report(ctx context.Context, p event.ID, ref string, status *state.Status, comment string, opts DoOptions) (Result, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return Result{}, err
	}
	t, err := ResolveTask(s, n.me(), ref)
	if err != nil {
		return Result{}, err
	}
	if t.Origin == nil {
		return Result{}, fmt.Errorf("task %s was not received from another pursuance: there is no one to report to", t.ID.Short())
	}
	secret, ok := s.LinkSecret(t.Origin.Link)
	if !ok {
		return Result{}, fmt.Errorf("you do not hold the secret of link %s: sync first", t.Origin.Link.Short())
	}
	if status == nil && strings.TrimSpace(comment) == "" {
		return Result{}, errors.New("a report says a status (--status), a comment (--comment) or both")
	}
	return n.Do(ctx, p, reportDraft{secret: secret, handoff: t.ID, content: state.ReportContent{Status: status, Comment: comment}}, opts)
}

// receivedHandoff returns the hand-off a receive event of this home
// embeds.
func (n *Node) receivedHandoff(ctx context.Context, receive event.ID) (*event.Event, error) {
	e, err := n.st.Get(ctx, receive)
	if err != nil {
		return nil, err
	}
	op, err := state.DecodeOp(e.Kind, e.Body())
	if err != nil {
		return nil, err
	}
	r, ok := op.(*state.LinkReceive)
	if !ok {
		return nil, fmt.Errorf("event %s is not a receive", receive.Short())
	}
	return event.Decode(r.Handoff)
}

// HandoffView is a hand-off of a task, as the sending side sees it (`task
// show --json` → "handoffs"), with what came back.
type HandoffView struct {
	Handoff  string       `json:"handoff"`
	To       string       `json:"to"`
	Name     string       `json:"name"`
	Sender   string       `json:"sender"`
	Verdict  string       `json:"verdict"` // the origin verdict, as the other side reaches it from the same events
	Reason   string       `json:"reason"`
	Received bool         `json:"received"`
	Reports  []ReportView `json:"reports"`
}

// ReportView is one report back over a link, with the verdict on it by the
// reporting pursuance's rules.
type ReportView struct {
	Report  string `json:"report"`
	Author  string `json:"author"`
	Name    string `json:"name"`
	Status  string `json:"status,omitempty"`
	Comment string `json:"comment,omitempty"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
}

// TaskHandoffs returns the hand-offs of task t of s to other pursuances,
// each with whether it was received there and the reports that came back,
// as this member holds the other pursuance's log.
func (n *Node) TaskHandoffs(ctx context.Context, s *state.State, t *state.Task) ([]HandoffView, error) {
	var out []HandoffView
	for _, h := range s.Handoffs() {
		if !h.Opened || h.Content.Task != t.ID {
			continue
		}
		l, ok := s.Link(h.Link)
		secret, held := s.LinkSecret(h.Link)
		if !ok || !held {
			continue
		}
		e, err := n.st.Get(ctx, h.ID)
		if err != nil {
			return nil, err
		}
		ov := state.VerifyHandoff(s, e, s.Pursuance(), l.Peer, secret)
		v := HandoffView{Handoff: h.ID.String(), To: l.Peer.String(), Sender: h.Sender.String(), Verdict: ov.Verdict, Reason: ov.Reason, Reports: []ReportView{}}
		b, err := n.LinkedState(ctx, l.Peer)
		if err != nil {
			return nil, err
		}
		if b != nil {
			v.Name = b.Name()
			v.Received = len(b.Receipts(h.ID)) > 0
			for _, r := range b.Reports(secret, h.ID) {
				rv := ReportView{Report: r.ID.String(), Author: r.Author.String(), Name: r.Name}
				rv.Verdict, rv.Reason = state.VerifyReport(b, r.ID)
				if r.Opened {
					if r.Content.Status != nil {
						rv.Status = r.Content.Status.String()
					}
					rv.Comment = r.Content.Comment
				} else {
					rv.Comment = "(this report's content does not open)"
				}
				v.Reports = append(v.Reports, rv)
			}
		}
		out = append(out, v)
	}
	return out, nil
}
