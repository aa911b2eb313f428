package tor

import (
	"context"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"filippo.io/edwards25519"
)

// OnionKey is the secret key of a v3 onion service in tor's expanded
// Ed25519 form: SHA-512 of a 32-byte seed, its first half clamped (the
// scalar), its second half the signing nonce's prefix. ADD_ONION takes it
// as "ED25519-V3:" and its base64.
type OnionKey [64]byte

// onionKeyPrefix starts a key's text form, as tor writes it.
const onionKeyPrefix = "ED25519-V3:"

// OnionKeyFromSeed expands a 32-byte seed as Ed25519 does.
func OnionKeyFromSeed(seed [32]byte) OnionKey {
	k := OnionKey(sha512.Sum512(seed[:]))
	k[0] &= 248
	k[31] &= 63
	k[31] |= 64
	return k
}

// NewOnionKey returns a new key from 32 bytes of rnd.
func NewOnionKey(rnd io.Reader) (OnionKey, error) {
	var seed [32]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return OnionKey{}, err
	}
	return OnionKeyFromSeed(seed), nil
}

// PublicKey returns the service's Ed25519 public key: the scalar times
// the base point.
func (k *OnionKey) PublicKey() [32]byte {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(k[:32])
	if err != nil {
		panic("tor: clamping 32 bytes cannot fail")
	}
	var pub [32]byte
	copy(pub[:], edwards25519.NewIdentityPoint().ScalarBaseMult(s).Bytes())
	return pub
}

// Address returns the service's address, "….onion" (rend-spec-v3 §6).
func (k *OnionKey) Address() string {
	return OnionAddress(k.PublicKey())
}

// onionVersion is the version byte of v3 addresses.
const onionVersion = 3

var onionEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// OnionAddress returns the v3 address of a public key: base32 of the key,
// a two-byte checksum (SHA3-256 of ".onion checksum", the key and the
// version) and the version, then ".onion".
func OnionAddress(pub [32]byte) string {
	raw := append(pub[:], onionChecksum(pub)...)
	raw = append(raw, onionVersion)
	return onionEncoding.EncodeToString(raw) + ".onion"
}

func onionChecksum(pub [32]byte) []byte {
	h := sha3.New256()
	h.Write([]byte(".onion checksum"))
	h.Write(pub[:])
	h.Write([]byte{onionVersion})
	return h.Sum(nil)[:2]
}

// ParseOnionAddress checks a v3 onion address (with or without ".onion",
// any case) and returns its public key.
func ParseOnionAddress(s string) ([32]byte, error) {
	var pub [32]byte
	name := strings.TrimSuffix(strings.ToLower(s), ".onion")
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:] // a subdomain of the service is the service
	}
	raw, err := onionEncoding.DecodeString(name)
	if err != nil || len(raw) != 35 {
		return pub, fmt.Errorf("%q is not a v3 onion address (56 base32 characters)", oneLine(s, 80))
	}
	copy(pub[:], raw)
	if raw[34] != onionVersion || string(raw[32:34]) != string(onionChecksum(pub)) {
		return pub, fmt.Errorf("%q is not a v3 onion address: its checksum is wrong (a typo?)", oneLine(s, 80))
	}
	return pub, nil
}

// IsOnion reports whether host (a name, or host:port) is under .onion.
func IsOnion(host string) bool {
	if h, _, err := splitHostPortLoose(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return strings.HasSuffix(host, ".onion")
}

func splitHostPortLoose(s string) (string, string, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || strings.Contains(s[i:], "]") {
		return "", "", errors.New("no port")
	}
	return strings.Trim(s[:i], "[]"), s[i+1:], nil
}

// MarshalText returns the key as tor writes it: "ED25519-V3:" and base64.
func (k *OnionKey) MarshalText() ([]byte, error) {
	return []byte(onionKeyPrefix + base64.StdEncoding.EncodeToString(k[:])), nil
}

// UnmarshalText reads what MarshalText writes.
func (k *OnionKey) UnmarshalText(b []byte) error {
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), onionKeyPrefix)
	if !ok {
		return errors.New("not an onion service key (it does not start with " + onionKeyPrefix + ")")
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != len(k) {
		return errors.New("not an onion service key (want 64 bytes in base64)")
	}
	copy(k[:], raw)
	return nil
}

