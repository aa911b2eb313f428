package app

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/atrest"
)

// The member's last visit of each pursuance (the web UI's inbox marks
// what came after it as unread, package activity): for each author, the
// highest seq seen. It is kept in the home's seen/ directory, one file per
// pursuance, encrypted at rest like the home's other files (under its own
// key, derived from the home's root under keySeen) and named by a keyed
// hash of the pursuance, so the directory shows no more than how many
// pursuances were visited. It is this home's alone: a member's other
// devices keep their own.
const (
	seenDir  = "seen"
	keySeen  = "seen"
	seenName = "seen-name"
	// maxSeenFile bounds a mark's file: 64 hex digits and a number per
	// author, for many more authors than a pursuance has.
	maxSeenFile = 1 << 20
)

func (n *Node) seenCipher() *atrest.Cipher {
	return atrest.NewCipher(atrest.Root(n.id.HomeSeed()).Derive(keySeen))
}

func (n *Node) seenPath(c *atrest.Cipher, p event.ID) string {
	b := c.Blind(seenName, p[:])
	return filepath.Join(n.home, seenDir, hex.EncodeToString(b[:16]))
}

// Seen returns the member's mark of pursuance p on this home, keyed by
// author (hex), nil when it never visited.
func (n *Node) Seen(p event.ID) (map[string]uint64, error) {
	c := n.seenCipher()
	box, err := os.ReadFile(n.seenPath(c, p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(box) > maxSeenFile {
		return nil, fmt.Errorf("%s is over %d KiB: remove it (the inbox then shows everything as unread)", n.seenPath(c, p), maxSeenFile>>10)
	}
	pt, err := c.Open(nil, box, p[:])
	if err != nil {
		return nil, fmt.Errorf("the last-visit mark %s does not open with this home's key: remove it (the inbox then shows everything as unread)", n.seenPath(c, p))
	}
	var m map[string]uint64
	if err := json.Unmarshal(pt, &m); err != nil {
		return nil, fmt.Errorf("the last-visit mark %s is damaged: remove it", n.seenPath(c, p))
	}
	return m, nil
}

// SetSeen records the member's mark of pursuance p on this home.
func (n *Node) SetSeen(p event.ID, mark map[string]uint64) error {
	pt, err := json.Marshal(mark)
	if err != nil {
		return err
	}
	c := n.seenCipher()
	path := n.seenPath(c, p)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// Written beside, then renamed: a crash leaves the old mark or the
	// new one, never half of one.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, c.Seal(nil, nil, pt, p[:]), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
