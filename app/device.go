package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/internal/atrest"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// Devices (docs/devices.md): a home is one device of a member. A home
// whose keystore holds the member's own identity is the member's root; a
// linked home's keystore holds its device key (and its own KEM key), and
// the home keeps, in the file DeviceFile sealed at rest, the member it
// speaks for and the member's KEM keys, which seeds are sealed to. A
// root that has linked a device keeps the same file, for its own device
// KEM key and the member's KEM keys from then on.

// DeviceFile is the file of a home's device state, sealed at rest under
// a key derived from the home's signing seed.
const DeviceFile = "device"

const (
	keyDevice         = "device-file"
	deviceFileAAD     = "pursuance/v1/device-file"
	requestPrefix     = "pursuance-device-request:"
	approvalPrefix    = "pursuance-device-approval:"
	approvalPurpose   = "pursuance/v1/device-approval"
	maxApprovalBytes  = 64 << 10 // an approval code, decoded
	maxDevicePursuits = 256      // pursuances one approval carries
)

// homeDevice is what DeviceFile holds.
type homeDevice struct {
	// Member is the member this home speaks for; zero until a linked
	// home is accepted. For a root it is its own ID.
	Member identity.PublicKey `cbor:"1,keyasint"`
	Name   string             `cbor:"2,keyasint"` // this device's name
	// DevKEM is this device's own KEM key seed, what the member's new KEM
	// keys are sealed to for it; empty for a linked home (its keystore's
	// KEM key is its own).
	DevKEM []byte `cbor:"3,keyasint,omitempty"`
	// MemberKEMs are the member's KEM key seeds, oldest first, the last
	// current.
	MemberKEMs [][]byte `cbor:"4,keyasint"`
	// The device mailbox (devsync.go): the fingerprint of the member KEM
	// key it is under, the read cursor on each relay, and the hash of
	// what this device last posted there.
	MailboxKEM     [32]byte          `cbor:"5,keyasint,omitzero"`
	MailboxCursors map[string]uint64 `cbor:"6,keyasint,omitempty"`
	MailboxPosted  []byte            `cbor:"7,keyasint,omitempty"`
	// Asked are the joins this linked device asked its root to make
	// (devsync.go), until their answer comes; Done the answers a root
	// gave, newest last, at most maxDoneKept.
	Asked []joinAsk    `cbor:"8,keyasint,omitempty"`
	Done  []joinAnswer `cbor:"9,keyasint,omitempty"`
	// Line is a root's root line (docs/devices.md §6.1): the replace
	// certificates of its rotations, from the member ID to its current
	// key, oldest first, which a genesis or join it signs carries.
	Line []state.Device `cbor:"10,keyasint,omitempty"`
	// Recert is a linked device's add under its rotated root's current
	// key (devsync.go, childCerts), which it publishes in the logs that
	// lack it.
	Recert *state.Device `cbor:"11,keyasint,omitempty"`
}

func (n *Node) deviceCipher() *atrest.Cipher {
	return atrest.NewCipher(atrest.Root(n.id.HomeSeed()).Derive(keyDevice))
}

// loadDevice reads DeviceFile, if the home has one.
func (n *Node) loadDevice() error {
	b, err := os.ReadFile(filepath.Join(n.home, DeviceFile))
	if errors.Is(err, fs.ErrNotExist) {
		n.dev = nil
		return nil
	}
	if err != nil {
		return err
	}
	pt, err := n.deviceCipher().Open(nil, b, []byte(deviceFileAAD))
	if err != nil {
		return fmt.Errorf("%s in %s does not open with this home's identity: %w", DeviceFile, n.home, err)
	}
	var d homeDevice
	if err := cbor.Unmarshal(pt, &d); err != nil {
		return fmt.Errorf("%s in %s is damaged: %v", DeviceFile, n.home, err)
	}
	n.dev = &d
	return nil
}

// saveDevice writes DeviceFile atomically.
func (n *Node) saveDevice(d *homeDevice) error {
	pt, err := cbor.Marshal(d)
	if err != nil {
		return err
	}
	if err := keystore.WriteFileAtomic(n.home, DeviceFile, n.deviceCipher().Seal(nil, nil, pt, []byte(deviceFileAAD))); err != nil {
		return err
	}
	n.dev = d
	n.folds.reset()
	return nil
}

