package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pursuance/pursuance/identity/keystore"
)

// nodeFile is home/node.json: the addresses this home's node (`pursuance
// up`) last served on. up listens on them again, so that the web UI's URL
// and the relay address that invite codes name stay the same across runs.
type nodeFile struct {
	Relay string `json:"relay,omitempty"` // the embedded relay's URL
	UI    string `json:"ui,omitempty"`    // the web UI's URL
}

const nodeFileName = "node.json"

// readNodeFile reads home's node file; a home without one has the zero
// nodeFile.
func readNodeFile(home string) (nodeFile, error) {
	var nf nodeFile
	b, err := os.ReadFile(filepath.Join(home, nodeFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nf, nil
	}
	if err != nil {
		return nf, err
	}
	if err := json.Unmarshal(b, &nf); err != nil {
		return nodeFile{}, fmt.Errorf("%s: %w", filepath.Join(home, nodeFileName), err)
	}
	return nf, nil
}

func writeNodeFile(home string, nf nodeFile) error {
	b, err := json.MarshalIndent(nf, "", "  ")
	if err != nil {
		return err
	}
	return keystore.WriteFileAtomic(home, nodeFileName, append(b, '\n'))
}

// hostPort returns the host:port of an http:// URL such as the node file
// holds ("http://127.0.0.1:8765/" gives "127.0.0.1:8765").
func hostPort(url string) string {
	return strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
}

// listenAgain listens on the address flag gives, or, when the user left
// the flag at its default, on the address of the last run (last, a URL)
// if it is a loopback one, falling back to the default when it is taken.
// (An address the user once gave to serve peers beyond this machine is
// not taken again unasked.)
func listenAgain(flag string, changed bool, last string) (net.Listener, error) {
	if reusable(last, changed) {
		if ln, err := net.Listen("tcp", hostPort(last)); err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", flag)
}

// reusable reports whether up tries the last run's address (a URL) again:
// the user left the flag alone and it is a loopback address.
func reusable(last string, changed bool) bool {
	h, _, err := net.SplitHostPort(hostPort(last))
	return !changed && err == nil && net.ParseIP(h).IsLoopback()
}

// runningNodeRelay returns the URL of the relay of this home's node if the
// node is running (its relay accepts a connection), else "".
func runningNodeRelay(home string) string {
	nf, err := readNodeFile(home)
	if err != nil || nf.Relay == "" {
		return ""
	}
	c, err := net.DialTimeout("tcp", hostPort(nf.Relay), 500*time.Millisecond)
	if err != nil {
		return ""
	}
	c.Close()
	return nf.Relay
}
