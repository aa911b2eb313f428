package relaytest

import (
	"net"
	"sync"
	"testing"
)

// Hanging listens on loopback, accepts connections (the kernel does, from
// its backlog; the listener takes them too) and never reads or writes: a
// censored or overloaded relay. It returns the relay's URL, and a channel
// that gets a value per connection accepted (dropped when full). Its
// connections close when the test ends.
func Hanging(t testing.TB) (url string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 100)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String(), ch
}
