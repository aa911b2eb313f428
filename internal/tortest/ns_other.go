//go:build !linux

package tortest

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
)

// Network namespaces are Linux's: elsewhere Main runs the tests with
// Available false, and nothing here starts tor.

var errNoNamespaces = errors.New("network namespaces exist only on Linux")

func runIsolated() (int, error) { return 0, errNoNamespaces }

func enterIsolation(string) (string, error) { return "", errNoNamespaces }

func checkIsolated() error { return fmt.Errorf("%w: %v", errNotIsolated, errNoNamespaces) }

func spawn(*exec.Cmd) error { return checkIsolated() }

func signalGroup(int, syscall.Signal) error { return errNoNamespaces }

func strayTors() ([]int, error) { return nil, nil }
