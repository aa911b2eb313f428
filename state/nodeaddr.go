package state

import (
	"bytes"
	"cmp"
	"crypto/sha3"
	"encoding/base32"
	"fmt"
	"slices"
	"strings"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// NodeAddress announces where the author's own node (`pursuance up
// --tor`) is reached: the URL of its embedded relay as an onion service,
// or "" to withdraw the author's announcement (kind 33, docs/ops.md). It
// names no member: it speaks for its author only, so no member can
// announce an address for another. Any member may sign it; the newest
// by (lamport, event ID) of each member counts, while the member is one
// (docs/sync.md, "Peers").
type NodeAddress struct {
	URL string `cbor:"1,keyasint,omitempty"`
}

func (NodeAddress) Kind() event.Kind { return event.KindNodeAddress }

// onionHostLen is the length of a v3 onion service's address without
// ".onion": the base32 of its key, a checksum and the version.
const onionHostLen = 56

// MaxNodeAddress is the length of the one form a node address takes,
// "http://" + 56 base32 characters + ".onion": longer is refused before
// anything else is looked at.
const MaxNodeAddress = len("http://") + onionHostLen + len(".onion")

// CheckNodeAddress checks a node address: exactly "http://", a v3 onion
// service's address (56 lower-case base32 characters whose checksum and
// version byte hold) and ".onion" — no port, path or anything else. Only
// onion services are accepted: a clear-net or loopback address would tell
// every co-member the machine (the IP address) a member runs its node
// on, or mean nothing off that machine (docs/ops.md, "node-address").
func CheckNodeAddress(u string) error {
	if len(u) > MaxNodeAddress {
		return fmt.Errorf("a node address of %d bytes, more than %d: only an onion service's http://….onion is one", len(u), MaxNodeAddress)
	}
	host, ok := strings.CutPrefix(u, "http://")
	if ok {
		host, ok = strings.CutSuffix(host, ".onion")
	}
	if !ok || len(host) != onionHostLen {
		return fmt.Errorf("node address %q is not an onion service's http://….onion (a clear-net or loopback address would reveal where the node runs, or mean nothing elsewhere)", u)
	}
	raw, err := base32.StdEncoding.DecodeString(strings.ToUpper(host))
	if err != nil || strings.ToLower(host) != host {
		return fmt.Errorf("node address %q: the onion address is not lower-case base32", u)
	}
	const keyLen, version = 32, 3
	h := sha3.New256()
	h.Write([]byte(".onion checksum"))
	h.Write(raw[:keyLen])
	h.Write([]byte{version})
	if raw[keyLen+2] != version || !bytes.Equal(h.Sum(nil)[:2], raw[keyLen:keyLen+2]) {
		return fmt.Errorf("node address %q is not a v3 onion address (its checksum or version does not hold)", u)
	}
	return nil
}

// checkNodeAddressOp checks a node-address op's shape.
func checkNodeAddressOp(o *NodeAddress) error {
	if o.URL == "" {
		return nil // a withdrawal
	}
	return CheckNodeAddress(o.URL)
}

// nodeAddr is a member's announcement in force: the newest by (lamport,
// ID) of its accepted node-address events, and the admission (the
// genesis or join) it was made under, so that a member removed and
// admitted again starts with none.
type nodeAddr struct {
	url     string
	lamport uint64
	id      event.ID
	since   event.ID
	member  identity.PublicKey // the member the announcing device speaks for (docs/devices.md)
}

// applyNodeAddress records an accepted node-address event of node n.
// Last writer wins by (lamport, event ID), not log order, so that two
// announcements of one member that saw neither settle the same way
// everywhere whatever order they arrived in.
func (b *builder) applyNodeAddress(n *node, op *NodeAddress) {
	m := b.auth.members[*n.member]
	if m == nil {
		return // its removal is before it in log order: it never counts
	}
	if b.nodeAddrs == nil {
		b.nodeAddrs = map[identity.PublicKey]*nodeAddr{}
	}
	// By device: each of a member's devices runs its own node.
	cur := b.nodeAddrs[*n.e.Author]
	id := n.e.ID()
	if cur != nil && cur.since == m.Since {
		if c := cmp.Compare(n.e.Lamport, cur.lamport); c < 0 || c == 0 && id.Compare(cur.id) < 0 {
			return
		}
	}
	b.nodeAddrs[*n.e.Author] = &nodeAddr{url: op.URL, lamport: n.e.Lamport, id: id, since: m.Since, member: *n.member}
}

// NodeAddressInfo is a member's node address as the log has it.
type NodeAddressInfo struct {
	Member identity.PublicKey
	Device identity.PublicKey // the device whose node it is: the member ID for a member's root
	URL    string
	By     event.ID // the announcement in force
}

// NodeAddresses returns the node addresses the current members announced
// and did not withdraw, by member ID. A removed (or departed) member's
// announcement does not count, nor one made before a member's current
// admission.
func (s *State) NodeAddresses() []NodeAddressInfo {
	if v := s.view(); v != nil {
		return slices.Clone(v.nodes)
	}
	var out []NodeAddressInfo
	for k, a := range s.b().nodeAddrs {
		if m := s.b().auth.members[a.member]; m == nil || m.Since != a.since || a.url == "" {
			continue
		}
		if _, current, _ := s.b().auth.deviceOf(k); !current {
			continue // a revoked device's node
		}
		out = append(out, NodeAddressInfo{Member: a.member, Device: k, URL: a.url, By: a.id})
	}
	slices.SortFunc(out, func(x, y NodeAddressInfo) int { return x.Device.Compare(y.Device) })
	return out
}

// NodeAddress returns the node address in force of member m's root, or
// of device m, if any.
func (s *State) NodeAddress(m identity.PublicKey) (string, bool) {
	for _, a := range s.NodeAddresses() {
		if a.Device == m {
			return a.URL, true
		}
	}
	return "", false
}
