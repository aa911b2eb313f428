//go:build unix

package relay

import "syscall"

// smallReceiveBuffer makes a socket's receive buffer small, so that a
// client that does not read stops its server's writes soon.
func smallReceiveBuffer(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
}
