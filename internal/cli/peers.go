package cli

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pursuance/pursuance/app"
)

// roundPeers prepares pursuance p for a round of the node (up): with Tor,
// it announces the node's onion service in p's log if the log does not
// say it already (app.Node.NodePeers: an event only on change), and returns
// the other members' announced nodes to sync with, those that failed
// lately left out (app.PeerBackoff). Without Tor it returns none: they
// are onion services, which only Tor reaches; skipped says why, for the
// node's status, and the log says it once.
func (e *Env) roundPeers(ctx context.Context, n *app.Node, p app.Summary) (peers, skipped []string) {
	all, signed, err := n.NodePeers(ctx, p.ID, e.nodeOnion)
	if signed {
		e.log.Info("announced this node's onion service to the other members", "pursuance", p.Name, "url", e.nodeOnion)
	}
	if err != nil {
		e.log.Warn("the members' nodes are not known, or this node's is not announced", "pursuance", p.Name, "err", oneLine(err.Error()))
		return nil, nil
	}
	if len(all) == 0 {
		return nil, nil
	}
	if e.nodeOnion == "" {
		why := fmt.Sprintf("%s: %d members' nodes not synced with: they are onion services, and this node runs without Tor (`pursuance up --tor`)", p.Name, len(all))
		if !e.peersSkipped {
			e.peersSkipped = true
			e.log.Info("members' nodes not synced with: they are onion services, and this node runs without Tor (pursuance up --tor)", "pursuance", p.Name, "nodes", len(all))
		}
		return nil, []string{why}
	}
	now := time.Now()
	for _, u := range all {
		if e.peerBackoff.Due(u, now) {
			peers = append(peers, u)
		} else {
			skipped = append(skipped, fmt.Sprintf("%s: %s: did not answer lately; tried again later", p.Name, u))
		}
	}
	return peers, skipped
}

// recordPeers notes how the members' nodes of a round of pursuance name
// answered: one that failed is left out of rounds for a while.
func (e *Env) recordPeers(name string, peers []string, res app.SyncResult) {
	now := time.Now()
	for _, r := range res.Relays {
		if !slices.Contains(peers, r.URL) {
			continue
		}
		if until := e.peerBackoff.Record(r.URL, r.Err, now); r.Err != nil {
			e.log.Warn("a member's node did not answer; it is left out of rounds for a while", "pursuance", name, "node", r.URL,
				"err", oneLine(app.RelayError(r.Err)), "until", until.Format(time.TimeOnly))
		}
	}
}

// recordPeers records why members' nodes were left out of the last round
// (the status's "peers_skipped").
func (s *syncStatus) recordPeers(skipped []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers = skipped
}