// me returns the member this home speaks for.
func (n *Node) me() identity.PublicKey {
	if n.dev != nil && !n.dev.Member.IsZero() {
		return n.dev.Member
	}
	return n.id.Member()
}

// Member returns the member ID this home speaks for: its identity's, or
// for a linked device its member's.
func (n *Node) Member() identity.PublicKey { return n.me() }

// IsDevice reports whether this home is a linked device (not the member's
// root): its keystore's key is a device key. A root whose signing key was
// rotated (id rotate) is still the root.
func (n *Node) IsDevice() bool { return n.me() != n.id.Member() }

// memberKEMs returns the member's KEM private keys this home holds: the
// current one, and the retired ones newest first.
func (n *Node) memberKEMs() (*identity.KEMPrivateKey, []*identity.KEMPrivateKey) {
	if n.dev == nil || len(n.dev.MemberKEMs) == 0 {
		return n.id.KEMKey(), n.id.RetiredKEMKeys()
	}
	var ks []*identity.KEMPrivateKey
	for _, b := range n.dev.MemberKEMs {
		if k, err := identity.KEMPrivateKeyFromBytes(b); err == nil {
			ks = append(ks, k)
		}
	}
	if len(ks) == 0 {
		return n.id.KEMKey(), n.id.RetiredKEMKeys()
	}
	retired := slices.Clone(ks[:len(ks)-1])
	slices.Reverse(retired)
	return ks[len(ks)-1], retired
}

// memberKEMFor returns the member KEM private key this home holds for pub.
func (n *Node) memberKEMFor(pub identity.KEMPublicKey) *identity.KEMPrivateKey {
	cur, retired := n.memberKEMs()
	for _, k := range append([]*identity.KEMPrivateKey{cur}, retired...) {
		if k.Public().Equal(pub) {
			return k
		}
	}
	return nil
}

// deviceKEM returns this device's own KEM key: a linked home's keystore
// KEM key, or a root's own from DeviceFile (nil until it links one).
func (n *Node) deviceKEM() *identity.KEMPrivateKey {
	if n.IsDevice() {
		return n.id.KEMKey()
	}
	if n.dev != nil && len(n.dev.DevKEM) > 0 {
		if k, err := identity.KEMPrivateKeyFromBytes(n.dev.DevKEM); err == nil {
			return k
		}
	}
	return nil
}

// addMemberKEM makes k the member's current KEM key in this home.
func (n *Node) addMemberKEM(k *identity.KEMPrivateKey) error {
	d := n.ensureDevice()
	for _, b := range d.MemberKEMs {
		if string(b) == string(k.Bytes()) {
			return nil
		}
	}
	d.MemberKEMs = append(d.MemberKEMs, k.Bytes())
	return n.saveDevice(d)
}

// ensureDevice returns this home's device state, making a root's on first
// use (its own device KEM key; the member's KEM keys from the keystore).
func (n *Node) ensureDevice() *homeDevice {
	if n.dev != nil {
		c := *n.dev
		c.MemberKEMs = slices.Clone(n.dev.MemberKEMs)
		c.MailboxCursors = maps.Clone(n.dev.MailboxCursors)
		c.Asked = slices.Clone(n.dev.Asked)
		c.Done = slices.Clone(n.dev.Done)
		c.Line = slices.Clone(n.dev.Line)
		return &c
	}
	d := &homeDevice{Member: n.id.Member(), Name: n.id.Name()}
	retired := slices.Clone(n.id.RetiredKEMKeys())
	for _, k := range retired {
		d.MemberKEMs = append(d.MemberKEMs, k.Bytes())
	}
	d.MemberKEMs = append(d.MemberKEMs, n.id.KEMKey().Bytes())
	return d
}

