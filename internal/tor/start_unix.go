//go:build unix

package tor

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup puts tor in a process group of its own, so that a
// Ctrl-C at the terminal reaches Pursuance, which then stops tor in
// order, rather than both at once.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
