package tor

import "os/exec"

// ownProcessGroup does nothing on Windows, where a console's Ctrl-C does
// not reach a child that has no console of its own.
func ownProcessGroup(cmd *exec.Cmd) {}
