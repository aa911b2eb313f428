package web

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/profile"
	"github.com/pursuance/pursuance/relay"
)

// Public profiles, a relay's directory and join requests
// (docs/directory.md), over the same app functions as `pursuance profile
// …`, `discover`, `knock`, `requests` and `answers`. The JSON keys are
// the CLI's.

// profileJSON is a pursuance's public profile in force.
type profileJSON struct {
	Pursuance  string   `json:"pursuance"`
	Profile    string   `json:"profile"` // its key, as relays list it
	Name       string   `json:"name"`
	Mission    string   `json:"mission"`
	Seeking    string   `json:"seeking"`
	IntakeRole string   `json:"intake_role"`
	Relays     []string `json:"relays"`
	Version    uint64   `json:"version"`
}

func profileOut(v app.ProfileView) *profileJSON {
	return &profileJSON{v.Pursuance.String(), relay.ProfileKeyHex(v.Key), v.Name, v.Mission, v.Seeking, v.IntakeRole, nonNil(v.Relays), v.Version}
}

// profileGet answers {p}'s profile in force (null when none), whether this
// member may publish or withdraw it, and, when not, the rules' refusal.
func (s *Server) profileGet(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	v, ok, err := n.ProfileOf(r.Context(), st.Pursuance())
	if err != nil {
		return nil, err
	}
	var out *profileJSON
	if ok && !v.Withdrawn {
		out = profileOut(v)
	}
	me := n.Me().ID
	may, refusal := st.MayPublishProfile(me), ""
	if !may {
		m, member := st.Member(me)
		switch err := st.Charter().Allows(m.Roles, charter.PublishProfile, nil, nil); {
		case !member:
			refusal = "you are not a member of " + st.Name() + " any more"
		case err != nil:
			refusal = err.Error()
		default:
			refusal = "your roles in " + st.Name() + " may not publish-profile now"
		}
	}
	return map[string]any{"profile": out, "may_publish": may, "refusal": refusal}, nil
}

