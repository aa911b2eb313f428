package nodesock

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Version is the version of the protocol; the server's hello names it and
// a request carries it. A client and server that differ do not talk (the
// client runs the command itself).
const Version = 1

// Frame kinds. The server sends Hello on accepting, then, once it has read
// a Request, Stdout and Stderr chunks in the order the command wrote them
// and one Exit; or Refused when it will not run the request.
const (
	KindHello   byte = 'h'
	KindRequest byte = 'q'
	KindStdout  byte = 'o'
	KindStderr  byte = 'e'
	KindExit    byte = 'x'
	KindRefused byte = 'r'
)

// Limits of what crosses the socket.
const (
	// MaxFrame bounds one frame's data; larger output is sent in several.
	MaxFrame = 1 << 20
	// MaxArgs bounds a request's arguments, MaxEnv its variables.
	MaxArgs = 1024
	MaxEnv  = 64
)

// Request is what a client asks: a command line to run in the node, as
// it would run in the client's own process, with the environment
// variables that commands read.
type Request struct {
	Version int               `json:"v"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env,omitempty"`
	// Token is the Windows server's token (Listen writes it beside the
	// address); empty on Unix, where the socket's file modes do its work.
	Token string `json:"token,omitempty"`
}

// Hello is the server's first frame.
type Hello struct {
	Version int `json:"v"`
}

// Exit is the last frame of an answer: the command's exit status.
type Exit struct {
	Code int `json:"code"`
}

// WriteFrame writes one frame: its kind, the length of data (4 bytes, big
// endian) and data.
func WriteFrame(w io.Writer, kind byte, data []byte) error {
	if len(data) > MaxFrame {
		return fmt.Errorf("nodesock: a frame of %d bytes is over the limit of %d", len(data), MaxFrame)
	}
	var h [5]byte
	h[0] = kind
	binary.BigEndian.PutUint32(h[1:], uint32(len(data)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// WriteJSON writes v as the data of one frame of kind.
func WriteJSON(w io.Writer, kind byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFrame(w, kind, b)
}

// ReadFrame reads one frame; a length over MaxFrame is an error.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("nodesock: a frame of %d bytes is over the limit of %d", n, MaxFrame)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return 0, nil, err
	}
	return h[0], data, nil
}

// ReadRequest reads a client's request and checks its bounds.
func ReadRequest(r io.Reader) (*Request, error) {
	kind, data, err := ReadFrame(r)
	if err != nil {
		return nil, err
	}
	if kind != KindRequest {
		return nil, fmt.Errorf("nodesock: expected a request, got a frame of kind %q", kind)
	}
	var req Request
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, errors.New("nodesock: the request is not valid JSON")
	}
	if req.Version != Version {
		return nil, fmt.Errorf("nodesock: request of protocol version %d, this node speaks %d", req.Version, Version)
	}
	if len(req.Args) > MaxArgs || len(req.Env) > MaxEnv {
		return nil, fmt.Errorf("nodesock: a request has at most %d arguments and %d variables", MaxArgs, MaxEnv)
	}
	return &req, nil
}

// StreamWriter is an io.Writer that sends what is written to it as frames
// of one kind on a connection shared with other StreamWriters (Stdout and
// Stderr): writes are whole frames, so they interleave in the order they
// were made.
type StreamWriter struct {
	mu   *sync.Mutex
	w    io.Writer
	kind byte
}

// NewStreams returns the writers of a command's stdout and stderr on w.
func NewStreams(w io.Writer) (stdout, stderr *StreamWriter) {
	mu := new(sync.Mutex)
	return &StreamWriter{mu: mu, w: w, kind: KindStdout}, &StreamWriter{mu: mu, w: w, kind: KindStderr}
}

func (s *StreamWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	done := 0
	for done < len(p) {
		n := min(len(p)-done, MaxFrame)
		if err := WriteFrame(s.w, s.kind, p[done:done+n]); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// WriteExit sends the exit frame, after whatever the streams sent.
func (s *StreamWriter) WriteExit(code int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return WriteJSON(s.w, KindExit, Exit{Code: code})
}