// LoadOnionKey reads the key in keyFile, or, when there is none, makes one
// from rnd and writes it there (mode 0600, atomically), so that the
// service keeps its address from one run to the next. A key file that
// others may read is made 0600.
func LoadOnionKey(keyFile string, rnd io.Reader) (OnionKey, error) {
	var k OnionKey
	b, err := os.ReadFile(keyFile)
	if err == nil {
		if err := k.UnmarshalText(b); err != nil {
			return k, fmt.Errorf("%s: %w", keyFile, err)
		}
		if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			os.Chmod(keyFile, 0o600)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return k, fmt.Errorf("the onion service key: %w", err)
	}
	if k, err = NewOnionKey(rnd); err != nil {
		return k, err
	}
	text, _ := k.MarshalText()
	if err := writeFileAtomic(keyFile, append(text, '\n'), 0o600); err != nil {
		return k, fmt.Errorf("the onion service key: %w", err)
	}
	return k, nil
}

// writeFileAtomic writes data to path through a temporary file renamed
// over it, synced, with mode perm.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Publish publishes a v3 onion service whose key is kept in keyFile (made
// at first use with mode 0600, then reused: the address is stable),
// forwarding its port virtPort to target: "127.0.0.1:PORT", or
// "unix:/path" for a Unix socket. It returns the address ("….onion") once
// tor has taken the service; WaitPublished waits until it is reachable.
// The service lasts as long as this control connection: it goes when
// Close is called or the process ends.
func (t *Tor) Publish(ctx context.Context, keyFile string, virtPort int, target string) (string, error) {
	k, err := LoadOnionKey(keyFile, t.rand)
	if err != nil {
		return "", err
	}
	return t.PublishKey(ctx, &k, virtPort, target)
}

// PublishKey is Publish with the key itself (which a caller may keep
// sealed rather than in a file).
func (t *Tor) PublishKey(ctx context.Context, k *OnionKey, virtPort int, target string) (string, error) {
	if virtPort < 1 || virtPort > 65535 {
		return "", fmt.Errorf("tor: the onion service's port %d is not in 1..65535", virtPort)
	}
	if err := checkTarget(target); err != nil {
		return "", err
	}
	// Events first: the descriptor may be uploaded before ADD_ONION's
	// answer is read.
	if err := t.subscribe(ctx, "HS_DESC"); err != nil {
		return "", err
	}
	addr := k.Address()
	t.mu.Lock()
	t.published[strings.TrimSuffix(addr, ".onion")] = true
	t.mu.Unlock()
	text, _ := k.MarshalText()
	rep, err := t.cc.do(ctx, fmt.Sprintf("ADD_ONION %s Port=%d,%s", text, virtPort, target))
	if err != nil {
		var ce *ControlError
		if errors.As(err, &ce) && strings.Contains(strings.ToLower(ce.Text), "collision") {
			return "", fmt.Errorf("tor already publishes %s: is another Pursuance process with the same key using this tor?", addr)
		}
		return "", fmt.Errorf("tor: publishing the onion service: %w", err)
	}
	for _, l := range rep.lines {
		if id, ok := strings.CutPrefix(l.text, "ServiceID="); ok && id+".onion" != addr {
			return "", fmt.Errorf("tor published the key as %s.onion, not %s: the key's form is wrong", oneLine(id, 64), addr)
		}
	}
	t.log.Info("onion service added", "onion", addr, "port", virtPort)
	return addr, nil
}

// checkTarget accepts "127.0.0.1:PORT" (any IP literal) or "unix:/path",
// with nothing ADD_ONION's argument syntax could misread.
func checkTarget(target string) error {
	if strings.ContainsAny(target, " \t\r\n\"\\") {
		return fmt.Errorf("tor: the onion service's target %q has a space, quote or backslash, which ADD_ONION cannot take", oneLine(target, 120))
	}
	if p, ok := strings.CutPrefix(target, "unix:"); ok {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("tor: the onion service's socket %q is not an absolute path", p)
		}
		return nil
	}
	h, port, err := splitHostPortLoose(target)
	if err != nil {
		return fmt.Errorf("tor: the onion service's target %q: want 127.0.0.1:PORT or unix:/path", target)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("tor: the onion service's target %q has no valid port", target)
	}
	if !strings.Contains(h, ".") && !strings.Contains(h, ":") {
		return fmt.Errorf("tor: the onion service's target %q: want an IP address, not a name", target)
	}
	return nil
}

// WaitPublished waits until tor has uploaded the descriptor of the onion
// service at onion (as Publish returned it) to at least one directory
// (HS_DESC UPLOADED): from then on, clients can reach it.
func (t *Tor) WaitPublished(ctx context.Context, onion string) error {
	id := strings.TrimSuffix(strings.ToLower(onion), ".onion")
	for {
		t.mu.Lock()
		up, changed := t.uploaded[id], t.changed
		t.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-changed:
		case <-t.cc.done:
			return fmt.Errorf("tor stopped before publishing %s: %w", onion, t.cc.err)
		case <-ctx.Done():
			return fmt.Errorf("tor did not publish %s in time: %w", onion, context.Cause(ctx))
		}
	}
}
