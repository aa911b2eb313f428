package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// What the CLI and the web UI show of links, computed once here for both:
// naming the other pursuance, the origin of received tasks.

// ResolvePeer names another pursuance, the other side of a link: by its
// full ID, or, when this home belongs to it too, as any pursuance of the
// home is named (name or ID prefix).
func (n *Node) ResolvePeer(ctx context.Context, ref string) (event.ID, error) {
	ref = strings.TrimSpace(ref)
	if id, err := event.ParseID(ref); err == nil {
		return id, nil
	}
	if id, err := n.Resolve(ctx, ref); err == nil {
		return id, nil
	}
	if ref == "" {
		return event.ID{}, errors.New("name the other pursuance by its ID (64 hex digits; its members see it in their Links view or with `pursuance list --json`)")
	}
	return event.ID{}, fmt.Errorf("name the other pursuance by its full ID (64 hex digits), not %q", ref)
}

// OriginView is where a received task came from, and the verdict on its
// sender (`task show --json` → "origin").
type OriginView struct {
	Pursuance  string `json:"pursuance"`
	Name       string `json:"name"`
	Role       string `json:"role"`
	Sender     string `json:"sender"`      // the sender's member ID
	SenderName string `json:"sender_name"` // its name, once the sending pursuance's history has come
	Verdict    string `json:"verdict"`     // "verified", "pending" or "invalid"
	Reason     string `json:"reason"`
	Link       string `json:"link"`
	Handoff    string `json:"handoff"`
}

// TaskOrigin returns the origin of a task of s received over a link, with
// the verdict this member reaches on it from what it holds of the sending
// pursuance (docs/links.md §6); nil for a task made here.
func (n *Node) TaskOrigin(ctx context.Context, s *state.State, t *state.Task) (*OriginView, error) {
	return n.taskOrigin(ctx, s, t, map[event.ID]*state.State{})
}

// TaskOrigins returns the origins of the tasks of s among ts that were
// received over links, by task ID, as TaskOrigin does for each; the
// sending pursuances' logs are folded once each, not once per task.
func (n *Node) TaskOrigins(ctx context.Context, s *state.State, ts []*state.Task) (map[event.ID]*OriginView, error) {
	out := map[event.ID]*OriginView{}
	folded := map[event.ID]*state.State{}
	for _, t := range ts {
		if t.Origin == nil {
			continue
		}
		v, err := n.taskOrigin(ctx, s, t, folded)
		if err != nil {
			return nil, err
		}
		out[t.ID] = v
	}
	return out, nil
}

// taskOrigin is TaskOrigin with the folds of the other sides already made
// (by pursuance; folded is filled in).
func (n *Node) taskOrigin(ctx context.Context, s *state.State, t *state.Task, folded map[event.ID]*state.State) (*OriginView, error) {
	if t.Origin == nil {
		return nil, nil
	}
	o := t.Origin
	v := &OriginView{Pursuance: o.Pursuance.String(), Sender: o.Sender.String(), Link: o.Link.String(), Handoff: o.Handoff.String(), Verdict: state.Pending}
	l, ok := s.Link(o.Link)
	secret, held := s.LinkSecret(o.Link)
	if !ok || !held {
		v.Reason = "you do not hold this link's secret yet: sync first"
		return v, nil
	}
	h, err := n.receivedHandoff(ctx, o.Receive)
	if err != nil {
		return nil, err
	}
	a, done := folded[l.Peer]
	if !done {
		if a, err = n.LinkedState(ctx, l.Peer); err != nil {
			return nil, err
		}
		folded[l.Peer] = a
	}
	ov := state.VerifyHandoff(a, h, l.Peer, s.Pursuance(), secret)
	v.Name, v.Role, v.SenderName, v.Verdict, v.Reason = ov.Name, ov.Role, ov.SenderName, ov.Verdict, ov.Reason
	return v, nil
}
