package state

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/event"
)

// TestTaskAttachChecks: a manifest round-trips through the canonical
// encoding, and each limit is refused in words that name it.
func TestTaskAttachChecks(t *testing.T) {
	ok := TaskAttach{Task: event.ID{1}, Name: "leak.pdf", Type: "application/pdf", Size: 3,
		SHA256: [32]byte{9}, Chunks: []attach.ChunkRef{{Blob: attach.BlobID{2}, Key: [32]byte{3}, Size: 3}}}
	b, err := EncodeOp(&ok)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeOp(event.KindTaskAttach, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.(*TaskAttach); got.Name != ok.Name || got.Chunks[0] != ok.Chunks[0] || got.SHA256 != ok.SHA256 {
		t.Fatalf("round trip: %+v", got)
	}
	cases := map[string]struct {
		edit func(*TaskAttach)
		want string
	}{
		"no name":     {func(o *TaskAttach) { o.Name = " " }, "no name"},
		"long name":   {func(o *TaskAttach) { o.Name = strings.Repeat("a", MaxFileName+1) }, "over the limit of 255"},
		"path":        {func(o *TaskAttach) { o.Name = "../etc/passwd" }, "path separator"},
		"type":        {func(o *TaskAttach) { o.Type = "text/plain; x" }, "media type"},
		"too big":     {func(o *TaskAttach) { o.Size = attach.MaxFileSize + 1 }, "100 MiB"},
		"sum":         {func(o *TaskAttach) { o.Size = 4 }, "chunks of 3 bytes for a file of 4"},
		"zero chunk":  {func(o *TaskAttach) { o.Chunks[0].Size = 0; o.Size = 0 }, "a chunk of 0 bytes"},
		"no chunks":   {func(o *TaskAttach) { o.Chunks = nil }, "no chunks"},
		"many chunks": {func(o *TaskAttach) { o.Chunks = make([]attach.ChunkRef, attach.MaxChunks+1) }, "more than a manifest"},
	}
	for name, c := range cases {
		o := ok
		o.Chunks = append([]attach.ChunkRef(nil), ok.Chunks...)
		c.edit(&o)
		err := CheckInput(&o)
		var ie *InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// TestTaskAttachCommentWire: a manifest without a comment encodes as
// before (key 7 absent); with one, key 7 holds the comment's 32 bytes
// (docs/ops.md §4.35, the vector there); and a file cannot name its own
// task as its comment.
func TestTaskAttachCommentWire(t *testing.T) {
	o := TaskAttach{Task: event.ID{1}, Name: "a", Size: 1, SHA256: [32]byte{2},
		Chunks: []attach.ChunkRef{{Blob: attach.BlobID{3}, Key: [32]byte{4}, Size: 1}}}
	b, err := EncodeOp(&o)
	if err != nil {
		t.Fatal(err)
	}
	const without = "a50158200100000000000000000000000000000000000000000000000000000000000000026161040105582002000000000000000000000000000000000000000000000000000000000000000681a30158200300000000000000000000000000000000000000000000000000000000000000025820040000000000000000000000000000000000000000000000000000000000000003" + "01"
	if got := hex.EncodeToString(b); got != without {
		t.Errorf("without a comment:\n got %s\nwant %s", got, without)
	}
	o.Comment = event.ID{5}
	if b, err = EncodeOp(&o); err != nil {
		t.Fatal(err)
	}
	with := "a6" + without[2:] + "07582005" + "00000000000000000000000000000000000000000000000000000000000000"
	if got := hex.EncodeToString(b); got != with {
		t.Errorf("with a comment:\n got %s\nwant %s", got, with)
	}
	back, err := DecodeOp(event.KindTaskAttach, b)
	if err != nil || back.(*TaskAttach).Comment != o.Comment {
		t.Fatalf("round trip: %v %v", back, err)
	}
	o.Comment = o.Task
	var ie *InputError
	if err := CheckInput(&o); !errors.As(err, &ie) || !strings.Contains(err.Error(), "task itself") {
		t.Fatalf("the task as its own comment: %v", err)
	}
}
