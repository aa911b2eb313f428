package tortest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

const (
	// dirFetchTimeout bounds one request to a node's DirPort.
	dirFetchTimeout = 5 * time.Second
	// maxDirDocument bounds what is read of one answer; a consensus of
	// five relays is a few kilobytes.
	maxDirDocument = 1 << 20
)

// dirClient asks DirPorts on 127.0.0.1 directly: never through a proxy
// from the environment.
var dirClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	Timeout:   dirFetchTimeout,
}

// consensus is what waitUp needs of a microdescriptor consensus.
type consensus struct {
	validAfter string
	routers    []router
}

type router struct {
	nickname string
	flags    []string
	md       string // microdescriptor digest, base64 without padding
}

// fetchConsensus gets and parses the microdescriptor consensus a node
// serves on its DirPort.
func fetchConsensus(ctx context.Context, dirPort int) (*consensus, error) {
	body, err := dirGet(ctx, dirPort, "/tor/status-vote/current/consensus-microdesc")
	if err != nil {
		return nil, err
	}
	return parseConsensus(body)
}

// parseConsensus reads the lines of a microdescriptor consensus that
// matter here (dir-spec: "r", "m" and "s" items, one router each).
func parseConsensus(body string) (*consensus, error) {
	c := &consensus{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "valid-after":
			c.validAfter = strings.Join(f[1:], " ")
		case "r":
			if len(f) < 2 {
				return nil, fmt.Errorf("consensus: bad r line %q", sc.Text())
			}
			c.routers = append(c.routers, router{nickname: f[1]})
		case "m", "s":
			if len(c.routers) == 0 {
				return nil, fmt.Errorf("consensus: %q before any r line", sc.Text())
			}
			r := &c.routers[len(c.routers)-1]
			if f[0] == "m" && len(f) > 1 {
				r.md = f[1]
			} else {
				r.flags = f[1:]
			}
		}
	}
	if c.validAfter == "" {
		return nil, fmt.Errorf("consensus: no valid-after line")
	}
	return c, sc.Err()
}

// complete returns nil when c lists every node with flagsNeeded and a
// microdescriptor.
func (c *consensus) complete(nodes []*node) error {
	byName := map[string]router{}
	for _, r := range c.routers {
		byName[r.nickname] = r
	}
	for _, nd := range nodes {
		r, ok := byName[nd.name]
		if !ok {
			return fmt.Errorf("consensus of %s lacks %s", c.validAfter, nd.name)
		}
		for _, f := range flagsNeeded {
			if !slices.Contains(r.flags, f) {
				return fmt.Errorf("consensus of %s: %s has flags %v, not %s", c.validAfter, nd.name, r.flags, f)
			}
		}
		if r.md == "" {
			return fmt.Errorf("consensus of %s: %s has no microdescriptor", c.validAfter, nd.name)
		}
	}
	return nil
}

func (c *consensus) microdescs() []string {
	var mds []string
	for _, r := range c.routers {
		mds = append(mds, r.md)
	}
	return mds
}

// fetchMicrodescs returns nil when the node behind dirPort serves every
// microdescriptor in mds.
func fetchMicrodescs(ctx context.Context, dirPort int, mds []string) error {
	body, err := dirGet(ctx, dirPort, "/tor/micro/d/"+strings.Join(mds, "-"))
	if err != nil {
		return err
	}
	if got := strings.Count(body, "\nonion-key") + boolInt(strings.HasPrefix(body, "onion-key")); got != len(mds) {
		return fmt.Errorf("serves %d of %d microdescriptors", got, len(mds))
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// dirGet fetches path from the DirPort on 127.0.0.1.
func dirGet(ctx context.Context, dirPort int, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", dirPort, path), nil)
	if err != nil {
		return "", err
	}
	// Tor compresses (deflate) for any client that accepts it, and Go
	// asks for gzip unless told otherwise.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := dirClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDirDocument))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return string(body), nil
}
