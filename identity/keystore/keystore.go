// Package keystore keeps a member's identity on disk, its private keys
// encrypted under a passphrase.
//
// A home directory holds one identity, in the file named FileName. The file is
// JSON; its format is specified in docs/keystore.md. The secret keys are sealed
// with XChaCha20-Poly1305 under a key derived from the passphrase with
// Argon2id, and every other field of the file (format, version, KDF
// parameters, nonce, public identity) is authenticated as associated data. The
// public identity is stored in clear beside the sealed keys, so that ReadPublic
// can show who a home belongs to without asking for the passphrase.
//
// Files are written atomically (temporary file, fsync, rename or link, fsync
// of the directory): a crash at any instant leaves either the old keystore or
// the new one, never a mix, and leftover temporary files are ignored.
package keystore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/pursuance/pursuance/identity"
)

// FileName is the name of the keystore file inside a home directory.
const FileName = "identity.json"

const (
	formatName = "pursuance-keystore"
	// formatVersion is written when the identity has no retired KEM
	// keys; formatVersionRetired when it has (docs/keystore.md).
	formatVersion        = 1
	formatVersionRetired = 2
	// formatVersionRotated is written once the signing key was rotated
	// (docs/keystore.md, "Format, version 3").
	formatVersionRotated = 3
	kdfAlg               = "argon2id"
	cipherAlg            = "xchacha20poly1305"
	saltSize             = 16
	keySize              = chacha20poly1305.KeySize
	nonceSize            = chacha20poly1305.NonceSizeX
	// plaintextSize is the signing seed followed by the KEM private key;
	// version 2 appends the retired KEM private keys, oldest first.
	plaintextSize = identity.SeedSize + identity.KEMPrivateKeySize
	// rotatedExtra follows the keys in version 3: the home seed and the
	// pending previous signing seed (zeros when none).
	rotatedExtra = 2 * identity.SeedSize
	// maxFileSize bounds what Open reads; a real keystore is about 3 KiB.
	maxFileSize = 1 << 20
)

// kdfLabel is prepended to the random salt, so that the Argon2id output for a
// keystore can never equal an Argon2id output elsewhere in Pursuance.
const kdfLabel = "pursuance/v1/keystore-kdf"

// aadLabel starts the associated data that the sealed keys are bound to.
const aadLabel = "pursuance/v1/keystore-aad"

// ErrWrongPassphrase is returned (wrapped) by Open and ChangePassphrase when
// the passphrase does not open the keystore. A keystore file altered by
// someone else gives the same error, since the two cannot be told apart.
var ErrWrongPassphrase = errors.New("wrong passphrase")

// ErrExists is returned (wrapped) by Create when the home already holds an
// identity.
var ErrExists = errors.New("an identity already exists")

// ErrEmptyPassphrase is returned (wrapped) when the passphrase is empty.
var ErrEmptyPassphrase = errors.New("the passphrase is empty")

// ErrCorrupt is returned (wrapped) when the keystore file is not a keystore
// this version understands.
var ErrCorrupt = errors.New("the keystore file is damaged or not a keystore")

// KDFParams are the Argon2id cost parameters. They are stored in each
// keystore file, so a file stays readable when the defaults change.
type KDFParams struct {
	// Time is the number of passes over memory.
	Time uint32 `json:"time"`
	// MemoryKiB is the memory used, in KiB.
	MemoryKiB uint32 `json:"memory_kib"`
	// Threads is the degree of parallelism.
	Threads uint8 `json:"threads"`
}

// DefaultKDF is the cost used for real keystores: 3 passes over 64 MiB with 2
// threads, in the range RFC 9106 recommends when memory is limited. On a
// laptop it takes a few tenths of a second.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 2}

// InsecureTestKDF is a cost so low that it gives no protection to the
// passphrase. It exists only so that tests can create many keystores quickly;
// never use it for a real identity.
var InsecureTestKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// Limits on the parameters accepted from a file, so that a planted keystore
// cannot make Open use unbounded memory or time.
const (
	maxTime      = 64
	maxMemoryKiB = 4 * 1024 * 1024 // 4 GiB
	maxThreads   = 64
)

func (p KDFParams) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("argon2id time %d out of range 1..%d", p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("argon2id threads %d out of range 1..%d", p.Threads, maxThreads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB out of range %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxMemoryKiB)
	}
	return nil
}

// file is the JSON form of a keystore; see docs/keystore.md.
type file struct {
	header
	Sealed []byte `json:"sealed"`
}

