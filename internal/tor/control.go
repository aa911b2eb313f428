package tor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits on what a control port may send, so that a wrong address given
// to --tor-control (or a hostile process listening there) cannot make
// this process hold unbounded memory.
const (
	maxLine       = 64 << 10 // bytes of one reply line
	maxReplyLines = 4096     // lines of one reply
	maxReplyBytes = 4 << 20  // bytes of one reply, data included
)

// ErrControlClosed is wrapped by the errors of commands on a control
// connection that has ended: tor stopped, or the connection dropped.
var ErrControlClosed = errors.New("tor: the control connection is closed")

// reply is one reply, or one asynchronous event (status 650), from the
// control port (control-spec §2.3, §4).
type reply struct {
	status int // of the last line, which decides
	lines  []replyLine
}

// replyLine is one line of a reply: "250-key=value", "250+key=" with
// data lines following (dot-unstuffed, joined with "\n"), or "250 OK".
type replyLine struct {
	status int
	text   string
	data   string
	isData bool
}

// ok reports whether the reply is a success (2xx).
func (r *reply) ok() bool { return r.status >= 200 && r.status < 300 }

// err returns the reply as an error when it is not a success.
func (r *reply) err(cmd string) error {
	if r.ok() {
		return nil
	}
	text := ""
	if len(r.lines) > 0 {
		text = r.lines[len(r.lines)-1].text
	}
	return &ControlError{Command: cmd, Status: r.status, Text: text}
}

// ControlError is tor's refusal of a control command: the command's
// keyword, tor's status code and tor's words.
type ControlError struct {
	Command string
	Status  int
	Text    string
}

func (e *ControlError) Error() string {
	return fmt.Sprintf("tor refused %s: %d %s", e.Command, e.Status, oneLine(e.Text, 200))
}

// oneLine cuts s to n bytes and replaces what is not printable ASCII, so
// that text a control port sends cannot forge lines in a log.
func oneLine(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// readReply reads one reply or event.
func readReply(r *bufio.Reader) (*reply, error) {
	var rep reply
	total := 0
	for {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		total += len(line)
		if len(line) < 4 {
			return nil, fmt.Errorf("tor: control: malformed line %q", oneLine(line, 80))
		}
		status, err := strconv.Atoi(line[:3])
		if err != nil || status < 100 || status > 999 {
			return nil, fmt.Errorf("tor: control: malformed status in %q", oneLine(line, 80))
		}
		l := replyLine{status: status, text: line[4:]}
		sep := line[3]
		switch sep {
		case ' ', '-':
		case '+':
			l.isData = true
			var data strings.Builder
			for {
				d, err := readLine(r)
				if err != nil {
					return nil, err
				}
				if d == "." {
					break
				}
				total += len(d) + 1
				if total > maxReplyBytes {
					return nil, fmt.Errorf("tor: control: a reply of more than %d bytes", maxReplyBytes)
				}
				d = strings.TrimPrefix(d, ".") // dot-unstuffing: ".." stands for "."
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(d)
			}
			l.data = data.String()
		default:
			return nil, fmt.Errorf("tor: control: malformed separator in %q", oneLine(line, 80))
		}
		if len(rep.lines) >= maxReplyLines || total > maxReplyBytes {
			return nil, fmt.Errorf("tor: control: a reply of more than %d lines or %d bytes", maxReplyLines, maxReplyBytes)
		}
		rep.lines = append(rep.lines, l)
		if sep == ' ' {
			rep.status = status
			return &rep, nil
		}
	}
}

// readLine reads one line without its CRLF (a bare LF is taken too).
func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > maxLine {
			return "", fmt.Errorf("tor: control: a line of more than %d bytes", maxLine)
		}
		if !isPrefix {
			return strings.TrimSuffix(string(b), "\r"), nil
		}
	}
}

// controlConn is one authenticated (or authenticating) connection to a
// control port. Commands are serialized; replies are matched to commands
// in order, and asynchronous events (650) go to onEvent. It is safe for
// concurrent use.
type controlConn struct {
	c net.Conn

	wmu     sync.Mutex    // serializes writing a command and queuing its waiter
	qmu     sync.Mutex    // guards pending
	pending []chan *reply // waiters, in the order their commands went out

	onEvent func(*reply) // called on the reader's goroutine

	done chan struct{} // closed when the reader stops
	err  error         // why it stopped; set before done is closed
}

func newControlConn(c net.Conn, onEvent func(*reply)) *controlConn {
	cc := &controlConn{c: c, onEvent: onEvent, done: make(chan struct{})}
	go cc.readLoop()
	return cc
}

func (cc *controlConn) readLoop() {
	r := bufio.NewReaderSize(cc.c, 16<<10)
	for {
		rep, err := readReply(r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				err = ErrControlClosed
			} else {
				err = fmt.Errorf("%w: %v", ErrControlClosed, err)
			}
			cc.err = err
			cc.c.Close()
			close(cc.done)
			return
		}
		if rep.status == 650 {
			if cc.onEvent != nil {
				cc.onEvent(rep)
			}
			continue
		}
		cc.qmu.Lock()
		if len(cc.pending) == 0 {
			cc.qmu.Unlock()
			continue // nobody asked: tor's own notice before closing, say
		}
		w := cc.pending[0]
		cc.pending = cc.pending[1:]
		cc.qmu.Unlock()
		w <- rep // buffered: a waiter that gave up does not block us
	}
}

