package tortest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	// relayIdentityBits is the size of a relay's RSA identity key, which
	// tor requires to be 1024 bits.
	relayIdentityBits = 1024
	// authorityCertMonths is how long tor-gencert's certificates last;
	// a network lives for one test run.
	authorityCertMonths = "12"
)

// makeRelayIdentity writes a fresh RSA identity key where tor looks for
// it (DataDirectory/keys/secret_id_key) and returns the relay's
// fingerprint: the SHA-1 of the DER public key, in upper-case hex. Tor
// makes the relay's ed25519 keys itself on its first start.
//
// Making the key here, rather than with `tor --list-fingerprint`, means no
// tor ever runs with a torrc that lacks the private authorities. The
// network test checks the result against the fingerprint file tor writes.
func makeRelayIdentity(dataDir string) (string, error) {
	keys := filepath.Join(dataDir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return "", fmt.Errorf("tortest: relay identity: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, relayIdentityBits)
	if err != nil {
		return "", fmt.Errorf("tortest: relay identity: %w", err)
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	if err := os.WriteFile(filepath.Join(keys, "secret_id_key"), pem.EncodeToMemory(block), 0o600); err != nil {
		return "", fmt.Errorf("tortest: relay identity: %w", err)
	}
	sum := sha1.Sum(x509.MarshalPKCS1PublicKey(&key.PublicKey))
	return strings.ToUpper(hex.EncodeToString(sum[:])), nil
}

// makeAuthorityKeys runs tor-gencert to make a directory authority's
// identity key, signing key and certificate in DataDirectory/keys, and
// returns the v3 identity (the certificate's fingerprint) that clients
// name in DirAuthority's v3ident.
func makeAuthorityKeys(ctx context.Context, gencert, dataDir string, dirPort int) (string, error) {
	keys := filepath.Join(dataDir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return "", fmt.Errorf("tortest: authority keys: %w", err)
	}
	cert := filepath.Join(keys, "authority_certificate")
	cmd := exec.CommandContext(ctx, gencert,
		"--create-identity-key",
		"-i", filepath.Join(keys, "authority_identity_key"),
		"-s", filepath.Join(keys, "authority_signing_key"),
		"-c", cert,
		"-m", authorityCertMonths,
		"-a", fmt.Sprintf("127.0.0.1:%d", dirPort),
		"--passphrase-fd", "0")
	cmd.Stdin = strings.NewReader("\n") // an empty passphrase
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := spawn(cmd); err != nil {
		return "", err
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("tortest: tor-gencert: %v: %s", err, strings.TrimSpace(out.String()))
	}
	f, err := os.Open(cert)
	if err != nil {
		return "", fmt.Errorf("tortest: authority keys: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fp, ok := strings.CutPrefix(sc.Text(), "fingerprint "); ok {
			return strings.TrimSpace(fp), nil
		}
	}
	return "", fmt.Errorf("tortest: %s has no fingerprint line", cert)
}
