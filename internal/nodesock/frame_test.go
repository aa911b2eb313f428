package nodesock

import (
	"bytes"
	"strings"
	"testing"
)

// TestFrames round-trips frames and refuses what is over the limits.
func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	out, errs := NewStreams(&buf)
	out.Write([]byte("one"))
	errs.Write(bytes.Repeat([]byte("x"), MaxFrame+1)) // two frames
	out.WriteExit(3)
	want := []struct {
		kind byte
		n    int
	}{{KindStdout, 3}, {KindStderr, MaxFrame}, {KindStderr, 1}, {KindExit, len(`{"code":3}`)}}
	for _, w := range want {
		kind, data, err := ReadFrame(&buf)
		if err != nil || kind != w.kind || len(data) != w.n {
			t.Fatalf("frame %q of %d bytes (%v), want %q of %d", kind, len(data), err, w.kind, w.n)
		}
	}
	if err := WriteFrame(&buf, KindStdout, make([]byte, MaxFrame+1)); err == nil {
		t.Error("an oversized frame was written")
	}
	// A length over the limit is refused before anything is allocated.
	if _, _, err := ReadFrame(strings.NewReader("o\xff\xff\xff\xff")); err == nil {
		t.Error("an oversized frame was read")
	}
	for _, bad := range []Request{{Version: Version + 1}, {Version: Version, Args: make([]string, MaxArgs+1)}} {
		buf.Reset()
		WriteJSON(&buf, KindRequest, bad)
		if _, err := ReadRequest(&buf); err == nil {
			t.Errorf("request %d args v%d accepted", len(bad.Args), bad.Version)
		}
	}
	buf.Reset()
	WriteJSON(&buf, KindRequest, Request{Version: Version, Args: []string{"list"}})
	if r, err := ReadRequest(&buf); err != nil || r.Args[0] != "list" {
		t.Errorf("a good request: %v %v", r, err)
	}
}
