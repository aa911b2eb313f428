package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// Permission is whether this member may do an action now, by the rules
// every member's client applies to the event it would sign.
type Permission struct {
	Allowed bool `json:"allowed"`
	// Proposed: the charter puts the action under a quorum, so doing it
	// proposes it, and it takes effect once Needed approvals are in.
	Proposed bool `json:"proposed"`
	Needed   int  `json:"needed,omitempty"`
	// Reason says why not, in the rules' words, when !Allowed.
	Reason string `json:"reason,omitempty"`
}

// May reports whether this member may do op in s's pursuance now: it
// signs the event Act would publish (the proposal of op, when the charter
// puts op under a quorum) and asks the rules for their verdict, as Act
// does before publishing, but stores nothing. It is how a UI hides or
// disables what the charter forbids with the same rules that would
// refuse it. A task operation is sealed as Act seals it, under the keys
// in force: Act may rotate a stale key first, which May does not, so a
// member who holds no current key of the task's readers is told why
// rather than let through.
func (n *Node) May(ctx context.Context, s *state.State, op state.Op) Permission {
	if _, member := s.Member(n.me()); !member {
		return Permission{Reason: fmt.Sprintf("you are not a member of %s", s.Name())}
	}
	signed, needed, proposed, err := proposalFor(s, n.me(), op)
	if err != nil {
		return Permission{Reason: err.Error()}
	}
	e, err := n.sign(ctx, s, signed)
	if err != nil {
		return Permission{Reason: err.Error()}
	}
	if err := s.Check(e); err != nil {
		return Permission{Reason: strings.TrimPrefix(err.Error(), "state: ")}
	}
	return Permission{Allowed: true, Proposed: proposed, Needed: needed}
}

// proposalFor returns what a member publishes to do op: op itself, or,
// when the charter puts op under a quorum this member's approval alone
// does not meet, its proposal (with the approvals needed). Act and May
// both go through it.
func proposalFor(s *state.State, me identity.PublicKey, op state.Op) (state.Op, int, bool, error) {
	needed, ok := s.NeedsProposal(me, op)
	if !ok {
		return op, 0, false, nil
	}
	body, err := state.EncodeOp(op)
	if err != nil {
		return nil, 0, false, err
	}
	return &state.Proposal{Action: op.Kind(), Body: body}, needed, true, nil
}
