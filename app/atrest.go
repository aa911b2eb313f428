package app

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/internal/atrest"
	"github.com/pursuance/pursuance/store"
)

// homeKeys are the keys a home's files are encrypted under at rest
// (docs/keystore.md, "The home at rest"). They are derived from the
// member's first Ed25519 signing seed (identity.Identity.HomeSeed), which
// identity.json keeps sealed under the passphrase and which never changes
// (the KEM key and the signing key may be rotated), each
// under its own label: one for events.db, one for sync.db, one for the
// names of the files in secrets/.
type homeKeys struct {
	store     store.Key
	linked    store.Key
	sync      atrest.Key
	names     *atrest.Cipher
	isolation atrest.Key // keys the Tor isolation strings of pursuances (net.go)
}

// Purposes of the keys derived from a home's root key.
const (
	keyEvents  = "events.db"
	keyLinked  = "linked.db"
	keySync    = "sync.db"
	keySecrets = "secrets-names"
	keyTor     = "tor-isolation"
	keyOnion   = "tor-onion-key"
)

// NodeOnionSeed returns the seed of the onion service key of the member's
// node (`pursuance up --tor`), derived from the identity under its own
// label like the home's keys at rest: the node keeps one address for as
// long as the identity lasts, and no key file lies in the home for a
// thief to read or to serve the address with (docs/tor.md).
func NodeOnionSeed(id *identity.Identity) [32]byte {
	return atrest.Root(id.HomeSeed()).Derive(keyOnion)
}

func deriveHomeKeys(id *identity.Identity) homeKeys {
	root := atrest.Root(id.HomeSeed())
	return homeKeys{
		store:     store.Key(root.Derive(keyEvents)),
		linked:    store.Key(root.Derive(keyLinked)),
		sync:      root.Derive(keySync),
		names:     atrest.NewCipher(root.Derive(keySecrets)),
		isolation: root.Derive(keyTor),
	}
}

// secretsNameDomain is the domain the names of files in secrets/ are
// sealed in.
const secretsNameDomain = "pursuance/v1/secrets-file"

// secretsName is the name of the file in secrets/ that keeps p's secrets:
// p sealed deterministically (atrest.Cipher.SealFixed), in hex, so that the
// directory does not list the pursuances this member belongs to, and p can
// be read back from the name alone.
func (n *Node) secretsName(p event.ID) string {
	return hex.EncodeToString(n.keys.names.SealFixed(secretsNameDomain, p[:]))
}

// secretsID reads the pursuance ID back from a file name in secrets/.
func (k homeKeys) secretsID(name string) (event.ID, bool) {
	b, err := hex.DecodeString(name)
	if err != nil {
		return event.ID{}, false
	}
	v, err := k.names.OpenFixed(secretsNameDomain, b)
	if err != nil || len(v) != event.IDSize {
		return event.ID{}, false
	}
	return event.ID(v), true
}

// migrateSecretNames renames the files of secrets/ that earlier versions
// named after their pursuance's ID in the clear.
func migrateSecretNames(home string, k homeKeys) error {
	dir := filepath.Join(home, secretsDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	n := &Node{keys: k, folds: new(foldCache)}
	renamed := false
	for _, e := range ents {
		p, err := event.ParseID(e.Name())
		if err != nil {
			continue
		}
		if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(dir, n.secretsName(p))); err != nil {
			return fmt.Errorf("rename the secrets of %s: %w", p.Short(), err)
		}
		renamed = true
	}
	if !renamed {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
