//go:build unix && !linux

package nodesock

import "net"

// peerUID cannot read the peer's user here: the socket directory's mode
// (0700) alone keeps other users out.
func peerUID(net.Conn) (int, bool) { return 0, false }
