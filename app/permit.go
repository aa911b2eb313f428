package app

import (
	"context"
	"fmt"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// Permitted reports whether op, signed by this member now in pursuance p,
// would be accepted by the rules (nil), or why not: the rules' own
// reason, as Act would give it. Under a quorum op is judged as the
// proposal Act would make instead, and proposed says so. Nothing is
// stored, published or rotated: the UI asks it to show an action enabled
// or disabled with its reason (docs/web.md, "Succession").
func (n *Node) Permitted(ctx context.Context, p event.ID, op state.Op) (proposed bool, err error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return false, err
	}
	if _, member := s.Member(n.me()); !member {
		return false, &refused{fmt.Errorf("not permitted: you are not a member of %s", s.Name())}
	}
	if err := state.CheckInput(op); err != nil {
		return false, err
	}
	if _, ok := s.NeedsProposal(n.me(), op); ok {
		body, err := state.EncodeOp(op)
		if err != nil {
			return false, err
		}
		op, proposed = &state.Proposal{Action: op.Kind(), Body: body}, true
	}
	e, err := n.sign(ctx, s, op)
	if err != nil {
		return proposed, err
	}
	if err := s.Check(e); err != nil {
		return proposed, refusal(err)
	}
	return proposed, nil
}
