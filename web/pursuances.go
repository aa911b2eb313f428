package web

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"rsc.io/qr"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

func (s *Server) me(r *http.Request, n *app.Node) (any, error) {
	pub := n.Me()
	return map[string]string{"id": pub.ID.String(), "name": pub.Name, "fingerprint": pub.Fingerprint()}, nil
}

func (s *Server) pursuances(r *http.Request, n *app.Node) (any, error) {
	ps, err := n.Pursuances(r.Context())
	if err != nil {
		return nil, err
	}
	if ps == nil {
		ps = []app.Summary{}
	}
	return ps, nil
}

type memberJSON struct {
	ID          identity.PublicKey `json:"id"`
	Name        string             `json:"name"`
	Roles       []string           `json:"roles"`
	Fingerprint string             `json:"fingerprint"`
	// InactiveSince is when the member last signed anything, RFC 3339,
	// if the charter's continuity rules count it inactive; nil if not
	// (docs/succession.md).
	InactiveSince *string `json:"inactive_since"`
}

// claimJSON is an open succession claim (docs/succession.md).
type claimJSON struct {
	Claim     string `json:"claim"`
	Role      string `json:"role"`
	Claimant  string `json:"claimant"` // the claimant's name
	Mine      bool   `json:"mine"`
	Due       string `json:"due"`       // RFC 3339
	Cancelled string `json:"cancelled"` // why it can no longer complete; "" if it can
}

// rfc3339 formats an event time (Unix milliseconds).
func rfc3339(ms uint64) string { return time.UnixMilli(int64(ms)).UTC().Format(time.RFC3339) }

func (s *Server) pursuance(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	var ms []memberJSON
	for _, m := range st.Members() {
		roles := m.Roles
		if roles == nil {
			roles = []string{}
		}
		var since *string
		if act, _ := st.Activity(m.ID); act.Inactive {
			t := rfc3339(act.Since)
			since = &t
		}
		ms = append(ms, memberJSON{m.ID, m.Name, roles, identity.Fingerprint(m.ID, m.KEM), since})
	}
	claims := []claimJSON{}
	for _, c := range st.Claims() {
		claims = append(claims, claimJSON{c.ID.String(), c.Role, st.NameOf(c.Claimant), c.Claimant == n.Me().ID, rfc3339(c.Due), c.Cancelled})
	}
	myRoles := []string{}
	if m, ok := st.Member(n.Me().ID); ok && m.Roles != nil {
		myRoles = m.Roles
	}
	relays := st.Relays()
	if relays == nil {
		relays = []string{}
	}
	return map[string]any{
		"pursuance": st.Pursuance(), "name": st.Name(), "members": ms, "relays": relays,
		"roles": st.Charter().RoleNames(), "my_roles": myRoles, "sealed_tasks": st.SealedTasks(),
		"statuses": state.StatusNames(), "claims": claims,
		// may_create: whether the new-task form may file a task
		// (app.Node.May, as for the task dialog's controls).
		"may_create": n.May(r.Context(), st, &state.TaskCreate{Title: "a new task"}),
	}, nil
}

func (s *Server) createPursuance(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Name     string `json:"name"`
		Template string `json:"template"`
		Charter  string `json:"charter"` // YAML, instead of a template
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	var c *charter.Charter
	var err error
	if strings.TrimSpace(in.Charter) != "" {
		if c, err = charter.Parse([]byte(in.Charter)); err != nil {
			return nil, fmt.Errorf("the charter: %v", err)
		}
	} else {
		if in.Template == "" {
			in.Template = "desk"
		}
		if c, err = charter.Template(in.Template); err != nil {
			return nil, err
		}
	}
	c.Name = strings.TrimSpace(in.Name)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if n.IsDevice() {
		// A linked device asks its root to found, on the relays its
		// mailbox already uses (docs/devices.md §8).
		relays, err := n.MailboxRelays(r.Context())
		if err != nil {
			return nil, err
		}
		if len(relays) == 0 {
			return nil, errors.New("this linked device holds no pursuance yet, so its root home cannot reach it: run `pursuance create --name NAME --relay URL` here, or found on the root home")
		}
		if err := n.AskFound(r.Context(), c, relays); err != nil {
			return nil, err
		}
		// Post the ask now, as the CLI does; the node's next round would
		// post it too, so a relay out of reach is no error here.
		_, _ = n.PostDeviceMailbox(r.Context())
		return map[string]any{"pursuance": nil, "asked": true}, nil
	}
	p, err := n.Create(r.Context(), c)
	if err != nil {
		return nil, err
	}
	return map[string]any{"pursuance": p}, nil
}

