package relay

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerPID returns the process ID of the process at the other end of a
// Unix socket connection, as the kernel recorded it when that process
// connected (SO_PEERCRED); 0 for other connections or when it cannot be
// read.
func peerPID(c net.Conn) int {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0
	}
	var pid int
	_ = raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	return pid
}
