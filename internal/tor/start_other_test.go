//go:build !unix

package tor

// starter is not used where the tests cannot kill a process and watch
// its child.
func starter(dir string) int { return 1 }
