package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// The governance API: open proposals with their quorum and expiry, the
// pending invites, the roles with their descriptions, and what this member
// may do to whom — each answer of app.Node.May, the rules' own verdict on
// the event it would sign, so the page hides or disables exactly what the
// rules would refuse, with their reason (docs/web.md, Governance).

type proposalJSON struct {
	ID        string         `json:"id"`
	Author    string         `json:"author"`
	Action    string         `json:"action"`
	What      string         `json:"what"` // the proposed action in words
	Approvals []string       `json:"approvals"`
	Needed    int            `json:"needed"`
	Expires   *string        `json:"expires"` // RFC 3339; nil: never
	Expired   bool           `json:"expired"`
	Approved  bool           `json:"approved"` // by this member
	Approve   app.Permission `json:"approve"`
}

type inviteJSON struct {
	ID      string         `json:"id"`
	Role    string         `json:"role"`
	By      string         `json:"by"`
	Uses    uint64         `json:"uses"` // 0: no limit
	Used    uint64         `json:"used"`
	Expires *string        `json:"expires"`
	Revoke  app.Permission `json:"revoke"`
}

type roleJSON struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Invite      app.Permission `json:"invite"` // inviting someone into it
}

// memberMay is what this member may do to another: remove it, give it or
// take from it each role.
type memberMay struct {
	Remove *app.Permission           `json:"remove,omitempty"` // nil on one's own row: one leaves`
	Give   map[string]app.Permission `json:"give"`
	Take   map[string]app.Permission `json:"take"`
}

func (s *Server) governance(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	ctx, me := r.Context(), n.Me().ID
	props := []proposalJSON{}
	for _, p := range st.Proposals() {
		pj := proposalJSON{ID: p.ID.String(), Author: st.NameOf(p.Author), Action: string(p.Action), What: describeOp(st, p.Op),
			Approvals: []string{}, Needed: p.Needed, Expired: p.Expired}
		for _, a := range p.Approvals {
			pj.Approvals = append(pj.Approvals, st.NameOf(a))
			pj.Approved = pj.Approved || a == me
		}
		if p.Expires != 0 {
			t := rfc3339(p.Expires)
			pj.Expires = &t
		}
		pj.Approve = n.May(ctx, st, &state.Approval{Proposal: p.ID})
		props = append(props, pj)
	}
	now := uint64(time.Now().UnixMilli())
	invites := []inviteJSON{}
	for _, inv := range st.Invites() {
		if !inv.Open(now) {
			continue
		}
		ij := inviteJSON{ID: inv.ID.String(), Role: inv.Role, By: st.NameOf(inv.Author), Uses: inv.Uses, Used: inv.Used}
		if inv.Expires != 0 {
			t := rfc3339(inv.Expires)
			ij.Expires = &t
		}
		ij.Revoke = n.May(ctx, st, &state.InviteRevoke{Invite: inv.ID})
		invites = append(invites, ij)
	}
	c := st.Charter()
	roles := []roleJSON{}
	for _, name := range c.RoleNames() {
		role, _ := c.Role(name)
		// The invite's key is only a placeholder: the rules look at the
		// role and the inviter, and at the key's form.
		roles = append(roles, roleJSON{name, role.Description, n.May(ctx, st, &state.Invite{Key: me, Role: name})})
	}
	// The least-privileged role the member may invite into: the lowest
	// ranked (the charter lists roles highest first).
	inviteDefault := ""
	for _, rj := range slices.Backward(roles) {
		if rj.Invite.Allowed {
			inviteDefault = rj.Name
			break
		}
	}
	members := map[string]memberMay{}
	for _, m := range st.Members() {
		mm := memberMay{Give: map[string]app.Permission{}, Take: map[string]app.Permission{}}
		if m.ID != me { // Remove is not offered on one's own row: one leaves
			rm := n.May(ctx, st, &state.Remove{Member: m.ID})
			mm.Remove = &rm
		}
		for _, name := range c.RoleNames() {
			if m.HasRole(name) {
				mm.Take[name] = n.May(ctx, st, &state.RoleRevoke{Member: m.ID, Role: name})
			} else {
				mm.Give[name] = n.May(ctx, st, &state.RoleAssign{Member: m.ID, Role: name})
			}
		}
		members[m.ID.String()] = mm
	}
	return map[string]any{
		"me": me.String(), "proposals": props, "invites": invites, "roles": roles, "invite_default": inviteDefault,
		"members": members, "leave": n.May(ctx, st, &state.Leave{}),
	}, nil
}

