package cli

import (
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
)

// unlock opens the identity of the home: it fails on a missing or broken
// keystore before asking for the passphrase, then asks for it once. It
// returns the passphrase too, for a command that re-seals the keystore.
func (e *Env) unlock(home string) (*identity.Identity, []byte, error) {
	if _, err := keystore.ReadPublic(home); err != nil {
		return nil, nil, explain(err, home)
	}
	pass, err := e.Passphrase(false)
	if err != nil {
		return nil, nil, err
	}
	id, err := keystore.Open(home, pass)
	if err != nil {
		return nil, nil, explain(err, home)
	}
	return id, pass, nil
}

// createIdentity makes a new identity named name and a keystore for it in
// home, protected by a passphrase asked for twice (the worthless test KDF
// with insecureTestKDF: tests only). The caller has checked that home has
// no keystore; Create checks again, atomically.
func (e *Env) createIdentity(home, name string, insecureTestKDF bool) (*identity.Identity, error) {
	pass, err := e.Passphrase(true)
	if err != nil {
		return nil, err
	}
	kdf := keystore.DefaultKDF
	if insecureTestKDF {
		kdf = keystore.InsecureTestKDF
	}
	id, err := identity.New(name, e.Rand)
	if err != nil {
		return nil, err
	}
	if err := keystore.Create(home, id, pass, kdf, e.Rand); err != nil {
		return nil, explain(err, home)
	}
	return id, nil
}
