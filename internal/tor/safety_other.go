//go:build !linux

package tor

import "errors"

// onlyLoopback refuses: only Linux network namespaces are checked.
func onlyLoopback() error {
	return errors.New("private test networks run only on Linux, in a network namespace with nothing but loopback")
}
