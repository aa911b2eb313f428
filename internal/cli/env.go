package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"

	"golang.org/x/term"
)

// Env is what commands run in: standard streams, environment variables, a
// source of randomness, the terminal if there is one, and the values of the
// global flags. Tests build their own; Main builds one from the process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv returns the value of an environment variable, "" when unset.
	Getenv func(string) string
	// Rand is the source of all key material; crypto/rand.Reader in Main.
	Rand io.Reader
	// Terminal prompts for passphrases; nil when stdin is not a terminal.
	Terminal Terminal
	// Context, when set, is the commands' context: ending it stops a
	// long-running command (up, relay) as SIGTERM does. Tests set it.
	Context context.Context

	// Global flags, set by NewRoot's flag parsing.
	home           string
	passphraseFile string
	json           bool
	unchecked      bool
	offline        bool
	// unlocked is the identity once a long-running command (up) has
	// unlocked it, so that it asks for the passphrase once.
	unlocked *identity.Identity
	// rotated is what healing left, by pursuance, when openNode
	// finished a rotation of the signing key (id rotate reports it).
	rotated map[event.ID][]string
	// rotatePass is the passphrase id rotate read, so that finishing
	// the rotation does not ask for it again at a terminal.
	rotatePass []byte
	sync       syncStatus // the node's last round (up)
	// nodeRelay is the URL of this home's node's relay, when up runs it
	// (or invite found it running): invites name it (app.Options).
	nodeRelay string
	// nodeOnion is the node's onion service URL when it runs with Tor:
	// invites name it instead of nodeRelay (nodeInvite).
	nodeOnion string
	admitter  *app.Admitter // what the node's embedded relay stores (pursuance up)
	// peerBackoff keeps other members' nodes that did not answer out of
	// the node's rounds for a while (peers.go).
	peerBackoff app.PeerBackoff
	// peersSkipped is set once the node has logged that it cannot reach
	// the members' nodes announced (no Tor), so that it says so once.
	peersSkipped bool
	// log is the logger of the node's warnings (a relay's lies): a line
	// per record for one-shot commands; up sets a daemon's text log.
	log *slog.Logger
	// tor is what this process knows of Tor (tor.go).
	tor torState

	// relayTimeout is how long syncs wait for a relay that sends nothing
	// (app.Options.RelayTimeout; 0: the default). Tests shorten it.
	relayTimeout time.Duration

	// parsed is set once the command line has parsed, so that Run can
	// tell usage errors from runtime errors.
	parsed bool
	// served is set on the Env of a command the node runs for a client
	// (nodeserve.go): its home is servedHome whatever the command line
	// says, and it is never sent to a node again.
	served     bool
	servedHome string
	// folds is shared by the nodes this Env opens: the served commands
	// of one node share their folds (nodeserve.go).
	folds *app.FoldCache
	// keeps is set while `pursuance up` runs in this process: it keeps
	// its states in memory, and its nodes leave checkpoints to its own
	// schedule (app.Options.CheckpointWrites is for lone commands).
	keeps bool
	// onServe, when set, is told of the command server once it listens
	// (tests).
	onServe func(*commandServer)
}

// Terminal reads a passphrase from the user without echoing it.
type Terminal interface {
	// ReadPassword shows prompt and returns the line typed, without its
	// line ending.
	ReadPassword(prompt string) ([]byte, error)
}

// Main runs pursuance with the process's arguments, streams and environment,
// and returns the exit status: 0 on success, 1 on a runtime error, 2 on a
// usage error.
func Main() int {
	e := &Env{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
		Rand:   rand.Reader,
	}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		e.Terminal = ttyTerminal{fd: fd, out: os.Stderr}
	}
	return Run(os.Args[1:], e)
}