// header is every field of the file except the ciphertext. Its json.Marshal
// encoding, after aadLabel and a zero byte, is the associated data of the
// ciphertext.
type header struct {
	Format  string       `json:"format"`
	Version int          `json:"version"`
	Public  publicFields `json:"public"`
	KDF     kdfFields    `json:"kdf"`
	Cipher  cipherFields `json:"cipher"`
}

type publicFields struct {
	ID         identity.PublicKey `json:"id"`
	Name       string             `json:"name"`
	KEM        []byte             `json:"kem"`
	KEMBinding []byte             `json:"kem_binding"`
	// Member is the member ID when the signing key was rotated (version
	// 3): id is then the current signing key, the member's root device.
	Member *identity.PublicKey `json:"member,omitempty"`
}

type kdfFields struct {
	Alg  string `json:"alg"`
	Salt []byte `json:"salt"`
	KDFParams
}

type cipherFields struct {
	Alg   string `json:"alg"`
	Nonce []byte `json:"nonce"`
}

func (h *header) aad() ([]byte, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	aad := append([]byte(aadLabel), 0)
	return append(aad, b...), nil
}

// public returns the identity described by the header and checks its KEM
// binding.
func (h *header) public() (identity.Public, error) {
	p := identity.Public{Name: h.Public.Name, ID: h.Public.ID}
	kemPub, err := identity.ParseKEMPublicKey(h.Public.KEM)
	if err != nil {
		return identity.Public{}, err
	}
	p.KEM = kemPub
	if len(h.Public.KEMBinding) != identity.SignatureSize {
		return identity.Public{}, fmt.Errorf("kem_binding is %d bytes, want %d", len(h.Public.KEMBinding), identity.SignatureSize)
	}
	copy(p.KEMBinding[:], h.Public.KEMBinding)
	if err := p.Verify(); err != nil {
		return identity.Public{}, err
	}
	return p, nil
}

// Path returns the path of the keystore file in home.
func Path(home string) string { return filepath.Join(home, FileName) }

// notFoundError reports a home without a keystore. It wraps the
// *fs.PathError, and so fs.ErrNotExist.
type notFoundError struct {
	home string
	err  error
}

func (e *notFoundError) Error() string {
	return fmt.Sprintf("keystore: no identity in %s; create one with `pursuance id new --name NAME`", e.home)
}

func (e *notFoundError) Unwrap() error { return e.err }

// Create seals id under passphrase with Argon2id cost kdf and writes it to
// home, creating home (mode 0700) if needed; the file has mode 0600. rand
// supplies the salt and nonce and must be cryptographically secure
// (crypto/rand.Reader outside of tests).
//
// Create never replaces an existing keystore: if home already holds one, it
// returns an error wrapping ErrExists, also when another process creates one
// at the same moment. An empty passphrase is an error wrapping
// ErrEmptyPassphrase.
func Create(home string, id *identity.Identity, passphrase []byte, kdf KDFParams, rand io.Reader) error {
	data, err := seal(id, passphrase, kdf, rand)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("keystore: create home: %w", err)
	}
	if err := writeAtomic(home, FileName, data, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("keystore: %w in %s; refusing to overwrite", ErrExists, home)
		}
		return fmt.Errorf("keystore: write %s: %w", Path(home), err)
	}
	return nil
}

