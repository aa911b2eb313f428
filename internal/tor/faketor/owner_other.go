//go:build !unix

package faketor

import "context"

// watchOwner does not watch on this platform: the owning control
// connection's end stops the double.
func watchOwner(ctx context.Context, pid int) context.Context { return ctx }