// Run runs pursuance with args (without the program name) in e and returns
// the exit status. An error is printed to e.Stderr as one line,
// "pursuance: REASON"; a usage error (exit status 2) ends the line by
// naming the help to read: "(see `pursuance help CMD`)".
func Run(args []string, e *Env) int {
	// While this home's node (or agent) runs, it runs the command
	// (remote.go): no passphrase to derive, no log to fold.
	if code, ok := e.viaNode(args); ok {
		return code
	}
	root := NewRoot(e)
	root.SetArgs(args)
	root.SetIn(e.Stdin)
	root.SetOut(e.Stdout)
	root.SetErr(e.Stderr)
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	cmd, err := root.ExecuteContextC(ctx)
	e.closeTor()
	if err == nil {
		return 0
	}
	if !e.parsed || isUsageError(err) {
		if cmd == nil {
			cmd = root
		}
		help := "pursuance help"
		if cmd != root {
			help += " " + strings.TrimPrefix(cmd.CommandPath(), root.Name()+" ")
		}
		fmt.Fprintf(e.Stderr, "pursuance: %s (see `%s`)\n", oneLine(err.Error()), help)
		return 2
	}
	fmt.Fprintf(e.Stderr, "pursuance: %s\n", oneLine(err.Error()))
	return 1
}

// logger returns the logger of the node's warnings: e.log when set, else
// one line per record on stderr.
func (e *Env) logger() *slog.Logger {
	if e.log == nil {
		e.log = newLineLogger(e.Stderr, slog.LevelWarn)
	}
	return e.log
}

// oneLine joins the lines of a message, so an error is always one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// printJSON writes v to stdout as one JSON document.
func (e *Env) printJSON(v any) error {
	enc := json.NewEncoder(e.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Home returns the home directory selected by --home, PURSUANCE_HOME,
// XDG_DATA_HOME or HOME, in that order, as an absolute path. It does not
// create it.
func (e *Env) Home() (string, error) {
	if e.served {
		return e.servedHome, nil
	}
	dir := e.home
	if dir == "" {
		dir = e.Getenv("PURSUANCE_HOME")
	}
	if dir == "" {
		// The XDG spec says relative values are to be ignored.
		if x := e.Getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
			dir = filepath.Join(x, "pursuance")
		}
	}
	if dir == "" {
		h := e.Getenv("HOME")
		if h == "" {
			return "", errors.New("cannot choose a home directory: pass --home DIR or set PURSUANCE_HOME")
		}
		dir = filepath.Join(h, ".local", "share", "pursuance")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("home directory %s: %w", dir, err)
	}
	return abs, nil
}

// errNoPassphrase is returned when no passphrase source is available.
var errNoPassphrase = errors.New("no passphrase: set PURSUANCE_PASSPHRASE, pass --passphrase-file, or run in a terminal")

// maxPassphraseFile bounds what is read from --passphrase-file.
const maxPassphraseFile = 64 << 10

// Passphrase returns the passphrase from, in order: PURSUANCE_PASSPHRASE when
// set and non-empty; the first line of --passphrase-file; a prompt on the
// terminal, asked twice when confirm is set. It never returns an empty
// passphrase: an empty file or answer is an error, and with no source at all
// the error says how to provide one.
func (e *Env) Passphrase(confirm bool) ([]byte, error) {
	if p := e.Getenv("PURSUANCE_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	if e.passphraseFile != "" {
		return readPassphraseFile(e.passphraseFile)
	}
	if e.Terminal == nil {
		return nil, errNoPassphrase
	}
	p, err := e.Terminal.ReadPassword("Passphrase: ")
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("the passphrase is empty")
	}
	if confirm {
		q, err := e.Terminal.ReadPassword("Repeat the passphrase: ")
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		if string(p) != string(q) {
			return nil, errors.New("the two passphrases differ")
		}
	}
	return p, nil
}

// readPassphraseFile returns the first line of the file at path, without its
// line ending. Everything after the first line is ignored.
func readPassphraseFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPassphraseFile+1))
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	if len(data) > maxPassphraseFile {
		return nil, fmt.Errorf("passphrase file %s is larger than %d bytes", path, maxPassphraseFile)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return nil, fmt.Errorf("passphrase file %s: the first line is empty", path)
	}
	return []byte(line), nil
}

// ttyTerminal prompts on out and reads from the terminal fd without echo.
type ttyTerminal struct {
	fd  int
	out io.Writer
}

func (t ttyTerminal) ReadPassword(prompt string) ([]byte, error) {
	fmt.Fprint(t.out, prompt)
	p, err := term.ReadPassword(t.fd)
	fmt.Fprintln(t.out)
	return p, err
}