// join joins with an invite code: the log comes from the relays the code
// names (or it is already here).
func (s *Server) join(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Code string `json:"code"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	code, err := app.ParseInviteCode(in.Code)
	if err != nil {
		return nil, err
	}
	if _, err := n.Join(r.Context(), code, app.DoOptions{}); err != nil {
		return nil, err
	}
	return map[string]any{"pursuance": code.Pursuance}, nil
}

func (s *Server) invite(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Role string `json:"role"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	code, res, err := n.Invite(r.Context(), st.Pursuance(), in.Role, 7*24*time.Hour, 1, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	text := code.String()
	out := map[string]any{"code": text, "proposed": res.Proposed, "reach": code.Reach(), "relays": code.Relays}
	// The code is good only once the invite is on the relays it names:
	// send it now, as the CLI's invite does, rather than at the round the
	// change starts (a newcomer handed the code at once would find
	// nothing). A relay out of reach is said, not an error: the node's
	// rounds send it later.
	if !res.Proposed {
		if sr, err := n.Sync(r.Context(), st.Pursuance(), app.SyncOptions{Quick: true, Relays: code.Relays}); err != nil || syncErrors(sr) > 0 {
			out["note"] = "Not every relay took the invite yet; the node sends it at its next sync."
		}
	}
	if q, err := qr.Encode(strings.ToUpper(text), qr.M); err == nil {
		// Upper case fits QR's alphanumeric mode; codes parse in any case.
		out["qr"] = "data:image/png;base64," + base64.StdEncoding.EncodeToString(q.PNG())
	}
	return out, nil
}

// roles gives or takes a role: {"role": R, "action": "assign"|"revoke"}.
func (s *Server) roles(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Role   string `json:"role"`
		Action string `json:"action"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	m, err := app.ResolveMember(st, r.PathValue("m"))
	if err != nil {
		return nil, err
	}
	var res app.Result
	var left []string
	switch in.Action {
	case "assign":
		res, left, err = n.AssignRole(r.Context(), st.Pursuance(), m, in.Role, app.DoOptions{})
	case "revoke":
		res, left, err = n.RevokeRole(r.Context(), st.Pursuance(), m, in.Role, app.DoOptions{})
	default:
		return nil, fmt.Errorf("action must be assign or revoke, not %q", in.Action)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"proposed": res.Proposed, "not_rekeyed": nonNil(left)}, nil
}

// remove removes a member, re-keying what it held.
func (s *Server) remove(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	m, err := app.ResolveMember(st, r.PathValue("m"))
	if err != nil {
		return nil, err
	}
	res, left, err := n.Remove(r.Context(), st.Pursuance(), m, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"proposed": res.Proposed, "not_rekeyed": nonNil(left)}, nil
}

func (s *Server) charter(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	return map[string]string{"yaml": string(st.Charter().YAML())}, nil
}

// amend replaces the charter; a charter that does not parse is answered
// with every error and its line.
func (s *Server) amend(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		YAML string `json:"yaml"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	c, err := charter.Parse([]byte(in.YAML))
	if err != nil {
		var list charter.ErrorList
		if errors.As(err, &list) {
			type lineErr struct {
				Line int    `json:"line"`
				Msg  string `json:"message"`
			}
			var out []lineErr
			for _, e := range list {
				out = append(out, lineErr{e.Line, e.Msg})
			}
			return map[string]any{"errors": out}, nil
		}
		return nil, err
	}
	wire, err := c.MarshalBinary()
	if err != nil {
		return nil, err
	}
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	res, err := n.Act(r.Context(), st.Pursuance(), &state.CharterAmend{Charter: wire}, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"proposed": res.Proposed, "errors": []any{}}, nil
}

// relays changes the pursuance's relay list: {"add": URL} or
// {"remove": URL}.
func (s *Server) relays(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Add    string `json:"add"`
		Remove string `json:"remove"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	var add, remove []string
	if u := strings.TrimSpace(in.Add); u != "" {
		add = []string{u}
	}
	if u := strings.TrimSpace(in.Remove); u != "" {
		remove = []string{u}
	}
	if len(add)+len(remove) == 0 {
		return nil, errors.New("give a relay URL to add or remove")
	}
	res, err := n.SetRelays(r.Context(), st.Pursuance(), add, remove, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"proposed": res.Proposed}, nil
}

func (s *Server) sync(r *http.Request, n *app.Node) (any, error) {
	p, err := n.Resolve(r.Context(), r.PathValue("p"))
	if err != nil {
		return nil, err
	}
	urls, err := n.RelayURLs(r.Context(), p)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"received": 0, "sent": 0, "errors": ""}
	if len(urls) == 0 {
		out["errors"] = "no relays"
		return out, nil
	}
	res, err := n.Sync(r.Context(), p, app.SyncOptions{})
	if err != nil {
		return nil, err
	}
	var errs []string
	for _, rr := range res.Relays {
		if rr.Err != nil {
			errs = append(errs, rr.URL+": "+rr.Err.Error())
		}
	}
	out["received"], out["sent"], out["errors"] = res.Received, res.Sent, strings.Join(errs, "; ")
	return out, nil
}

func (s *Server) log(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	type entry struct {
		ID     string `json:"id"`
		Author string `json:"author"`
		Kind   string `json:"kind"`
		Time   string `json:"time"`
		Status string `json:"status"`
		Reason string `json:"reason,omitempty"`
		Note   string `json:"note,omitempty"`
	}
	out := []entry{}
	for _, en := range st.Log() {
		status := "accepted"
		if !en.Accepted {
			status = "rejected"
		}
		out = append(out, entry{en.ID.Short(), st.NameOf(en.Author), en.Kind.String(),
			time.UnixMilli(int64(en.Time)).UTC().Format("2006-01-02 15:04"), status, en.Reason, en.Note})
	}
	return out, nil
}

// syncErrors counts the relays a sync failed with.
func syncErrors(res app.SyncResult) int {
	n := 0
	for _, r := range res.Relays {
		if r.Err != nil {
			n++
		}
	}
	return n
}