// learnMemberKEMs opens the boxes the log of s holds for this device: a
// member KEM key another device of the member made (a revocation, a
// replace, a member-key) and sealed to it. It reports whether it learned
// one.
func (n *Node) learnMemberKEMs(s *state.State) (bool, error) {
	dk := n.deviceKEM()
	if dk == nil {
		return false, nil
	}
	m, ok := s.Member(n.me())
	if !ok || n.memberKEMFor(m.KEM) != nil {
		return false, nil
	}
	me := n.id.ID()
	for _, b := range s.MemberKEMBoxes(n.me(), me) {
		k, err := state.OpenIdentityKEM(dk, n.me(), b.KEM, b.Box)
		if err != nil {
			continue
		}
		if err := n.addMemberKEM(k); err != nil {
			return false, err
		}
		if b.KEM.Equal(m.KEM) {
			return true, nil
		}
	}
	return false, nil
}

// DeviceRequest is what a new home asks to become a device with: its
// keys and name. Its text form is the request code.
type DeviceRequest struct {
	Device identity.PublicKey `cbor:"1,keyasint"`
	KEM    []byte             `cbor:"2,keyasint"`
	Name   string             `cbor:"3,keyasint"`
}

func (r DeviceRequest) String() string {
	b, _ := cbor.Marshal(r)
	return requestPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseDeviceRequest reads a request code.
func ParseDeviceRequest(s string) (DeviceRequest, error) {
	var r DeviceRequest
	b, err := decodeCode(s, requestPrefix, "device request")
	if err == nil {
		err = cbor.Unmarshal(b, &r)
	}
	if err != nil {
		return r, fmt.Errorf("not a device request code: %v (it starts %q; copy it whole)", err, requestPrefix)
	}
	if _, err := identity.ParseKEMPublicKey(r.KEM); err != nil || r.Device.Check() != nil {
		return r, errors.New("the device request code holds no valid keys: copy it again from the new home")
	}
	return r, nil
}

func decodeCode(s, prefix, what string) ([]byte, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return nil, fmt.Errorf("this is not a %s code", what)
	}
	if len(rest) > maxApprovalBytes*4/3+4 {
		return nil, fmt.Errorf("the %s code is over %d bytes", what, maxApprovalBytes)
	}
	return base64.RawURLEncoding.DecodeString(rest)
}

// RequestDevice makes this home, whose keystore holds a fresh identity,
// ready to become a device named name: it returns the request code to
// approve on one of the member's existing homes.
func (n *Node) RequestDevice(name string) (DeviceRequest, error) {
	if err := identity.ValidateName(name); err != nil {
		return DeviceRequest{}, err
	}
	if n.dev != nil && !n.dev.Member.IsZero() {
		return DeviceRequest{}, errors.New("this home is a device of a member already")
	}
	if ps, _ := n.secretPursuances(); len(ps) > 0 {
		return DeviceRequest{}, errors.New("this home holds pursuances of its own: make a device of a new home (`--home DIR`)")
	}
	if err := n.saveDevice(&homeDevice{Name: name}); err != nil {
		return DeviceRequest{}, err
	}
	return DeviceRequest{Device: n.id.ID(), KEM: n.id.KEMKey().Public().Bytes(), Name: name}, nil
}

// deviceApproval is what an approval code carries, sealed to the new
// device's KEM key.
type deviceApproval struct {
	Member     identity.PublicKey `cbor:"1,keyasint"`
	Parent     identity.PublicKey `cbor:"2,keyasint"`
	ParentKEM  []byte             `cbor:"3,keyasint"`
	Cert       []byte             `cbor:"4,keyasint"`
	MemberKEMs [][]byte           `cbor:"5,keyasint"` // oldest first
	Pursuances []approvedPursuit  `cbor:"6,keyasint"`
}

type approvedPursuit struct {
	ID     event.ID `cbor:"1,keyasint"`
	Gen    uint64   `cbor:"2,keyasint"`
	Seed   []byte   `cbor:"3,keyasint"`
	Relays []string `cbor:"4,keyasint"`
}

