package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/profile"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// Join requests ("knocks", docs/directory.md): Knock and Answers on the
// requester's side, Requests and RequestAnswer on the side of the
// pursuance's intake role. Each returns plain structs for the CLI and the
// web UI.

// Limits of join requests on this side.
const (
	// MaxKnocksKept bounds the requests a home keeps (the oldest answered
	// ones go first).
	MaxKnocksKept = 256
	// maxKnocksRead bounds the requests read from one profile's knock
	// topic on one relay in one call.
	maxKnocksRead = 1000
	// maxAnswersRead bounds the answers read for one request on one
	// relay (each holder of the intake role may answer).
	maxAnswersRead = 16
	// DefaultKnockInviteExpiry is how long an invite made for a request
	// works.
	DefaultKnockInviteExpiry = 14 * 24 * time.Hour
)

// Statuses of a request, as Answers and Requests say them.
const (
	StatusWaiting = "waiting"
	StatusInvited = "invited"
	StatusRefused = "refused"
)

// knockFile is where a home keeps its requests and the answers it gave,
// sealed to the member's own KEM key (as the secrets files are).
const (
	knockFile    = "knocks"
	knockPurpose = "home-knocks/v1"
)

// sentKnock is a request this home sent, and the answer once read.
type sentKnock struct {
	Request   event.ID           `json:"request"`
	Pursuance event.ID           `json:"pursuance"`
	Profile   identity.PublicKey `json:"profile"`
	Name      string             `json:"name"`
	Seed      []byte             `json:"seed"`
	Relays    []string           `json:"relays"`
	At        int64              `json:"at"`
	Status    string             `json:"status"`
	Code      string             `json:"code,omitempty"`
	Message   string             `json:"message,omitempty"`
	From      string             `json:"from,omitempty"`
}

// knockBook is what the knock file holds.
type knockBook struct {
	Sent     []sentKnock         `json:"sent"`
	Answered map[event.ID]string `json:"answered"` // requests this member answered, by status
}

func (n *Node) readKnocks() (knockBook, error) {
	b, err := os.ReadFile(filepath.Join(n.home, knockFile))
	if errors.Is(err, fs.ErrNotExist) {
		return knockBook{Answered: map[event.ID]string{}}, nil
	}
	if err != nil {
		return knockBook{}, err
	}
	pt, err := keys.OpenBox(n.id.KEMKey(), knockPurpose, b)
	for _, k := range n.id.RetiredKEMKeys() {
		if err == nil {
			break
		}
		pt, err = keys.OpenBox(k, knockPurpose, b)
	}
	if err != nil {
		return knockBook{}, fmt.Errorf("the join requests kept in this home do not open: %w", err)
	}
	var kb knockBook
	if err := json.Unmarshal(pt, &kb); err != nil {
		return knockBook{}, errors.New("the join requests kept in this home are malformed")
	}
	if kb.Answered == nil {
		kb.Answered = map[event.ID]string{}
	}
	return kb, nil
}

func (n *Node) writeKnocks(kb knockBook) error {
	if len(kb.Sent) > MaxKnocksKept {
		kb.Sent = kb.Sent[len(kb.Sent)-MaxKnocksKept:]
	}
	pt, err := json.Marshal(kb)
	if err != nil {
		return err
	}
	box, err := keys.SealBox(n.pub.KEM, knockPurpose, pt)
	if err != nil {
		return err
	}
	return keystore.WriteFileAtomic(n.home, knockFile, box)
}

// knockClient is a client of the relay at url for the knocks about
// pursuance p this member is not (yet) a member of.
func (n *Node) knockClient(p event.ID, url string) *relay.Client {
	return relay.NewClient(url, n.clients.get(n.opts.Dial, n.outsideIsolation("knock", p[:]))).Stall(n.opts.RelayTimeout).OnionStall(n.opts.RelayTimeout)
}

// KnockOptions are the choices of a knock besides its message.
type KnockOptions struct {
	// Profile names the profile key to knock on, when the relay holds
	// several live ones claiming the pursuance (zero: the only one).
	Profile identity.PublicKey
}

// KnockView is a request sent.
type KnockView struct {
	Request   event.ID
	Pursuance event.ID
	Name      string   // the pursuance's, as its profile says
	Relays    []string // where it went, and where the answer is looked for
}

