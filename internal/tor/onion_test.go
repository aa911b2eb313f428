package tor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/tor/faketor"
)

// The seed and public key of RFC 8032's test 1; the expanded key and the
// address were computed apart from this code, with Python's hashlib
// (sha512 and clamping; sha3_256 and base32), and match the address other
// projects list for this key.
const (
	rfcSeed     = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	rfcPublic   = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	rfcExpanded = "MHyDhk8oM8tCei7xwAoBPP3/J2jZgMCjpSDwBpBN6U+bTwr+KAt0aneGhOdUQlAgV7dHOgPwj5b1o46Sh+Afjw=="
	rfcAddress  = "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion"
)

// TestOnionKeyVector: a seed's expanded key, public key and address are
// the independently computed ones.
func TestOnionKeyVector(t *testing.T) {
	var seed [32]byte
	hex.Decode(seed[:], []byte(rfcSeed))
	k := OnionKeyFromSeed(seed)
	if got := base64.StdEncoding.EncodeToString(k[:]); got != rfcExpanded {
		t.Errorf("expanded key %s, want %s", got, rfcExpanded)
	}
	pub := k.PublicKey()
	if hex.EncodeToString(pub[:]) != rfcPublic {
		t.Errorf("public key %x, want %s", pub, rfcPublic)
	}
	if k.Address() != rfcAddress {
		t.Errorf("address %s, want %s", k.Address(), rfcAddress)
	}
	text, _ := k.MarshalText()
	if string(text) != "ED25519-V3:"+rfcExpanded {
		t.Errorf("text form %s", text)
	}
	var back OnionKey
	if err := back.UnmarshalText(text); err != nil || back != k {
		t.Errorf("read back: %v", err)
	}
	for _, bad := range []string{"", "RSA1024:abc", "ED25519-V3:" + base64.StdEncoding.EncodeToString(make([]byte, 32)), "ED25519-V3:!!"} {
		if err := back.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q read as a key", bad)
		}
	}
}

// TestParseOnionAddress: addresses parse in any case, with or without
// ".onion" or a subdomain; a typo fails the checksum.
func TestParseOnionAddress(t *testing.T) {
	for _, ok := range []string{rfcAddress, strings.ToUpper(rfcAddress), strings.TrimSuffix(rfcAddress, ".onion"), "www." + rfcAddress} {
		pub, err := ParseOnionAddress(ok)
		if err != nil || hex.EncodeToString(pub[:]) != rfcPublic {
			t.Errorf("%s: %x %v", ok, pub, err)
		}
	}
	typo := strings.Replace(rfcAddress, "sid.onion", "sie.onion", 1)
	for _, bad := range []string{typo, "example.onion", "example.com"} {
		if _, err := ParseOnionAddress(bad); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
	if !IsOnion("abc.onion:80") || !IsOnion("ABC.ONION") || !IsOnion("x.abc.onion.") || IsOnion("onion.example:80") || IsOnion("127.0.0.1:80") {
		t.Error("IsOnion")
	}
}

// TestLoadOnionKey: the key file is made at first use, mode 0600, and
// read back unchanged after (a stable address); a file others could read
// is made 0600; a damaged one is an error, not a new key.
func TestLoadOnionKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "onion.key")
	k1, err := LoadOnionKey(file, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	k2, err := LoadOnionKey(file, bytes.NewReader(nil)) // no randomness needed
	if err != nil || k2 != k1 {
		t.Fatalf("second load: %v (same key: %v)", err, k2 == k1)
	}
	os.Chmod(file, 0o644)
	LoadOnionKey(file, rand.Reader)
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("a readable key file stays %v", fi.Mode())
	}
	os.WriteFile(file, []byte("garbage"), 0o600)
	if _, err := LoadOnionKey(file, rand.Reader); err == nil {
		t.Error("a damaged key file loaded")
	}
}

// TestPublish: Publish adds the service with the key from the file and
// the target, returns the key's address, and WaitPublished returns once
// tor reports the descriptor uploaded; through the SOCKS port the address
// reaches the target (a Unix socket here). A second Publish of the same
// key on the same tor says another process uses it.
func TestPublish(t *testing.T) {
	dir := t.TempDir()
	f := newFake(t, faketor.Options{UploadDelay: 300 * time.Millisecond})
	tr := attachFake(t, f)
	sock := filepath.Join(dir, "relay.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("no Unix sockets here: %v", err)
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("relay")) }))

	keyFile := filepath.Join(dir, "onion.key")
	ctx := context.Background()
	addr, err := tr.Publish(ctx, keyFile, 80, "unix:"+sock)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := LoadOnionKey(keyFile, nil)
	if addr != k.Address() {
		t.Errorf("published %s, the key's address is %s", addr, k.Address())
	}
	if got := f.Onions()[strings.TrimSuffix(addr, ".onion")]; got != "80 unix:"+sock {
		t.Errorf("tor holds %q", got)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := tr.WaitPublished(wctx, addr); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: tr.Dialer("x").DialContext}}
	resp, err := hc.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	other := attachFake(t, f)
	if _, err := other.Publish(ctx, keyFile, 80, "unix:"+sock); err == nil || !strings.Contains(err.Error(), "already publishes") {
		t.Errorf("the same key twice: %v", err)
	}
	// The service goes with the connection that added it.
	tr.Close()
	for deadline := time.Now().Add(10 * time.Second); len(f.Onions()) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after Close tor still holds %v", f.Onions())
		}
	}
}

// TestPublishNotUploaded: WaitPublished ends with its context while the
// descriptor is not uploaded, and at once when tor stops.
func TestPublishNotUploaded(t *testing.T) {
	f := newFake(t, faketor.Options{UploadDelay: time.Hour})
	tr := attachFake(t, f)
	addr, err := tr.Publish(context.Background(), filepath.Join(t.TempDir(), "k"), 80, "127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := tr.WaitPublished(ctx, addr); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("not uploaded: %v", err)
	}
	go func() { time.Sleep(100 * time.Millisecond); f.Close() }()
	if err := tr.WaitPublished(context.Background(), addr); !errors.Is(err, ErrControlClosed) {
		t.Errorf("tor stopped: %v", err)
	}
}

// TestPublishTargets: targets are loopback IP:PORT or an absolute socket
// path, with nothing ADD_ONION could misread.
func TestPublishTargets(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8765", "[::1]:80", "unix:/run/relay.sock"} {
		if err := checkTarget(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"localhost:80", "127.0.0.1", "127.0.0.1:0", "unix:relative.sock", "unix:/a b/relay.sock", "127.0.0.1:80 Flags=Detach", `unix:/a"b`} {
		if err := checkTarget(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