// ApproveDevice approves a request on one of the member's homes: it
// certifies the new device as a child of this one and returns the
// approval code (sealed to the new device) that carries the certificate,
// the member's KEM keys and, for each pursuance the member is in here,
// what the new home needs to fetch it: its ID, relays and current group
// key. Nothing is published: the new device publishes its own add.
func (n *Node) ApproveDevice(ctx context.Context, req DeviceRequest) (string, error) {
	d := n.ensureDevice()
	if len(d.DevKEM) == 0 && !n.IsDevice() {
		k, err := identity.NewKEMPrivateKey(n.rand())
		if err != nil {
			return "", err
		}
		d.DevKEM = k.Bytes()
	}
	if err := n.saveDevice(d); err != nil {
		return "", err
	}
	kem, _ := identity.ParseKEMPublicKey(req.KEM)
	pk := n.deviceKEM().Public()
	msg := state.DeviceCertMessage(n.me(), n.id.ID(), pk, req.Device, kem, req.Name)
	a := deviceApproval{Member: n.me(), Parent: n.id.ID(), ParentKEM: pk.Bytes(), Cert: state.SignDeviceCert(n.id.SigningKey(), msg), MemberKEMs: d.MemberKEMs}
	ps, err := n.memberPursuits(ctx)
	if err != nil {
		return "", err
	}
	a.Pursuances = ps
	pt, err := cbor.Marshal(a)
	if err != nil {
		return "", err
	}
	box, err := keys.SealBox(kem, approvalPurpose, pt)
	if err != nil {
		return "", err
	}
	return approvalPrefix + base64.RawURLEncoding.EncodeToString(box), nil
}

// memberPursuits returns, for each pursuance the member is in here (up to
// maxDevicePursuits), what another device needs to fetch it: its ID,
// relays and current group key.
func (n *Node) memberPursuits(ctx context.Context) ([]approvedPursuit, error) {
	ps, err := n.Pursuances(ctx)
	if err != nil {
		return nil, err
	}
	var out []approvedPursuit
	for _, sum := range ps {
		s, err := n.State(ctx, sum.ID)
		if err != nil {
			return nil, err
		}
		if _, ok := s.Member(n.me()); !ok {
			continue
		}
		ap := approvedPursuit{ID: sum.ID, Relays: s.Relays()}
		if cur, ok := s.CurrentKey(""); ok {
			if h, ok := s.Held()[cur.Update]; ok {
				ap.Gen, ap.Seed = h.Key.Gen, h.Key.Seed[:]
			}
		}
		if sec, err := n.readSecrets(sum.ID); err == nil {
			for _, r := range sec.Relays {
				if !slices.Contains(ap.Relays, r) {
					ap.Relays = append(ap.Relays, r)
				}
			}
		}
		out = append(out, ap)
		if len(out) == maxDevicePursuits {
			break
		}
	}
	return out, nil
}