// Knock sends a join request to pursuance p, sealed to the intake key of
// its profile as the relay at url holds it: this member's ID, name and KEM
// key, the message, and where to answer. It goes to the profile's relays
// (else to url), each with the proof of work it asks; the home keeps it,
// and Answers looks for the answer.
func (n *Node) Knock(ctx context.Context, p event.ID, url, message string, o KnockOptions) (KnockView, error) {
	if err := state.CheckRelayURL(url); err != nil {
		return KnockView{}, err
	}
	c := n.knockClient(p, url)
	recs, _, err := c.ProfilesOf(ctx, p)
	if err != nil {
		return KnockView{}, fmt.Errorf("the profile of %s on %s: %w", p.Short(), url, err)
	}
	var live []*profile.Record
	for _, r := range recs {
		if !r.Withdrawn && (o.Profile.IsZero() || r.Key == o.Profile) {
			live = append(live, r)
		}
	}
	switch {
	case len(live) == 0:
		return KnockView{}, fmt.Errorf("%s holds no live public profile of %s: it was withdrawn, or never published there", url, p.Short())
	case len(live) > 1:
		var ks []string
		for _, r := range live {
			ks = append(ks, fmt.Sprintf("%s (%q)", relay.ProfileKeyHex(r.Key), r.Name))
		}
		return KnockView{}, fmt.Errorf("%w: %s holds %d live profiles claiming %s, and only the pursuance's members can tell which is its own: ask one of them, and name it with --profile KEY: %s",
			ErrAmbiguous, url, len(live), p.Short(), strings.Join(ks, ", "))
	}
	rec := live[0]
	targets := slices.Clone(rec.Relays)
	if len(targets) == 0 {
		targets = []string{url}
	}
	if len(targets) > profile.MaxKnockRelays {
		// The relay asked first, if it is one of them, and the next.
		if i := slices.Index(targets, url); i > 0 {
			targets[0], targets[i] = targets[i], targets[0]
		}
		targets = targets[:profile.MaxKnockRelays]
	}
	k := &profile.Knock{Pursuance: p, Profile: rec.Key, Member: n.id.ID(), Name: n.id.Name(), KEM: n.pub.KEM, Message: message, Relays: targets, Time: n.now()}
	if _, err := io.ReadFull(n.rand(), k.ReplySeed[:]); err != nil {
		return KnockView{}, err
	}
	box, id, err := k.Seal(n.id.SigningKey(), rec.Intake)
	if err != nil {
		return KnockView{}, err
	}
	var sent []string
	var errs []error
	for _, u := range targets {
		rc := n.knockClient(p, u)
		info, err := rc.Info(ctx)
		if err == nil {
			var stamp []byte
			if stamp, err = profile.Stamp(ctx, rec.Key, box, info.KnockWork); err == nil {
				err = rc.Knock(ctx, rec.Key, stamp, box)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		sent = append(sent, u)
	}
	if len(sent) == 0 {
		return KnockView{}, fmt.Errorf("no relay of %q took the request: %w", rec.Name, errors.Join(errs...))
	}
	kb, err := n.readKnocks()
	if err != nil {
		return KnockView{}, err
	}
	kb.Sent = append(kb.Sent, sentKnock{Request: id, Pursuance: p, Profile: rec.Key, Name: rec.Name, Seed: k.ReplySeed[:], Relays: targets,
		At: int64(k.Time), Status: StatusWaiting})
	if err := n.writeKnocks(kb); err != nil {
		return KnockView{}, err
	}
	return KnockView{Request: id, Pursuance: p, Name: rec.Name, Relays: sent}, nil
}

// AnswerView is the state of a request this home sent.
type AnswerView struct {
	Request   event.ID
	Pursuance event.ID
	Name      string    // the pursuance's
	Status    string    // StatusWaiting, StatusInvited or StatusRefused
	Code      string    // the invite code, when invited: `pursuance join CODE`
	Message   string    // the answer's message
	From      string    // the answering member's name
	At        time.Time // when the request was sent
}

// Answers reads the answers to the requests this home sent that still
// wait (offline: none is read), and returns every request's state, oldest
// first. An answer that does not open with this member's key, answers
// another request, or invites into another pursuance than the one asked is
// not an answer.
func (n *Node) Answers(ctx context.Context, offline bool) ([]AnswerView, error) {
	kb, err := n.readKnocks()
	if err != nil {
		return nil, err
	}
	changed := false
	for i := range kb.Sent {
		sk := &kb.Sent[i]
		if offline || sk.Status != StatusWaiting {
			continue
		}
		if a := n.readAnswer(ctx, sk); a != nil {
			sk.Status, sk.Message, sk.From = a.Status.String(), a.Message, a.From
			sk.Code = a.Code
			changed = true
		}
	}
	if changed {
		if err := n.writeKnocks(kb); err != nil {
			return nil, err
		}
	}
	out := []AnswerView{}
	for _, sk := range kb.Sent {
		out = append(out, AnswerView{Request: sk.Request, Pursuance: sk.Pursuance, Name: sk.Name, Status: sk.Status, Code: sk.Code,
			Message: sk.Message, From: sk.From, At: time.UnixMilli(sk.At)})
	}
	return out, nil
}

// readAnswer reads the reply topic of a request on its relays, and returns
// the first answer that opens and checks.
func (n *Node) readAnswer(ctx context.Context, sk *sentKnock) *profile.Answer {
	topic, _, err := keys.ReplyTopic(sk.Seed)
	if err != nil {
		return nil
	}
	privs := append([]*identity.KEMPrivateKey{n.id.KEMKey()}, n.id.RetiredKEMKeys()...)
	for _, u := range sk.Relays {
		res, err := n.knockClient(sk.Pursuance, u).Read(ctx, topic, 0, maxAnswersRead)
		if err != nil {
			n.warn("reading the answer to a join request failed", "relay", u, "err", err)
			continue
		}
		for _, e := range res.Entries {
			for _, priv := range privs {
				a, err := profile.OpenAnswer(priv, sk.Request, e.Envelope)
				if err != nil || a.Pursuance != sk.Pursuance {
					continue
				}
				if a.Status == profile.Invited {
					if c, err := ParseInviteCode(a.Code); err != nil || c.Pursuance != sk.Pursuance {
						continue
					}
				}
				return a
			}
		}
	}
	return nil
}

// RequestView is a join request to a pursuance, opened by a holder of its
// intake role.
type RequestView struct {
	Request event.ID
	Member  identity.PublicKey // the requester's member ID (it signed the request)
	Name    string
	Message string
	At      time.Time // as the requester claims
	Profile identity.PublicKey
	// Status is StatusWaiting until this member answered it (other
	// holders' answers are sealed to the requester and not seen here).
	Status string

	knock *profile.Knock
}

// Requests reads the join requests sent to p's profiles on its relays, and
// opens those this member can: it must hold the generation of the intake
// role's key a profile's keys come from. It gives the relays the newest
// profile records first (ProfilePush), so that a profile carried by a
// quorum reaches them. Oldest first.
func (n *Node) Requests(ctx context.Context, p event.ID) ([]RequestView, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return nil, err
	}
	infos := s.Profiles()
	if len(infos) == 0 {
		return nil, fmt.Errorf("%s has no public profile, so no join requests: publish one with `pursuance profile publish`", s.Name())
	}
	if err := n.ProfilePush(ctx, p); err != nil {
		n.warn("giving the relays the profile failed", "err", err)
	}
	kb, err := n.readKnocks()
	if err != nil {
		return nil, err
	}
	urls := n.profileRelays(ctx, s)
	seen := map[event.ID]bool{}
	var out []RequestView
	opened := false
	for _, in := range infos {
		ik, ok := intakeKeys(s, in)
		if !ok {
			continue
		}
		opened = true
		rs := slices.Clone(urls)
		for _, u := range in.Record.Relays {
			if !slices.Contains(rs, u) {
				rs = append(rs, u)
			}
		}
		for _, u := range rs {
			res, err := n.relayClient(p, u).Read(ctx, keys.KnockTopic(in.Key), 0, maxKnocksRead)
			if err != nil {
				n.warn("reading join requests failed", "relay", u, "err", err)
				continue
			}
			for _, e := range res.Entries {
				id := profile.KnockID(e.Envelope)
				if seen[id] {
					continue
				}
				k, err := profile.OpenKnock(ik.KEM, in.Key, e.Envelope)
				if err != nil || k.Pursuance != p {
					continue // not a request to this pursuance: noise
				}
				seen[id] = true
				st := kb.Answered[id]
				if st == "" {
					st = StatusWaiting
				}
				out = append(out, RequestView{Request: id, Member: k.Member, Name: k.Name, Message: k.Message, At: time.UnixMilli(int64(k.Time)),
					Profile: in.Key, Status: st, knock: k})
			}
		}
	}
	if !opened {
		return nil, fmt.Errorf("%w: you hold no key of the intake role of %s's profile: only its holders read join requests", ErrNotPermitted, s.Name())
	}
	slices.SortStableFunc(out, func(a, b RequestView) int { return a.At.Compare(b.At) })
	return out, nil
}

// AnswerDraft is an answer to a join request.
type AnswerDraft struct {
	Invite  bool   // invite (into Role), else refuse
	Role    string // the role of the invite
	Message string
	// Expires is how long the invite works (0:
	// DefaultKnockInviteExpiry); it works once.
	Expires time.Duration
}

// AnswerResult is what RequestAnswer did.
type AnswerResult struct {
	Request event.ID
	Status  string // StatusInvited or StatusRefused
	Code    string // the invite code sent, when invited
	Invite  Result // the invite event, when invited (Proposed under a quorum)
}

// RequestAnswer answers the join request ref (its ID or a unique prefix)
// to p: an invite into a role, made by p's own invite path under its
// rules, or a refusal, sealed to the requester's key and put in the
// request's reply topic on the relays it named that are p's own.
func (n *Node) RequestAnswer(ctx context.Context, p event.ID, ref string, d AnswerDraft, opts DoOptions) (AnswerResult, error) {
	reqs, err := n.Requests(ctx, p)
	if err != nil {
		return AnswerResult{}, err
	}
	var r *RequestView
	low := strings.ToLower(strings.TrimSpace(ref))
	for i := range reqs {
		if len(low) >= MinPrefix && strings.HasPrefix(reqs[i].Request.String(), low) {
			if r != nil {
				return AnswerResult{}, fmt.Errorf("%w: %q names several requests", ErrAmbiguous, ref)
			}
			r = &reqs[i]
		}
	}
	if r == nil {
		return AnswerResult{}, fmt.Errorf("no join request %q to this pursuance (at least %d hex digits of its ID; `pursuance requests` lists them)", ref, MinPrefix)
	}
	s, err := n.State(ctx, p)
	if err != nil {
		return AnswerResult{}, err
	}
	// Answer only on the pursuance's own relays the requester named: a
	// request never makes this member's node connect where it says.
	ours := n.profileRelays(ctx, s)
	for _, in := range s.Profiles() {
		ours = append(ours, in.Record.Relays...)
	}
	var targets []string
	for _, u := range r.knock.Relays {
		if slices.Contains(ours, u) {
			targets = append(targets, u)
		}
	}
	if len(targets) == 0 {
		return AnswerResult{}, fmt.Errorf("the request names no relay of %s to answer on (it names %s)", s.Name(), strings.Join(r.knock.Relays, ", "))
	}
	a := profile.Answer{Request: r.Request, Pursuance: p, Status: profile.Refused, Message: d.Message, From: n.id.Name()}
	out := AnswerResult{Request: r.Request, Status: StatusRefused}
	if d.Invite {
		exp := d.Expires
		if exp == 0 {
			exp = DefaultKnockInviteExpiry
		}
		code, res, err := n.Invite(ctx, p, d.Role, exp, 1, opts)
		if err != nil {
			return AnswerResult{}, err
		}
		a.Status, a.Code = profile.Invited, code.String()
		out.Status, out.Code, out.Invite = StatusInvited, a.Code, res
	}
	box, err := a.Seal(r.knock.KEM)
	if err != nil {
		return AnswerResult{}, err
	}
	topic, key, err := keys.ReplyTopic(r.knock.ReplySeed[:])
	if err != nil {
		return AnswerResult{}, err
	}
	var errs []error
	sent := 0
	for _, u := range targets {
		if _, err := n.relayClient(p, u).Append(ctx, topic, key, [][]byte{box}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		sent++
	}
	if sent == 0 {
		return AnswerResult{}, fmt.Errorf("no relay took the answer: %w", errors.Join(errs...))
	}
	kb, err := n.readKnocks()
	if err != nil {
		return AnswerResult{}, err
	}
	kb.Answered[r.Request] = out.Status
	if err := n.writeKnocks(kb); err != nil {
		return AnswerResult{}, err
	}
	return out, nil
}
