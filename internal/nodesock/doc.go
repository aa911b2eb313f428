// Package nodesock is the local socket through which the pursuance command
// asks this home's running node (or agent) to run a command for it
// (docs/node-socket.md): where the socket lives, how it is opened so that
// only the member's own account can connect, and the framing of what
// crosses it.
//
// On Unix the socket is a Unix domain socket in a directory of the home
// that only the member's account may enter (mode 0700), itself mode 0600;
// on Linux the server also checks the connecting process's user
// (SO_PEERCRED). On Windows, which has no such file modes to lean on here,
// the server listens on the loopback and writes its address with a random
// token to a file of the home: a client must present the token.
package nodesock