// Open reads the keystore in home and decrypts it with passphrase. It returns
// an error wrapping fs.ErrNotExist when home holds no keystore,
// ErrWrongPassphrase when the passphrase does not open it, ErrEmptyPassphrase
// for an empty passphrase, and ErrCorrupt when the file is malformed.
func Open(home string, passphrase []byte) (*identity.Identity, error) {
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("keystore: %w", ErrEmptyPassphrase)
	}
	f, err := read(home)
	if err != nil {
		return nil, err
	}
	pub, err := f.public()
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w: %v", Path(home), ErrCorrupt, err)
	}
	aad, err := f.aad()
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	key := deriveKey(passphrase, f.KDF.Salt, f.KDF.KDFParams)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	plain, err := aead.Open(nil, f.Cipher.Nonce, f.Sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w", Path(home), ErrWrongPassphrase)
	}
	defer clear(plain)
	if len(plain) != len(f.Sealed)-chacha20poly1305.Overhead {
		return nil, fmt.Errorf("keystore: %s: %w: sealed keys are %d bytes", Path(home), ErrCorrupt, len(plain))
	}
	sign, err := identity.SigningKeyFromSeed(plain[:identity.SeedSize])
	if err != nil {
		return nil, fmt.Errorf("keystore: %w: %v", ErrCorrupt, err)
	}
	kemKey, err := identity.KEMPrivateKeyFromBytes(plain[identity.SeedSize:plaintextSize])
	if err != nil {
		return nil, fmt.Errorf("keystore: %w: %v", ErrCorrupt, err)
	}
	id, err := identity.FromKeys(pub.Name, sign, kemKey)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w: %v", ErrCorrupt, err)
	}
	rest := plain[plaintextSize:]
	if f.Version == formatVersionRotated {
		homeSeed, prevSeed := rest[:identity.SeedSize], rest[identity.SeedSize:rotatedExtra]
		rest = rest[rotatedExtra:]
		var prev *identity.SigningKey
		if !bytes.Equal(prevSeed, make([]byte, identity.SeedSize)) {
			if prev, err = identity.SigningKeyFromSeed(prevSeed); err != nil {
				return nil, fmt.Errorf("keystore: %w: %v", ErrCorrupt, err)
			}
		}
		if id, err = id.WithHome(*f.Public.Member, homeSeed, prev); err != nil {
			return nil, fmt.Errorf("keystore: %w: %v", ErrCorrupt, err)
		}
	}
	var retired []*identity.KEMPrivateKey
	for ; len(rest) > 0; rest = rest[identity.KEMPrivateKeySize:] {
		k, err := identity.KEMPrivateKeyFromBytes(rest[:identity.KEMPrivateKeySize])
		if err != nil {
			return nil, fmt.Errorf("keystore: %w: retired KEM key: %v", ErrCorrupt, err)
		}
		retired = append(retired, k)
	}
	if len(retired) > 0 {
		id = id.WithRetiredKEMKeys(retired)
	}
	if got := id.Public(); !got.ID.Equal(pub.ID) || !got.KEM.Equal(pub.KEM) || (f.Public.Member != nil && *f.Public.Member != id.Member()) {
		return nil, fmt.Errorf("keystore: %s: %w: the sealed keys do not match the public identity", Path(home), ErrCorrupt)
	}
	return id, nil
}

// ReadPublic returns the public identity stored in clear in home's keystore,
// without needing the passphrase. The KEM binding is verified, so the member
// ID and KEM key belong together; the name is authenticated only when the
// keystore is opened with Open. Errors are as for Open.
func ReadPublic(home string) (identity.Public, error) {
	f, err := read(home)
	if err != nil {
		return identity.Public{}, err
	}
	pub, err := f.public()
	if err != nil {
		return identity.Public{}, fmt.Errorf("keystore: %s: %w: %v", Path(home), ErrCorrupt, err)
	}
	return pub, nil
}

// ReadMember returns the member ID stored in clear in home's keystore,
// without the passphrase: the public key of ReadPublic, unless the signing
// key was rotated (version 3), when that is the member's current root
// device key and the member ID is kept beside it. Errors are as for Open.
func ReadMember(home string) (identity.PublicKey, identity.Public, error) {
	f, err := read(home)
	if err != nil {
		return identity.PublicKey{}, identity.Public{}, err
	}
	pub, err := f.public()
	if err != nil {
		return identity.PublicKey{}, identity.Public{}, fmt.Errorf("keystore: %s: %w: %v", Path(home), ErrCorrupt, err)
	}
	if f.Public.Member != nil {
		return *f.Public.Member, pub, nil
	}
	return pub.ID, pub, nil
}

// ChangePassphrase re-seals home's keystore under newPassphrase with cost kdf,
// after opening it with oldPassphrase. The file is replaced atomically: after
// a crash, the keystore opens with one passphrase or the other. Errors are as
// for Open and Create.
func ChangePassphrase(home string, oldPassphrase, newPassphrase []byte, kdf KDFParams, rand io.Reader) error {
	id, err := Open(home, oldPassphrase)
	if err != nil {
		return err
	}
	data, err := seal(id, newPassphrase, kdf, rand)
	if err != nil {
		return err
	}
	if err := writeAtomic(home, FileName, data, true); err != nil {
		return fmt.Errorf("keystore: write %s: %w", Path(home), err)
	}
	return nil
}