// describeOp says what a proposal would do, in words.
func describeOp(st *state.State, op state.Op) string {
	switch op := op.(type) {
	case *state.Remove:
		return "remove " + st.NameOf(op.Member)
	case *state.RoleAssign:
		return fmt.Sprintf("give %s the role %q", st.NameOf(op.Member), op.Role)
	case *state.RoleRevoke:
		return fmt.Sprintf("take the role %q from %s", op.Role, st.NameOf(op.Member))
	case *state.CharterAmend:
		return "amend the charter" + charterChanges(st.Charter(), op.Charter)
	case *state.Invite:
		return fmt.Sprintf("invite someone into the role %q", op.Role)
	case nil:
		return "an action this version does not read"
	}
	return strings.ReplaceAll(op.Kind().String(), "-", " ")
}

// approve approves an open proposal, by its full ID.
func (s *Server) approve(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	id, err := event.ParseID(r.PathValue("id"))
	if err != nil {
		return nil, fmt.Errorf("proposal: %v", err)
	}
	res, left, err := n.Approve(r.Context(), st.Pursuance(), id, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	// Carried: the proposal is no longer open once its action took effect.
	carried := false
	if after, err := n.State(r.Context(), st.Pursuance()); err == nil {
		carried = !slices.ContainsFunc(after.Proposals(), func(p state.ProposalInfo) bool { return p.ID == id })
	}
	return map[string]any{"accepted": res.Accepted, "carried": carried, "not_rekeyed": nonNil(left)}, nil
}

// leave leaves the pursuance.
func (s *Server) leave(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	if _, err := n.Act(r.Context(), st.Pursuance(), &state.Leave{}, app.DoOptions{}); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// revokeInvite revokes a pending invite, by its full ID.
func (s *Server) revokeInvite(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	id, err := event.ParseID(r.PathValue("i"))
	if err != nil {
		return nil, fmt.Errorf("invite: %v", err)
	}
	if !slices.ContainsFunc(st.Invites(), func(i state.InviteInfo) bool { return i.ID == id }) {
		return nil, errors.New("no such invite in this pursuance")
	}
	if _, err := n.Act(r.Context(), st.Pursuance(), &state.InviteRevoke{Invite: id}, app.DoOptions{}); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// charterChanges says, for people, what an amendment changes: the name,
// the roles added and dropped, and whether anything else changes (the
// Charter view shows the text).
func charterChanges(now *charter.Charter, wire []byte) string {
	next, err := charter.Unmarshal(wire)
	if err != nil {
		return " (a charter this version cannot read)"
	}
	var parts []string
	if next.Name != now.Name {
		parts = append(parts, fmt.Sprintf("name %q → %q", now.Name, next.Name))
	}
	was, will := now.RoleNames(), next.RoleNames()
	for _, r := range will {
		if !slices.Contains(was, r) {
			parts = append(parts, fmt.Sprintf("new role %q", r))
		}
	}
	for _, r := range was {
		if !slices.Contains(will, r) {
			parts = append(parts, fmt.Sprintf("role %q dropped", r))
		}
	}
	// Beyond the name and the roles, the rules (the Charter view shows them).
	renamed := *next
	renamed.Name = now.Name
	if slices.Equal(was, will) && !bytes.Equal(renamed.YAML(), now.YAML()) {
		parts = append(parts, "the rules (compare in the Charter view)")
	}
	if len(parts) == 0 {
		return " (no change)"
	}
	return ": " + strings.Join(parts, "; ")
}