// command sends one command line and returns tor's reply, which may be a
// refusal (see reply.err). A context that ends first returns at once; the
// reply, when it comes, is then dropped, so the connection stays usable.
func (cc *controlConn) command(ctx context.Context, line string) (*reply, error) {
	if strings.ContainsAny(line, "\r\n\x00") {
		return nil, errors.New("tor: control: a command with a line break")
	}
	w := make(chan *reply, 1)
	cc.wmu.Lock()
	select {
	case <-cc.done:
		cc.wmu.Unlock()
		return nil, cc.err
	default:
	}
	cc.qmu.Lock()
	cc.pending = append(cc.pending, w)
	cc.qmu.Unlock()
	if d, ok := ctx.Deadline(); ok {
		cc.c.SetWriteDeadline(d)
	}
	_, err := io.WriteString(cc.c, line+"\r\n")
	cc.c.SetWriteDeadline(time.Time{})
	cc.wmu.Unlock()
	if err != nil {
		// Half a command may have gone out: the connection is unusable.
		cc.c.Close()
		return nil, fmt.Errorf("%w: %v", ErrControlClosed, err)
	}
	select {
	case rep := <-w:
		return rep, nil
	case <-cc.done:
		select {
		case rep := <-w:
			return rep, nil
		default:
		}
		return nil, cc.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// do sends a command and returns its reply, or tor's refusal as a
// *ControlError.
func (cc *controlConn) do(ctx context.Context, line string) (*reply, error) {
	rep, err := cc.command(ctx, line)
	if err != nil {
		return nil, err
	}
	keyword, _, _ := strings.Cut(line, " ")
	if err := rep.err(keyword); err != nil {
		return nil, err
	}
	return rep, nil
}

// close closes the connection; the reader stops.
func (cc *controlConn) close() error {
	err := cc.c.Close()
	<-cc.done
	if errors.Is(err, net.ErrClosed) {
		err = nil // the reader had closed it: tor went first
	}
	return err
}

// getinfo asks for keys and returns their values (data replies joined
// with "\n").
func (cc *controlConn) getinfo(ctx context.Context, keys ...string) (map[string]string, error) {
	rep, err := cc.do(ctx, "GETINFO "+strings.Join(keys, " "))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range rep.lines {
		k, v, ok := strings.Cut(l.text, "=")
		if !ok {
			continue // the final "OK"
		}
		if l.isData {
			v = l.data
		}
		out[k] = v
	}
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("tor: GETINFO %s: not in tor's answer", k)
		}
	}
	return out, nil
}

// arg is one argument of a reply line: a bare word (Key "") or KEY=VALUE.
type arg struct {
	Key, Value string
}

// parseArgs splits a reply line's text into words and KEY=VALUE pairs;
// values may be quoted strings (control-spec §2.1, QuotedString, with C
// escapes).
func parseArgs(s string) ([]arg, error) {
	var out []arg
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return out, nil
		}
		var a arg
		if s[0] == '"' {
			v, rest, err := unquote(s)
			if err != nil {
				return nil, err
			}
			a.Value, s = v, rest
			out = append(out, a)
			continue
		}
		end := strings.IndexAny(s, " =")
		if end < 0 || s[end] == ' ' {
			if end < 0 {
				end = len(s)
			}
			a.Value, s = s[:end], s[end:]
			out = append(out, a)
			continue
		}
		a.Key, s = s[:end], s[end+1:]
		if strings.HasPrefix(s, `"`) {
			v, rest, err := unquote(s)
			if err != nil {
				return nil, fmt.Errorf("tor: control: %s: %w", a.Key, err)
			}
			a.Value, s = v, rest
		} else {
			sp := strings.IndexByte(s, ' ')
			if sp < 0 {
				sp = len(s)
			}
			a.Value, s = s[:sp], s[sp:]
		}
		out = append(out, a)
	}
}

// kv returns the KEY=VALUE arguments of a line's text as a map.
func kv(s string) (map[string]string, error) {
	args, err := parseArgs(s)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, a := range args {
		if a.Key != "" {
			m[a.Key] = a.Value
		}
	}
	return m, nil
}

// unquote reads a quoted string at the start of s and returns its value
// and the rest of s.
func unquote(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", errors.New("not a quoted string")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			i++
			if i >= len(s) {
				return "", "", errors.New("a quoted string ends in a backslash")
			}
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0', '1', '2', '3', '4', '5', '6', '7':
				// Up to three octal digits.
				v, j := 0, i
				for ; j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7'; j++ {
					v = v*8 + int(s[j]-'0')
				}
				if v > 255 {
					return "", "", errors.New("an octal escape past 255")
				}
				b.WriteByte(byte(v))
				i = j - 1
			default:
				b.WriteByte(e) // \\, \", \' and the rest stand for themselves
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("an unterminated quoted string")
}

// quote returns s as a control-protocol quoted string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
