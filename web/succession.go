package web

import (
	"errors"
	"net/http"
	"slices"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/state"
)

// Succession in the UI (docs/succession.md, docs/web.md "Succession"):
// what this member may claim or complete, each judged by the rules as the
// action would be now (app.Node.Permitted), so that the Members view
// shows a button only where the charter lets this member act, and
// disables it with the rules' reason while they refuse.

// claimableJSON is a role the charter lets this member take over.
type claimableJSON struct {
	Role     string `json:"role"`
	OK       bool   `json:"ok"`       // the rules would accept a claim now
	Why      string `json:"why"`      // why not, when !OK
	Proposed bool   `json:"proposed"` // a claim is proposed (the charter asks a quorum)
}

// completableJSON is one of this member's own open claims.
type completableJSON struct {
	Claim string `json:"claim"`
	Role  string `json:"role"`
	Due   string `json:"due"` // RFC 3339
	OK    bool   `json:"ok"`
	Why   string `json:"why"`
}

// succession answers the roles this member may claim and its claims it
// may complete, each with whether the rules accept it now.
func (s *Server) succession(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	ctx, p, me := r.Context(), st.Pursuance(), n.Me().ID
	claimable, completable := []claimableJSON{}, []completableJSON{}
	m, member := st.Member(me)
	c := st.Charter()
	if !member || c.Continuity.InactiveAfter == 0 {
		return map[string]any{"claimable": claimable, "completable": completable}, nil
	}
	q, quorum := c.QuorumFor(charter.TakeOver)
	for _, role := range c.RoleNames() {
		if slices.Contains(m.Roles, role) {
			continue
		}
		granted := c.Allows(m.Roles, charter.TakeOver, []string{role}, nil) == nil
		if !granted && !(quorum && slices.Contains(m.Roles, q.Of)) {
			continue // the charter does not let this member take it over
		}
		proposed, err := n.Permitted(ctx, p, &state.Succession{Role: role})
		claimable = append(claimable, claimableJSON{Role: role, OK: err == nil, Why: reasonOf(err), Proposed: proposed})
	}
	for _, cl := range st.Claims() {
		if cl.Claimant != me {
			continue // only the claimant completes (docs/succession.md §4)
		}
		_, err := n.Permitted(ctx, p, &state.Succeed{Claim: cl.ID})
		completable = append(completable, completableJSON{Claim: cl.ID.String(), Role: cl.Role, Due: rfc3339(cl.Due), OK: err == nil, Why: reasonOf(err)})
	}
	return map[string]any{"claimable": claimable, "completable": completable}, nil
}

// reasonOf is the rules' reason an action is refused; "" for none.
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// successionClaim claims a role (proposes the claim under a quorum).
func (s *Server) successionClaim(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Role string `json:"role"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	res, err := n.Act(r.Context(), st.Pursuance(), &state.Succession{Role: in.Role}, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"claim": res.Event.ID(), "proposed": res.Proposed}, nil
}

// successionComplete completes one of this member's claims.
func (s *Server) successionComplete(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Claim string `json:"claim"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	for _, cl := range st.Claims() {
		if cl.ID.String() == in.Claim {
			res, err := n.Act(r.Context(), st.Pursuance(), &state.Succeed{Claim: cl.ID}, app.DoOptions{})
			if err != nil {
				return nil, err
			}
			return map[string]any{"completed": res.Event.ID()}, nil
		}
	}
	return nil, errors.New("no open succession claim " + in.Claim + " in this pursuance")
}