// profilePublish publishes {p}'s profile, or a new version of it:
// {"mission", "seeking", "intake_role"}.
func (s *Server) profilePublish(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Mission    string `json:"mission"`
		Seeking    string `json:"seeking"`
		IntakeRole string `json:"intake_role"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	d := app.ProfileDraft{Mission: strings.TrimSpace(in.Mission), Seeking: strings.TrimSpace(in.Seeking), IntakeRole: strings.TrimSpace(in.IntakeRole)}
	if d.Mission == "" {
		return nil, errors.New("say what the pursuance is for: a profile needs a mission")
	}
	if len(d.Mission) > profile.MaxMission || len(d.Seeking) > profile.MaxSeeking {
		return nil, fmt.Errorf("the mission and what it seeks may be at most %d bytes each: shorten them", profile.MaxMission)
	}
	v, res, err := n.ProfilePublish(r.Context(), st.Pursuance(), d, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"profile": profileOut(v), "proposed": res.Proposed, "sync_error": syncErr(res)}, nil
}

// profileWithdraw withdraws {p}'s profile, for good.
func (s *Server) profileWithdraw(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	res, err := n.ProfileWithdraw(r.Context(), st.Pursuance(), app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"proposed": res.Proposed, "sync_error": syncErr(res)}, nil
}

// syncErr says, for people, why no relay took what stands in the log.
func syncErr(res app.Result) string {
	if res.SyncErr == nil {
		return ""
	}
	return "it stands in the pursuance, but no relay took it yet (" + app.RelayError(res.SyncErr) + "); the next sync tries again"
}

// requestJSON is a join request, as `pursuance requests P --json`.
type requestJSON struct {
	Request string `json:"request"`
	Name    string `json:"name"`
	Message string `json:"message"`
	At      string `json:"at"`
	Member  string `json:"member"`
	Status  string `json:"status"`
}

// requests lists the join requests to {p}'s profile this member can open
// (a holder of its intake role), oldest first.
func (s *Server) requests(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	reqs, err := n.Requests(r.Context(), st.Pursuance())
	if err != nil {
		return nil, err
	}
	out := []requestJSON{}
	for _, q := range reqs {
		out = append(out, requestJSON{q.Request.String(), q.Name, q.Message, q.At.UTC().Format(time.RFC3339), q.Member.String(), q.Status})
	}
	return out, nil
}

// requestAnswer answers join request {r} to {p}: {"invite": true, "role",
// "message"} or {"invite": false, "message"} (a refusal).
func (s *Server) requestAnswer(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Invite  bool   `json:"invite"`
		Role    string `json:"role"`
		Message string `json:"message"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	in.Role = strings.TrimSpace(in.Role)
	if in.Invite && in.Role == "" {
		return nil, errors.New("pick the role to invite the requester into")
	}
	if len(in.Message) > profile.MaxMessage {
		return nil, fmt.Errorf("the message may be at most %d bytes: shorten it", profile.MaxMessage)
	}
	res, err := n.RequestAnswer(r.Context(), st.Pursuance(), r.PathValue("r"), app.AnswerDraft{Invite: in.Invite, Role: in.Role, Message: in.Message}, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	// The code went, sealed, to the requester; the invite it names goes
	// to the relays now, as the CLI's sync after a command does, so that
	// it is there when the requester joins (the node's own round, which
	// the change starts, may come later than the requester's click).
	note := ""
	if res.Status == app.StatusInvited && !res.Invite.Proposed {
		sr, err := n.Sync(r.Context(), st.Pursuance(), app.SyncOptions{})
		reached := err == nil && len(sr.Relays) == 0
		for _, rr := range sr.Relays {
			reached = reached || rr.Err == nil
		}
		if !reached {
			note = "the invite stands, but reached no relay yet: the requester's join works once the next sync brings it there"
		}
	}
	// The page need not hold the code.
	return map[string]any{"request": res.Request.String(), "status": res.Status, "proposed": res.Invite.Proposed, "sync_error": note}, nil
}

// directoryJSON is a pursuance a relay's directory lists, as `pursuance
// discover --json`.
type directoryJSON struct {
	Pursuance string   `json:"pursuance"`
	Name      string   `json:"name"`
	Mission   string   `json:"mission"`
	Seeking   string   `json:"seeking"`
	Relays    []string `json:"relays"`
	Profile   string   `json:"profile"`
}

// discover searches the directory of the relay ?relay= for ?q= (words).
func (s *Server) discover(r *http.Request, n *app.Node) (any, error) {
	u := strings.TrimSpace(r.URL.Query().Get("relay"))
	if u == "" {
		return nil, errors.New("give the address of a relay whose directory to search (http://… or https://…)")
	}
	ents, err := n.Discover(r.Context(), u, r.URL.Query().Get("q"))
	if err != nil {
		return nil, relayTrouble(u, err)
	}
	out := []directoryJSON{}
	for _, d := range ents {
		out = append(out, directoryJSON{d.Pursuance.String(), d.Name, d.Mission, d.Seeking, nonNil(d.Relays), relay.ProfileKeyHex(d.Key)})
	}
	return out, nil
}

// knock sends a join request: {"pursuance": its ID, "relay": the relay
// whose directory listed it, "profile": the profile key listed (optional),
// "message"}.
func (s *Server) knock(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Pursuance string `json:"pursuance"`
		Relay     string `json:"relay"`
		Profile   string `json:"profile"`
		Message   string `json:"message"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	p, err := event.ParseID(strings.TrimSpace(in.Pursuance))
	if err != nil {
		return nil, errors.New("name the pursuance by its full ID (64 hex digits), as the directory lists it")
	}
	in.Relay = strings.TrimSpace(in.Relay)
	if in.Relay == "" {
		return nil, errors.New("give the address of the relay that lists the pursuance")
	}
	in.Message = strings.TrimSpace(in.Message)
	if in.Message == "" {
		return nil, errors.New("say who you are and why you ask to join: the pursuance's members decide on that alone")
	}
	if len(in.Message) > profile.MaxMessage {
		return nil, fmt.Errorf("the message may be at most %d bytes: shorten it", profile.MaxMessage)
	}
	var o app.KnockOptions
	if in.Profile != "" {
		if o.Profile, err = profile.ParseProfileKey(in.Profile); err != nil {
			return nil, fmt.Errorf("the profile key: %v", err)
		}
	}
	v, err := n.Knock(r.Context(), p, in.Relay, in.Message, o)
	if err != nil {
		return nil, relayTrouble(in.Relay, err)
	}
	return map[string]any{"request": v.Request.String(), "name": v.Name, "relays": nonNil(v.Relays)}, nil
}

// answerJSON is the state of a request this home sent, as `pursuance
// answers --json`, with who answered and when the request went.
type answerJSON struct {
	Request   string `json:"request"`
	Pursuance string `json:"pursuance"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	From      string `json:"from"`
	At        string `json:"at"`
}

// answers reads the answers to this home's join requests from their
// relays and lists every request's state, oldest first.
func (s *Server) answers(r *http.Request, n *app.Node) (any, error) {
	as, err := n.Answers(r.Context(), false)
	if err != nil {
		return nil, err
	}
	out := []answerJSON{}
	for _, a := range as {
		out = append(out, answerJSON{a.Request.String(), a.Pursuance.String(), a.Name, a.Status, a.Code, a.Message, a.From, a.At.UTC().Format(time.RFC3339)})
	}
	return out, nil
}

// relayTrouble words a relay that could not be reached so that a person
// can act on it, instead of the dialer's text.
func relayTrouble(u string, err error) error {
	var ue *url.Error
	var op *net.OpError
	if errors.As(err, &ue) || errors.As(err, &op) {
		return fmt.Errorf("the relay at %s is %s: check the address, and that the relay runs", u, app.RelayError(err))
	}
	return err
}
