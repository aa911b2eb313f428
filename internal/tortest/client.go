package tortest

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// clientTimeout bounds a client's start, to bootstrapped 100%. On an
	// idle machine it takes one to three seconds once the network is up.
	clientTimeout = 90 * time.Second
	// controlTimeout bounds one control-port exchange.
	controlTimeout = 10 * time.Second
	// bootstrapPoll is how often StartClient asks for bootstrap progress.
	bootstrapPoll = 100 * time.Millisecond
	// maxControlReply bounds the lines of one control-port reply.
	maxControlReply = 10000
	// controlPortFile is where, in its DataDirectory, a client writes
	// the address of its control port.
	controlPortFile = "control.port"
)

// clientOwnOptions are set by StartClient; extra lines may not set them
// (lower case, as tor compares options).
var clientOwnOptions = []string{
	"datadirectory", "socksport", "controlport", "controlportwritetofile",
	"cookieauthentication", "cookieauthfile", "__owningcontrollerprocess",
	"dirauthority", "testingtornetwork", "usedefaultfallbackdirs",
}

// Client is a tor client of a Network, started by StartClient for one
// test.
type Client struct {
	// SocksAddr is the client's SOCKS5 port, 127.0.0.1:port. With
	// ExtendedErrors, a failed onion connection answers with tor's
	// extended codes (0xF0–0xF7: descriptor not found, intro failed, …).
	SocksAddr string
	// ControlAddr is its control port, 127.0.0.1:port, authenticated by
	// the cookie in DataDir/control_auth_cookie (see Control).
	ControlAddr string
	// DataDir is its DataDirectory, under the test's t.TempDir(); its log
	// is DataDir/notice.log.
	DataDir string
	// Bootstrapped is how long it took from start to bootstrapped 100%.
	Bootstrapped time.Duration

	proc *process
}

// StartClient starts a tor client of the network for t and returns once
// it has bootstrapped to 100%: its own DataDirectory under t.TempDir(),
// SOCKS and control ports on 127.0.0.1, and extraTorrc appended to its
// torrc (for instance HiddenServiceDir and HiddenServicePort lines, for an
// onion service). extraTorrc may not set what StartClient sets (ports,
// DataDirectory, authorities) and must pass CheckTorrc. The client stops
// at the end of the test; its log goes to the test's log if the test
// failed. It fails t if the client does not bootstrap within 90 seconds.
//
// Tests of the product start tor through their own package, with
// ClientTorrc; StartClient is for tests that need a plain tor.
func (n *Network) StartClient(t testing.TB, extraTorrc ...string) *Client {
	t.Helper()
	c, err := n.startClient(t.Context(), t.TempDir(), extraTorrc)
	if c != nil && c.proc != nil {
		t.Cleanup(func() {
			c.Stop()
			if t.Failed() {
				t.Logf("tor client %s:\n%s", c.DataDir, c.proc.diagnostics())
			}
		})
	}
	if err != nil {
		t.Fatalf("start a tor client: %v", err)
	}
	return c
}

// startClient is StartClient with errors returned. It returns the Client
// whenever tor was started, so that the caller stops it.
func (n *Network) startClient(ctx context.Context, dir string, extraTorrc []string) (*Client, error) {
	for _, line := range extraTorrc {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		key := strings.ToLower(strings.TrimLeft(f[0], "+/"))
		for _, own := range clientOwnOptions {
			if key == own {
				return nil, fmt.Errorf("tortest: extra torrc line %q sets %s, which StartClient sets", line, f[0])
			}
		}
	}
	start := time.Now()
	// ClientTorrc's lines, as they are, so that a test of this client
	// tests what the product's tor gets.
	torrc := append(n.ClientTorrc(), localTorrc(dir)...)
	torrc = append(torrc,
		"SocksPort 127.0.0.1:auto ExtendedErrors",
		"ControlPort 127.0.0.1:auto",
		"ControlPortWriteToFile "+filepath.Join(dir, controlPortFile),
		"CookieAuthentication 1",
	)
	torrc = append(torrc, extraTorrc...)
	proc, err := startTor("client "+filepath.Base(dir), dir, torrc)
	if err != nil {
		return nil, err
	}
	c := &Client{DataDir: dir, proc: proc}
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	if c.ControlAddr, err = c.waitControlPort(ctx); err != nil {
		return c, err
	}
	if err := c.waitBootstrapped(ctx); err != nil {
		return c, err
	}
	c.Bootstrapped = time.Since(start)
	socks, err := c.Control(ctx, "GETINFO net/listeners/socks")
	if err != nil {
		return c, err
	}
	for _, l := range socks {
		if v, ok := strings.CutPrefix(l, "net/listeners/socks="); ok {
			c.SocksAddr = strings.Trim(strings.Fields(v)[0], `"`)
		}
	}
	if c.SocksAddr == "" {
		return c, fmt.Errorf("tortest: tor names no SOCKS listener: %q", socks)
	}
	return c, nil
}