// RotateKEM gives home's identity a fresh KEM key, generated from rand,
// keeping the current one among the retired keys (they open what was
// sealed to them), and rewrites the keystore atomically under the same
// passphrase and cost: after a crash, it holds the old identity or the
// new one. The signing key, and so the member ID, stay. It returns the
// new identity. Errors are as for Open and Create.
//
// The member's pursuances learn the new key from a member-key event each
// (app.Node.HealKeys publishes it); until then keys keep being sealed to
// the old one, which the keystore still holds.
func RotateKEM(home string, passphrase []byte, rand io.Reader) (*identity.Identity, error) {
	f, err := read(home)
	if err != nil {
		return nil, err
	}
	id, err := Open(home, passphrase)
	if err != nil {
		return nil, err
	}
	if len(id.RetiredKEMKeys()) >= identity.MaxRetiredKEMKeys {
		return nil, fmt.Errorf("keystore: this identity has rotated its KEM key %d times, the most a keystore keeps; create a new identity instead", identity.MaxRetiredKEMKeys)
	}
	next, err := id.RotateKEM(rand)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	data, err := seal(next, passphrase, f.KDF.KDFParams, rand)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(home, FileName, data, true); err != nil {
		return nil, fmt.Errorf("keystore: write %s: %w", Path(home), err)
	}
	return next, nil
}

// RotateSigning gives home's identity a fresh signing key and a fresh KEM
// key, generated from rand, and rewrites the keystore atomically (version
// 3) under the same passphrase and cost. The member ID and the seed of the
// home's keys at rest stay; the previous signing key is kept, pending,
// until its replacement is published in every pursuance (app.Node.
// FinishRotation) and Settle drops it. A crash leaves the old keystore or
// the new one, and a new one with a pending key is finished by the next
// command that opens the home. It returns the new identity.
func RotateSigning(home string, passphrase []byte, rand io.Reader) (*identity.Identity, error) {
	return rewrite(home, passphrase, rand, func(id *identity.Identity) (*identity.Identity, error) {
		if len(id.RetiredKEMKeys()) >= identity.MaxRetiredKEMKeys {
			return nil, fmt.Errorf("keystore: this identity has rotated its KEM key %d times, the most a keystore keeps; create a new identity instead", identity.MaxRetiredKEMKeys)
		}
		return id.RotateSigning(rand)
	})
}

// Settle drops the pending previous signing key from home's keystore, once
// its replacement is published everywhere. A keystore with none is left
// as it is.
func Settle(home string, passphrase []byte, rand io.Reader) (*identity.Identity, error) {
	return rewrite(home, passphrase, rand, func(id *identity.Identity) (*identity.Identity, error) {
		if id.PendingReplace() == nil {
			return nil, nil
		}
		return id.Settled(), nil
	})
}

// rewrite opens home's keystore, changes its identity with fn (nil: no
// change) and writes it back atomically under the same passphrase and cost.
func rewrite(home string, passphrase []byte, rand io.Reader, fn func(*identity.Identity) (*identity.Identity, error)) (*identity.Identity, error) {
	f, err := read(home)
	if err != nil {
		return nil, err
	}
	id, err := Open(home, passphrase)
	if err != nil {
		return nil, err
	}
	next, err := fn(id)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return id, nil
	}
	data, err := seal(next, passphrase, f.KDF.KDFParams, rand)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(home, FileName, data, true); err != nil {
		return nil, fmt.Errorf("keystore: write %s: %w", Path(home), err)
	}
	return next, nil
}

// seal returns the keystore file contents for id.
func seal(id *identity.Identity, passphrase []byte, kdf KDFParams, rand io.Reader) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("keystore: %w", ErrEmptyPassphrase)
	}
	if err := kdf.validate(); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	var salt [saltSize]byte
	var nonce [nonceSize]byte
	if _, err := io.ReadFull(rand, salt[:]); err != nil {
		return nil, fmt.Errorf("keystore: read randomness: %w", err)
	}
	if _, err := io.ReadFull(rand, nonce[:]); err != nil {
		return nil, fmt.Errorf("keystore: read randomness: %w", err)
	}
	pub := id.Public()
	retired := id.RetiredKEMKeys()
	version := formatVersion
	if len(retired) > 0 {
		version = formatVersionRetired
	}
	var member *identity.PublicKey
	if id.Rotated() {
		version = formatVersionRotated
		m := id.Member()
		member = &m
	}
	f := file{header: header{
		Format:  formatName,
		Version: version,
		Public: publicFields{
			ID:         pub.ID,
			Name:       pub.Name,
			KEM:        pub.KEM.Bytes(),
			KEMBinding: pub.KEMBinding[:],
			Member:     member,
		},
		KDF:    kdfFields{Alg: kdfAlg, Salt: salt[:], KDFParams: kdf},
		Cipher: cipherFields{Alg: cipherAlg, Nonce: nonce[:]},
	}}
	aad, err := f.aad()
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	plain := make([]byte, 0, plaintextSize+len(retired)*identity.KEMPrivateKeySize)
	plain = append(plain, id.SigningKey().Seed()...)
	plain = append(plain, id.KEMKey().Bytes()...)
	if version == formatVersionRotated {
		plain = append(plain, id.HomeSeed()...)
		if prev := id.PendingReplace(); prev != nil {
			plain = append(plain, prev.Seed()...)
		} else {
			plain = append(plain, make([]byte, identity.SeedSize)...)
		}
	}
	for _, k := range retired {
		plain = append(plain, k.Bytes()...)
	}
	defer clear(plain)

	key := deriveKey(passphrase, salt[:], kdf)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	f.Sealed = aead.Seal(nil, nonce[:], plain, aad)
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keystore: encode: %w", err)
	}
	return append(out, '\n'), nil
}