// AcceptDevice makes this home the device its request asked to be, from
// the approval code: it keeps the member's KEM keys and the pursuances'
// keys and relays, fetches each pursuance, and publishes its own add
// there (with its proof) for the next sync to send. It returns the
// pursuances it holds.
func (n *Node) AcceptDevice(ctx context.Context, code string, fetch func(context.Context, event.ID) error) ([]event.ID, error) {
	if n.dev == nil || n.dev.Member == n.id.ID() {
		return nil, errors.New("this home asked to be no device: run `pursuance device request --name NAME` here first")
	}
	box, err := decodeCode(code, approvalPrefix, "device approval")
	if err != nil {
		return nil, err
	}
	pt, err := keys.OpenBox(n.id.KEMKey(), approvalPurpose, box)
	if err != nil {
		return nil, errors.New("this approval code is not for this home: approve this home's own request code")
	}
	var a deviceApproval
	if err := cbor.Unmarshal(pt, &a); err != nil {
		return nil, fmt.Errorf("the approval code is damaged: %v", err)
	}
	if !n.dev.Member.IsZero() && n.dev.Member != a.Member {
		return nil, fmt.Errorf("this home is a device of %s already", n.dev.Member.Short())
	}
	// Accepting again (after a failed fetch) goes on where it stopped:
	// the member's KEM keys this home learned since are kept.
	kems := a.MemberKEMs
	for _, b := range n.dev.MemberKEMs {
		if !slices.ContainsFunc(kems, func(x []byte) bool { return string(x) == string(b) }) {
			kems = append(kems, b)
		}
	}
	pk, err := identity.ParseKEMPublicKey(a.ParentKEM)
	if err != nil {
		return nil, errors.New("the approval code is damaged: no parent KEM key")
	}
	msg := state.DeviceCertMessage(a.Member, a.Parent, pk, n.id.ID(), n.id.KEMKey().Public(), n.dev.Name)
	op := &state.Device{Action: state.DeviceAdd, Identity: a.Member, Device: n.id.ID(), Parent: a.Parent, ParentKEM: a.ParentKEM,
		Name: n.dev.Name, KEM: n.id.KEMKey().Public().Bytes(), Cert: a.Cert, Proof: state.SignDeviceProof(n.id.SigningKey(), msg)}
	if !a.Parent.Verify(append([]byte("pursuance/v1/device-cert-parent\x00"), msg...), a.Cert) {
		return nil, errors.New("the approval's certificate does not verify: approve this home's request again")
	}
	if err := n.saveDevice(&homeDevice{Member: a.Member, Name: n.dev.Name, MemberKEMs: kems}); err != nil {
		return nil, err
	}
	var out []event.ID
	for _, ap := range a.Pursuances {
		var k keys.Key
		if len(ap.Seed) == len(k.Seed) {
			k = keys.Key{Scope: keys.Scope{Pursuance: ap.ID}, Gen: ap.Gen}
			copy(k.Seed[:], ap.Seed)
		}
		if err := n.addSecrets(ap.ID, state.InviteSecret{}, k, ap.Relays); err != nil {
			return out, err
		}
		out = append(out, ap.ID)
	}
	var errs []error
	for _, p := range out {
		if err := fetch(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Short(), err))
			continue
		}
		if err := n.publishAdd(ctx, p, op); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Short(), err))
		}
	}
	return out, errors.Join(errs...)
}

// publishAdd publishes this device's own add in p, unless the log has it.
func (n *Node) publishAdd(ctx context.Context, p event.ID, op *state.Device) error {
	s, err := n.State(ctx, p)
	if err != nil {
		return err
	}
	for _, d := range s.Devices(n.me()) {
		if d.Device == n.id.ID() {
			return nil
		}
	}
	_, err = n.do(ctx, s, op, DoOptions{})
	return err
}

// DeviceInfo is one device of this home's member, over its pursuances.
type DeviceInfo struct {
	Device  identity.PublicKey
	Name    string
	Added   uint64 // Unix ms of the add, as its author claimed; 0 for the root
	Revoked bool
	This    bool
	Root    bool
}

// Devices lists this member's devices as the logs of its pursuances here
// tell them: a device revoked in any is revoked.
func (n *Node) Devices(ctx context.Context) ([]DeviceInfo, error) {
	ps, err := n.Pursuances(ctx)
	if err != nil {
		return nil, err
	}
	by := map[identity.PublicKey]*DeviceInfo{}
	for _, sum := range ps {
		s, err := n.State(ctx, sum.ID)
		if err != nil {
			return nil, err
		}
		for _, d := range s.Devices(n.me()) {
			x := by[d.Device]
			if x == nil {
				x = &DeviceInfo{Device: d.Device, Name: d.Name, This: d.Device == n.id.ID(), Root: d.Root}
				if en, ok := s.Entry(d.Added); ok {
					x.Added = en.Time
				}
				by[d.Device] = x
			}
			x.Revoked = x.Revoked || d.Revoked
		}
	}
	if len(by) == 0 {
		by[n.id.ID()] = &DeviceInfo{Device: n.id.ID(), Name: n.id.Name(), This: true, Root: !n.IsDevice()}
	}
	out := make([]DeviceInfo, 0, len(by))
	for _, d := range by {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(x, y DeviceInfo) int {
		if x.Root != y.Root {
			if x.Root {
				return -1
			}
			return 1
		}
		return x.Device.Compare(y.Device)
	})
	return out, nil
}