// Stop stops the client's tor now, and returns once it has exited; the
// end of the test would. It may be called more than once.
func (c *Client) Stop() { c.proc.stop() }

// waitControlPort waits for tor to write the address of its control port.
func (c *Client) waitControlPort(ctx context.Context) (string, error) {
	path := filepath.Join(c.DataDir, controlPortFile)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			addr, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "PORT=")
			if !ok {
				return "", fmt.Errorf("tortest: %s holds %q, not PORT=address", path, b)
			}
			return addr, nil
		}
		if err := c.proc.exited(); err != nil {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("tortest: no control port from tor: %w\n%s", ctx.Err(), c.proc.diagnostics())
		case <-time.After(bootstrapPoll):
		}
	}
}

// waitBootstrapped polls the bootstrap phase until tor reports 100%.
func (c *Client) waitBootstrapped(ctx context.Context) error {
	last := ""
	for {
		lines, err := c.Control(ctx, "GETINFO status/bootstrap-phase")
		if err == nil && len(lines) > 0 {
			last = lines[0]
			if strings.Contains(last, " PROGRESS=100 ") {
				return nil
			}
		}
		if err := c.proc.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tortest: tor did not bootstrap: %w (last: %s)\n%s", ctx.Err(), last, c.proc.diagnostics())
		case <-time.After(bootstrapPoll):
		}
	}
}

// Control sends one command to the client's control port, on a connection
// of its own authenticated with the cookie, and returns the reply's lines
// without their status codes ("250-", "250 ", data lines as they are). A
// reply other than 2xx is an error carrying tor's text. The connection is
// closed afterwards, so an ADD_ONION service needs Flags=Detach to outlive
// it.
func (c *Client) Control(ctx context.Context, command string) ([]string, error) {
	conn, err := c.dialControl(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.do(command)
}

// controlConn is an authenticated connection to a tor control port.
type controlConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *Client) dialControl(ctx context.Context) (*controlConn, error) {
	cookie, err := os.ReadFile(filepath.Join(c.DataDir, "control_auth_cookie"))
	if err != nil {
		return nil, fmt.Errorf("tortest: control cookie: %w", err)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.ControlAddr)
	if err != nil {
		return nil, fmt.Errorf("tortest: control port: %w", err)
	}
	deadline := time.Now().Add(controlTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = nc.SetDeadline(deadline)
	conn := &controlConn{Conn: nc, r: bufio.NewReader(nc)}
	if _, err := conn.do("AUTHENTICATE " + hex.EncodeToString(cookie)); err != nil {
		nc.Close()
		return nil, err
	}
	return conn, nil
}

// do sends command and reads its reply (control-spec: "250-" mid lines,
// "250+" data lines ended by ".", a final "250 " line).
func (c *controlConn) do(command string) ([]string, error) {
	if strings.ContainsAny(command, "\r\n") {
		return nil, errors.New("tortest: a control command is one line")
	}
	if _, err := fmt.Fprintf(c, "%s\r\n", command); err != nil {
		return nil, fmt.Errorf("tortest: control port: %w", err)
	}
	return c.reply()
}

// reply reads one reply, and returns an error for a status other than 2xx.
func (c *controlConn) reply() ([]string, error) {
	var lines []string
	for len(lines) < maxControlReply {
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) < 4 {
			return nil, fmt.Errorf("tortest: control port: malformed line %q", line)
		}
		code, sep, text := line[:3], line[3], line[4:]
		lines = append(lines, text)
		switch sep {
		case '+':
			for {
				data, err := c.readLine()
				if err != nil {
					return nil, err
				}
				if data == "." {
					break
				}
				lines = append(lines, strings.TrimPrefix(data, "."))
			}
		case ' ':
			if n, err := strconv.Atoi(code); err != nil || n < 200 || n > 299 {
				return nil, fmt.Errorf("tortest: tor answered %s %s", code, text)
			}
			return lines, nil
		}
	}
	return nil, errors.New("tortest: control port: reply too long")
}

func (c *controlConn) readLine() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("tortest: control port: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
