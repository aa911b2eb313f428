package nodesock

import (
	"errors"
	"net"
)

// Dir is the directory of the home that holds the sockets; Node is the
// socket of `pursuance up`, Agent that of `pursuance agent`.
const (
	Dir   = "sock"
	Node  = "node.sock"
	Agent = "agent.sock"
)

// ErrNoServer is returned by Dial when nothing serves the socket: no node
// runs, or the file is a crashed node's.
var ErrNoServer = errors.New("nodesock: no node serves this home")

// ErrUnsafe is returned by Dial and Listen when the socket's directory is
// not the member's own (another owner, or open to other users): the client
// does not trust what answers there.
var ErrUnsafe = errors.New("nodesock: the socket directory is not private to this user")

// Listener accepts the connections of this member's own processes only.
type Listener struct {
	net.Listener
	// Token is what a client must present in its request (Windows); ""
	// on Unix.
	Token string
}
