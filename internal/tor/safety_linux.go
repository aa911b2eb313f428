package tor

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// onlyLoopback returns nil when this process's network namespace has no
// interface but loopback, and an error naming the others otherwise.
func onlyLoopback() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("cannot list the network interfaces: %w", err)
	}
	var others []string
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			others = append(others, i.Name)
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("this network namespace has interfaces beyond loopback (%s); run it in a fresh one (unshare --net, internal/tortest)", strings.Join(others, ", "))
	}
	if len(ifs) == 0 {
		return errors.New("this network namespace has no loopback interface")
	}
	return nil
}
