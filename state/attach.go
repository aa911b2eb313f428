package state

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// Limits of an attachment's manifest (docs/ops.md, task-attach).
const (
	MaxFileName = 255 // bytes of a file's name
	MaxFileType = 127 // bytes of its media type
)

// TaskAttach attaches a file to a task: the manifest of its encrypted
// chunks (docs/attachments.md). It is sealed for the task's readers like
// every task op, so only they learn the file's name, type, size and the
// keys of its chunks; the relay holds only the blobs.
type TaskAttach struct {
	Task   event.ID          `cbor:"1,keyasint"`
	Name   string            `cbor:"2,keyasint"`
	Type   string            `cbor:"3,keyasint,omitempty"`
	Size   uint64            `cbor:"4,keyasint"`
	SHA256 [32]byte          `cbor:"5,keyasint"`
	Chunks []attach.ChunkRef `cbor:"6,keyasint"`
	// Comment, when set, is the task-comment event on the same task the
	// file belongs to (docs/attachments.md, "Files on comments"): the file
	// is still one of the task's, shown under that comment.
	Comment event.ID `cbor:"7,keyasint,omitzero"`
}

func (TaskAttach) Kind() event.Kind   { return event.KindTaskAttach }
func (o TaskAttach) target() event.ID { return o.Task }

// File is one file attached to a task.
type File struct {
	ID     event.ID // the task-attach event's
	Author identity.PublicKey
	Time   uint64 // claimed, display only
	TaskAttach
}

// CommentFiles returns the files of t attached to its comment c, in log
// order.
func (t *Task) CommentFiles(c event.ID) []File {
	var out []File
	for _, f := range t.Files {
		if f.Comment == c && !c.IsZero() {
			out = append(out, f)
		}
	}
	return out
}

// FileComment returns the comment of t that file f is attached to, if f
// names one and t has it; a file that names no comment of t (one this
// member cannot read, or another task's) is shown as a file of the task.
func (t *Task) FileComment(f File) (Comment, bool) {
	if f.Comment.IsZero() {
		return Comment{}, false
	}
	for _, c := range t.Comments {
		if c.ID == f.Comment {
			return c, true
		}
	}
	return Comment{}, false
}

// checkAttachOp checks a manifest's form: a name, chunks that add up to
// the size, within the limits.
func checkAttachOp(o *TaskAttach) error {
	switch {
	case strings.TrimSpace(o.Name) == "":
		return errors.New("the file has no name")
	case len(o.Name) > MaxFileName:
		return fmt.Errorf("the file name is %d bytes long, over the limit of %d: rename the file", len(o.Name), MaxFileName)
	case !utf8.ValidString(o.Name) || strings.ContainsAny(o.Name, "/\\\x00\n\r"):
		return fmt.Errorf("the file name %q has a path separator, a line break or is not UTF-8: give the file's base name", o.Name)
	case len(o.Type) > MaxFileType || strings.ContainsAny(o.Type, " \n\r"):
		return fmt.Errorf("the media type %q is not one (at most %d bytes, no spaces)", o.Type, MaxFileType)
	case o.Size > attach.MaxFileSize:
		return fmt.Errorf("the file is %d bytes, over the limit of %d (%d MiB) per attachment: split it", o.Size, attach.MaxFileSize, attach.MaxFileSize>>20)
	case len(o.Chunks) > attach.MaxChunks:
		return fmt.Errorf("%d chunks, more than a manifest lists (%d)", len(o.Chunks), attach.MaxChunks)
	case o.Comment == o.Task && !o.Task.IsZero():
		return errors.New("the file names the task itself as its comment")
	case o.Size > 0 && len(o.Chunks) == 0:
		return errors.New("a file with bytes but no chunks")
	}
	var sum uint64
	for _, c := range o.Chunks {
		if c.Size == 0 || c.Size > attach.MaxChunk {
			return fmt.Errorf("a chunk of %d bytes (1 to %d)", c.Size, attach.MaxChunk)
		}
		sum += uint64(c.Size)
	}
	if sum != o.Size {
		return fmt.Errorf("chunks of %d bytes for a file of %d", sum, o.Size)
	}
	return nil
}
