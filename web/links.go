package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// Links between pursuances and hand-off (docs/links.md), over the same app
// functions as `pursuance link …`, `links`, `handoff` and `task report`.

// links lists the links of {p}: the same data as `pursuance links P
// --json`.
func (s *Server) links(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	return n.Links(r.Context(), st.Pursuance())
}

// linkCreate offers a link from {p}: {"to": the other pursuance's ID,
// "send_roles": [roles of {p} whose holders may send]}. It answers the
// link code to hand to the other side.
func (s *Server) linkCreate(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		To        string   `json:"to"`
		SendRoles []string `json:"send_roles"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	peer, err := n.ResolvePeer(r.Context(), in.To)
	if err != nil {
		return nil, err
	}
	var roles []string
	for _, role := range in.SendRoles {
		if role = strings.TrimSpace(role); role != "" {
			roles = append(roles, role)
		}
	}
	if len(roles) == 0 {
		return nil, errors.New("pick at least one role whose holders may send tasks over the link")
	}
	code, res, err := n.LinkCreate(r.Context(), st.Pursuance(), peer, roles, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"link": code.Secret.ID().String(), "code": code.String(), "proposed": res.Proposed}, nil
}

// linkAccept accepts, for {p}, the link a code offers: {"code",
// "deliver_to": the role of {p} tasks arrive for}.
func (s *Server) linkAccept(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Code      string `json:"code"`
		DeliverTo string `json:"deliver_to"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.Code) == "" {
		return nil, errors.New("paste the link code (pl1…) that the other pursuance's member gave you")
	}
	code, err := app.ParseLinkCode(in.Code)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.DeliverTo) == "" {
		return nil, errors.New("pick the role whose holders receive the tasks sent over the link")
	}
	id, res, err := n.LinkAccept(r.Context(), st.Pursuance(), code, strings.TrimSpace(in.DeliverTo), app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"link": id.String(), "proposed": res.Proposed}, nil
}

// linkEnd ends link {l} of {p}, on {p}'s side.
func (s *Server) linkEnd(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	res, err := n.LinkEnd(r.Context(), st.Pursuance(), r.PathValue("l"), app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"proposed": res.Proposed}, nil
}

// handoff sends task {t} of {p} to another pursuance over their link:
// {"to": its ID}.
func (s *Server) handoff(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		To string `json:"to"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	peer, err := n.ResolvePeer(r.Context(), in.To)
	if err != nil {
		return nil, err
	}
	hr, _, err := n.Handoff(r.Context(), st.Pursuance(), r.PathValue("t"), peer, app.DoOptions{})
	if err != nil {
		if errors.Is(err, app.ErrNotPermitted) && linkEnded(r.Context(), n, st.Pursuance(), peer) {
			return nil, fmt.Errorf("%w. No task goes over an ended link; to send tasks there again, offer a new link in the Links view and have its members accept the code", err)
		}
		return nil, err
	}
	return hr, nil
}

// linkEnded says whether every link p offered to peer is ended (by either
// side, as far as this node knows), so that a refused hand-off can say
// what to do.
func linkEnded(ctx context.Context, n *app.Node, p, peer event.ID) bool {
	ls, err := n.Links(ctx, p)
	if err != nil {
		return false
	}
	ended := false
	for _, l := range ls {
		if l.Direction != "out" || l.Pursuance != peer.String() {
			continue
		}
		if l.State != "ended" {
			return false
		}
		ended = true
	}
	return ended
}

// report reports on task {t} of {p}, received over a link, back to the
// pursuance that sent it: {"status", "comment"}, either or both.
func (s *Server) report(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Status  string `json:"status"`
		Comment string `json:"comment"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	var status *state.Status
	if in.Status != "" {
		v, err := state.ParseStatus(in.Status)
		if err != nil {
			return nil, err
		}
		status = &v
	}
	if status == nil && strings.TrimSpace(in.Comment) == "" {
		return nil, errors.New("a report says a status, a comment or both")
	}
	if _, err := n.Report(r.Context(), st.Pursuance(), r.PathValue("t"), status, in.Comment, app.DoOptions{}); err != nil {
		return nil, err
	}
	return map[string]bool{"ok": true}, nil
}