// deriveKey returns the XChaCha20-Poly1305 key for passphrase: Argon2id with
// salt kdfLabel || salt.
func deriveKey(passphrase, salt []byte, p KDFParams) []byte {
	s := append([]byte(kdfLabel), salt...)
	return argon2.IDKey(passphrase, s, p.Time, p.MemoryKiB, p.Threads, keySize)
}

// read reads and strictly decodes home's keystore file, checking everything
// that can be checked without the passphrase except the public identity.
func read(home string) (*file, error) {
	path := Path(home)
	fh, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &notFoundError{home: home, err: err}
		}
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keystore: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("keystore: %s: %w: larger than %d bytes", path, ErrCorrupt, maxFileSize)
	}
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("keystore: %s: %w: %v", path, ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("keystore: %s: %w: data after the JSON object", path, ErrCorrupt)
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("keystore: %s: %w: %v", path, ErrCorrupt, err)
	}
	return &f, nil
}

func (f *file) check() error {
	switch {
	case f.Format != formatName:
		return fmt.Errorf("format is %q, want %q", f.Format, formatName)
	case f.Version != formatVersion && f.Version != formatVersionRetired && f.Version != formatVersionRotated:
		return fmt.Errorf("version %d is not supported (this program reads versions %d to %d)", f.Version, formatVersion, formatVersionRotated)
	case (f.Version == formatVersionRotated) != (f.Public.Member != nil):
		return errors.New("a version 3 file, and only one, names the member")
	case f.KDF.Alg != kdfAlg:
		return fmt.Errorf("kdf %q is not supported", f.KDF.Alg)
	case len(f.KDF.Salt) != saltSize:
		return fmt.Errorf("salt is %d bytes, want %d", len(f.KDF.Salt), saltSize)
	case f.Cipher.Alg != cipherAlg:
		return fmt.Errorf("cipher %q is not supported", f.Cipher.Alg)
	case len(f.Cipher.Nonce) != nonceSize:
		return fmt.Errorf("nonce is %d bytes, want %d", len(f.Cipher.Nonce), nonceSize)
	case f.Version == formatVersion && len(f.Sealed) != plaintextSize+chacha20poly1305.Overhead:
		return fmt.Errorf("sealed keys are %d bytes, want %d", len(f.Sealed), plaintextSize+chacha20poly1305.Overhead)
	case f.Version == formatVersionRetired:
		extra := len(f.Sealed) - plaintextSize - chacha20poly1305.Overhead
		if extra <= 0 || extra%identity.KEMPrivateKeySize != 0 || extra/identity.KEMPrivateKeySize > identity.MaxRetiredKEMKeys {
			return fmt.Errorf("sealed keys are %d bytes: not the keys and 1 to %d retired KEM keys", len(f.Sealed), identity.MaxRetiredKEMKeys)
		}
	case f.Version == formatVersionRotated:
		extra := len(f.Sealed) - plaintextSize - rotatedExtra - chacha20poly1305.Overhead
		if extra < 0 || extra%identity.KEMPrivateKeySize != 0 || extra/identity.KEMPrivateKeySize > identity.MaxRetiredKEMKeys {
			return fmt.Errorf("sealed keys are %d bytes: not the keys, the home and previous seeds and up to %d retired KEM keys", len(f.Sealed), identity.MaxRetiredKEMKeys)
		}
	}
	return f.KDF.validate()
}
