//go:build unix

package faketor

import (
	"context"
	"syscall"
	"time"
)

// watchOwner returns a context that ends when process pid is gone, as
// tor's __OwningControllerProcess does.
func watchOwner(ctx context.Context, pid int) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if syscall.Kill(pid, 0) == syscall.ESRCH {
					cancel()
					return
				}
			}
		}
	}()
	return ctx
}