// RevokeDevice cuts device off in every pursuance of the member here
// where this device may (one of its ancestors): each revocation carries
// the member's next KEM key, sealed to the other devices, and the keys it
// could read are re-keyed by the heal that follows. It returns the
// pursuances it revoked the device in.
func (n *Node) RevokeDevice(ctx context.Context, device identity.PublicKey) ([]event.ID, error) {
	next, err := identity.NewKEMPrivateKey(n.rand())
	if err != nil {
		return nil, err
	}
	ps, err := n.Pursuances(ctx)
	if err != nil {
		return nil, err
	}
	// The new key first: if publishing stops half-way, this home still
	// opens what either key seals.
	if err := n.addMemberKEM(next); err != nil {
		return nil, err
	}
	var done []event.ID
	var errs []error
	for _, sum := range ps {
		s, err := n.State(ctx, sum.ID)
		if err != nil {
			return done, err
		}
		if _, ok := s.Member(n.me()); !ok {
			continue
		}
		var cut []identity.PublicKey
		found := false
		for _, d := range s.Devices(n.me()) {
			if d.Device == device && !d.Revoked {
				found = true
			}
		}
		if !found {
			continue
		}
		cut = deviceSubtree(s.Devices(n.me()), device)
		op := &state.Device{Action: state.DeviceRevoke, Identity: n.me(), Device: device}
		if err := n.fillMemberKEM(s, next, cut, &op.MemberKEM, &op.Binding, &op.Boxes); err != nil {
			return done, err
		}
		if _, err := n.do(ctx, s, op, DoOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
			continue
		}
		done = append(done, sum.ID)
		if _, err := n.HealKeys(ctx, sum.ID); err != nil {
			errs = append(errs, fmt.Errorf("%s: re-keying: %w", s.Name(), err))
		}
	}
	if len(done) == 0 && len(errs) == 0 {
		return nil, fmt.Errorf("%s is no current device of yours in any pursuance here", device.Short())
	}
	return done, errors.Join(errs...)
}

// deviceSubtree returns device and the current devices below it.
func deviceSubtree(ds []state.DeviceInfo, device identity.PublicKey) []identity.PublicKey {
	parent := map[identity.PublicKey]identity.PublicKey{}
	for _, d := range ds {
		parent[d.Device] = d.Parent
	}
	out := []identity.PublicKey{device}
	for _, d := range ds {
		if d.Revoked {
			continue
		}
		for p, i := parent[d.Device], 0; !p.IsZero() && i <= len(ds); p, i = parent[p], i+1 {
			if p == device {
				out = append(out, d.Device)
				break
			}
		}
	}
	return out
}

// fillMemberKEM fills a new member KEM key's fields for s: the key, its
// binding by this device, and its seed sealed to each current device of
// the member but this one and those in cut.
func (n *Node) fillMemberKEM(s *state.State, k *identity.KEMPrivateKey, cut []identity.PublicKey, kem, binding *[]byte, boxes *[]state.DeviceBox) error {
	pub := k.Public()
	*kem = pub.Bytes()
	b := identity.SignKEMBinding(n.id.SigningKey(), pub)
	*binding = b[:]
	*boxes = nil
	for _, d := range s.Devices(n.me()) {
		if d.Revoked || d.Device == n.id.ID() || slices.Contains(cut, d.Device) {
			continue
		}
		if d.KEM.IsZero() {
			return fmt.Errorf("device %s has no KEM key on record in %s", d.Device.Short(), s.Name())
		}
		box, err := state.SealIdentityKEM(d.KEM, n.me(), k)
		if err != nil {
			return err
		}
		*boxes = append(*boxes, state.DeviceBox{Device: d.Device, Box: box})
	}
	slices.SortFunc(*boxes, func(x, y state.DeviceBox) int { return x.Device.Compare(y.Device) })
	return nil
}

// memberPublic returns the member's public identity as this home
// publishes it: the member ID, this home's name for it, and the member's
// current KEM key bound by this home's signing key.
func (n *Node) memberPublic() identity.Public {
	k, _ := n.memberKEMs()
	return identity.Public{Name: n.id.Name(), ID: n.me(), KEM: k.Public(), KEMBinding: identity.SignKEMBinding(n.id.SigningKey(), k.Public())}
}

// DevicePending reports whether this home asked to become a device
// (RequestDevice) and has not accepted an approval yet.
func (n *Node) DevicePending() bool { return n.dev != nil && n.dev.Member.IsZero() }
