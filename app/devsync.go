package app

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/fxamacker/cbor/v2"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// The device mailbox (docs/devices.md §7.1): a topic only the member's
// current devices can find, read and write, on the relays of the
// member's pursuances. Each device posts there, when it changed, the list
// of the member's pursuances it holds (what an approval carries for
// each); each device reads it every sync round and takes up the ones it
// lacks. Its key derives from the member's current KEM key, which every
// current device holds and a revocation replaces: a revoked device
// neither finds nor opens the mailbox from then on.

const (
	labelMailboxSeed  = "pursuance/v1/device-mailbox"
	labelMailboxScope = "pursuance/v1/device-mailbox-scope"
	// maxMailboxRead bounds the entries read from the mailbox on one
	// relay in one round.
	maxMailboxRead = 64
	// maxMailboxRelays bounds the relays a device posts to and reads
	// from.
	maxMailboxRelays = 8
)

// mailboxEntry is what one envelope in the mailbox holds.
type mailboxEntry struct {
	Member     identity.PublicKey `cbor:"1,keyasint"`
	From       identity.PublicKey `cbor:"2,keyasint"` // the posting device
	Pursuances []approvedPursuit  `cbor:"3,keyasint"`
	Asks       []joinAsk          `cbor:"4,keyasint,omitempty"` // a linked device's joins for the root to make
	Answers    []joinAnswer       `cbor:"5,keyasint,omitempty"` // the root's answers
	Certs      []childCert        `cbor:"6,keyasint,omitempty"` // a rotated root's new certificates of its children
}

// childCert is a rotated root's certificate of one of its children,
// whose own certificate names a key of the root's that was replaced
// (docs/devices.md §6.1): the child adds its proof and publishes the add
// in the logs that lack it.
type childCert struct {
	Device    identity.PublicKey `cbor:"1,keyasint"`
	Parent    identity.PublicKey `cbor:"2,keyasint"` // the root's current key
	ParentKEM []byte             `cbor:"3,keyasint"` // its device KEM key
	Name      string             `cbor:"4,keyasint"` // the child's name, as certified
	KEM       []byte             `cbor:"5,keyasint"` // the child's device KEM key, as certified
	Cert      []byte             `cbor:"6,keyasint"`
}

// maxChildCerts bounds the certificates one entry carries: a member's
// devices.
const maxChildCerts = state.MaxDevices

// joinAsk is a join a linked device asks its root to make (the invite
// code), or a pursuance it asks its root to found (Found), under a
// random ID.
type joinAsk struct {
	ID    [16]byte  `cbor:"1,keyasint"`
	Code  string    `cbor:"2,keyasint,omitempty"`
	Found *foundAsk `cbor:"3,keyasint,omitempty"`
}

// foundAsk is what a root needs to found a pursuance for a device: the
// charter's wire form (its name included) and the relays to publish to.
type foundAsk struct {
	Charter []byte   `cbor:"1,keyasint"`
	Relays  []string `cbor:"2,keyasint,omitempty"`
}

// joinAnswer is what the root made of an ask: the pursuance joined, or
// why not.
type joinAnswer struct {
	ID        [16]byte `cbor:"1,keyasint"`
	Pursuance event.ID `cbor:"2,keyasint"`
	Err       string   `cbor:"3,keyasint,omitempty"`
}

// maxDoneKept bounds the answers a root keeps and lists; maxAsks the
// joins a device may have asked and not had answered.
const (
	maxDoneKept = 64
	maxAsks     = 16
	// maxFoundAsks bounds the foundings a device may have asked and not
	// had answered: each carries a charter of up to
	// charter.MaxWireSize bytes, and the entry must fit an envelope.
	maxFoundAsks = 4
)

// AskJoin, on a linked device, asks the member's root to join with code
// (docs/devices.md §8): the ask goes into this device's mailbox entry,
// posted now; the root joins at its next round, and the pursuance comes
// back as any other through the mailbox.
func (n *Node) AskJoin(ctx context.Context, code InviteCode) error {
	if !n.IsDevice() {
		return errors.New("this home is the member's root: join here")
	}
	d := n.ensureDevice()
	for _, a := range d.Asked {
		if a.Code == code.String() {
			return nil
		}
	}
	if len(d.Asked) >= maxAsks {
		return fmt.Errorf("%d joins are already waiting for your root home: run `pursuance sync` there first", maxAsks)
	}
	a := joinAsk{Code: code.String()}
	if _, err := io.ReadFull(n.rand(), a.ID[:]); err != nil {
		return err
	}
	d.Asked = append(d.Asked, a)
	return n.saveDevice(d)
}

// Asked returns what this device asked its root to do and has no answer
// for: the invite codes of joins, and "found NAME" for foundings.
func (n *Node) Asked() []string {
	if n.dev == nil {
		return nil
	}
	var out []string
	for _, a := range n.dev.Asked {
		if a.Found != nil {
			name := "?"
			if c, err := charter.Unmarshal(a.Found.Charter); err == nil {
				name = c.Name
			}
			out = append(out, "found "+name)
			continue
		}
		out = append(out, a.Code)
	}
	return out
}

// AskFound, on a linked device, asks the member's root to found a
// pursuance under c and publish it to relays (docs/devices.md §8): the
// ask goes into this device's mailbox entry; the root founds at its next
// round, and the pursuance comes back as any other through the mailbox.
func (n *Node) AskFound(ctx context.Context, c *charter.Charter, relays []string) error {
	if !n.IsDevice() {
		return errors.New("this home is the member's root: found here")
	}
	if err := c.Validate(); err != nil {
		return err
	}
	wire, err := c.MarshalBinary()
	if err != nil {
		return err
	}
	for _, u := range relays {
		if err := state.CheckRelayURL(u); err != nil {
			return err
		}
	}
	if len(relays) == 0 {
		// The device takes the pursuance up from its relays: without
		// one, it could not fetch what its root founded.
		return errors.New("a linked device founds through its root home, and takes the pursuance up from its relays: name one (--relay URL)")
	}
	d := n.ensureDevice()
	found := 0
	for _, a := range d.Asked {
		if a.Found != nil {
			found++
		}
	}
	if found >= maxFoundAsks || len(d.Asked) >= maxAsks {
		return fmt.Errorf("%d foundings are already waiting for your root home: run `pursuance sync` there first", found)
	}
	a := joinAsk{Found: &foundAsk{Charter: wire, Relays: slices.Clone(relays)}}
	if _, err := io.ReadFull(n.rand(), a.ID[:]); err != nil {
		return err
	}
	d.Asked = append(d.Asked, a)
	return n.saveDevice(d)
}

// foundFor, on the root, founds the pursuance a device asked for and
// publishes it to the relays the ask names.
func (n *Node) foundFor(ctx context.Context, f *foundAsk) (event.ID, error) {
	c, err := charter.Unmarshal(f.Charter)
	if err != nil {
		return event.ID{}, fmt.Errorf("the charter it sent is invalid: %v", err)
	}
	for _, u := range f.Relays {
		if err := state.CheckRelayURL(u); err != nil {
			return event.ID{}, err
		}
	}
	id, err := n.Create(ctx, c)
	if err != nil {
		return event.ID{}, err
	}
	if len(f.Relays) > 0 {
		if _, err := n.SetRelays(ctx, id, f.Relays, nil, DoOptions{}); err != nil {
			return id, err
		}
		if res, err := n.Sync(ctx, id, SyncOptions{}); err != nil || relayErrors(res) != "" {
			// Founded: the next round sends it.
			if n.opts.Logger != nil {
				n.opts.Logger.Warn("publishing a pursuance founded for a device", "pursuance", id.Short(), "err", errors.Join(err, errors.New(relayErrors(res))))
			}
		}
	}
	return id, nil
}

// MailboxKey returns the group-shaped key whose envelopes and topic make
// member's device mailbox on the relay at relayURL under the member's KEM
// key kem: scope pursuance SHA-256(labelMailboxScope ‖ 00 ‖ member ‖
// relayURL), generation 1, seed HKDF-SHA256(ikm = kem's private seed,
// info = labelMailboxSeed ‖ 00 ‖ member). Envelopes and topic key then
// derive as for any group key (docs/keys.md), so each relay has its own
// topic and envelope key: two relays cannot match the mailbox's topic or
// ciphertexts.
func MailboxKey(member identity.PublicKey, kem *identity.KEMPrivateKey, relayURL string) (keys.Key, error) {
	seed, err := hkdf.Key(sha256.New, kem.Bytes(), nil, labelMailboxSeed+"\x00"+string(member[:]), 32)
	if err != nil {
		return keys.Key{}, err
	}
	scope := sha256.Sum256(append(append([]byte(labelMailboxScope+"\x00"), member[:]...), relayURL...))
	k := keys.Key{Scope: keys.Scope{Pursuance: event.ID(scope)}, Gen: 1}
	copy(k.Seed[:], seed)
	return k, nil
}

// mailboxKEM returns the member KEM key this home's device mailbox is
// under, and its fingerprint, or nil when the home is no device of a
// member with several (it never linked nor was linked).
func (n *Node) mailboxKEM() (*identity.KEMPrivateKey, [32]byte) {
	if n.dev == nil || n.dev.Member.IsZero() {
		return nil, [32]byte{}
	}
	cur, _ := n.memberKEMs()
	return cur, sha256.Sum256(cur.Public().Bytes())
}

// mailbox returns this home's device mailbox on the relay at u: its
// key, its envelopes and its topic.
func (n *Node) mailbox(kem *identity.KEMPrivateKey, u string) (keys.Key, *keys.Envelopes, error) {
	k, err := MailboxKey(n.me(), kem, u)
	if err != nil {
		return k, nil, err
	}
	env, err := keys.NewEnvelopes(&k)
	return k, env, err
}

// mailboxRelays returns the relays of the member's pursuances here,
// sorted, at most maxMailboxRelays.
func (n *Node) mailboxRelays(ps []approvedPursuit) []string {
	var out []string
	for _, p := range ps {
		for _, r := range p.Relays {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	slices.Sort(out)
	if len(out) > maxMailboxRelays {
		out = out[:maxMailboxRelays]
	}
	return out
}

// MailboxRelays returns the relays this home's device mailbox uses: those
// of the member's pursuances here. A linked device that asks its root to
// found without naming relays (the web UI's New form) asks for these, the
// relays its root already reaches it on.
func (n *Node) MailboxRelays(ctx context.Context) ([]string, error) {
	ps, err := n.memberPursuits(ctx)
	if err != nil {
		return nil, err
	}
	return n.mailboxRelays(ps), nil
}

// DeviceSyncResult is what one round of the device mailbox did.
type DeviceSyncResult struct {
	Added  []event.ID // pursuances taken up from the mailbox
	Posted bool       // this device posted its list
}

// ReadDeviceMailbox reads the device mailbox and takes up each pursuance
// another device of the member listed there that this home lacks: it
// keeps its ID, relays and group key, fetches it with fetch, and checks
// that the member is one of its members, as a join would. Then, in every
// pursuance the member is in here, it publishes this device's own add if
// the log lacks it (for the next sync to send).
func (n *Node) ReadDeviceMailbox(ctx context.Context, fetch func(context.Context, event.ID) error) (DeviceSyncResult, error) {
	var res DeviceSyncResult
	kem, mark := n.mailboxKEM()
	if kem == nil {
		return res, nil
	}
	mine, err := n.memberPursuits(ctx)
	if err != nil {
		return res, err
	}
	d := n.ensureDevice()
	if d.MailboxKEM != mark {
		d.MailboxKEM, d.MailboxCursors = mark, nil
	}
	if d.MailboxCursors == nil {
		d.MailboxCursors = map[string]uint64{}
	}
	held := map[event.ID]bool{}
	if ids, err := n.secretPursuances(); err == nil {
		for _, p := range ids {
			held[p] = true
		}
	}
	var errs []error
	var asks []joinAsk
	for _, u := range n.mailboxRelays(mine) {
		k, env, err := n.mailbox(kem, u)
		if err != nil {
			return res, err
		}
		page, err := n.relayClient(event.ID(k.Scope.Pursuance), u).Read(ctx, env.Topic(), d.MailboxCursors[u], maxMailboxRead)
		if err != nil {
			errs = append(errs, fmt.Errorf("device mailbox on %s: %w", u, err))
			continue
		}
		for _, en := range page.Entries {
			d.MailboxCursors[u] = en.Cursor
			b, err := env.Open(en.Envelope)
			if err != nil {
				continue // not sealed under the mailbox key: nobody's we know
			}
			var m mailboxEntry
			if err := cbor.Unmarshal(b, &m); err != nil || m.Member != n.me() || m.From == n.id.ID() {
				continue
			}
			asks = append(asks, m.Asks...)
			if len(m.Certs) <= maxChildCerts {
				for _, c := range m.Certs {
					if c.Device == n.id.ID() {
						n.takeCert(d, c)
					}
				}
			}
			for _, an := range m.Answers {
				i := slices.IndexFunc(d.Asked, func(a joinAsk) bool { return a.ID == an.ID })
				if i < 0 {
					continue
				}
				if an.Err != "" {
					what := "join"
					if d.Asked[i].Found != nil {
						what = "found the pursuance you asked for"
					}
					errs = append(errs, fmt.Errorf("your root home could not %s: %s", what, an.Err))
				}
				d.Asked = slices.Delete(d.Asked, i, i+1)
			}
			for _, ap := range m.Pursuances {
				if held[ap.ID] {
					continue
				}
				held[ap.ID] = true
				if err := n.takeUp(ctx, ap, fetch); err != nil {
					errs = append(errs, fmt.Errorf("%s (from the device mailbox): %w", ap.ID.Short(), err))
					continue
				}
				res.Added = append(res.Added, ap.ID)
			}
		}
	}
	if err := n.saveDevice(d); err != nil {
		return res, err
	}
	if !n.IsDevice() {
		if err := n.answerAsks(ctx, asks); err != nil {
			errs = append(errs, err)
		}
	}
	if n.IsDevice() {
		if err := n.publishOwnAdds(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// answerAsks, on the root, makes the joins its devices asked for that it
// has not answered, and keeps the answers for its next post.
func (n *Node) answerAsks(ctx context.Context, asks []joinAsk) error {
	d := n.ensureDevice()
	changed := false
	for _, a := range asks {
		if slices.ContainsFunc(d.Done, func(x joinAnswer) bool { return x.ID == a.ID }) {
			continue
		}
		an := joinAnswer{ID: a.ID}
		if a.Found != nil {
			// Answered before founding: a crash in between leaves an
			// answer that says so, never a second pursuance.
			an.Err = "your root home stopped while founding it: look for it there (`pursuance list`)"
			d.Done = append(d.Done, an)
			if err := n.saveDevice(d); err != nil {
				return err
			}
			id, err := n.foundFor(ctx, a.Found)
			an.Pursuance, an.Err = id, ""
			if err != nil {
				an.Err = err.Error()
			}
			done := d.Done
			done[len(done)-1] = an
			d = n.ensureDevice() // founding may have saved the file meanwhile
			d.Done = done
			if len(d.Done) > maxDoneKept {
				d.Done = d.Done[len(d.Done)-maxDoneKept:]
			}
			changed = true
			continue
		}
		code, err := ParseInviteCode(a.Code)
		if err == nil {
			an.Pursuance = code.Pursuance
			if _, held := n.st.Get(ctx, code.Pursuance); held != nil {
				_, err = n.Join(ctx, code, DoOptions{})
			}
		}
		if err != nil {
			an.Err = err.Error()
		}
		d.Done = append(d.Done, an)
		if len(d.Done) > maxDoneKept {
			d.Done = d.Done[len(d.Done)-maxDoneKept:]
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return n.saveDevice(d)
}

// takeUp keeps what a device needs of ap, fetches it and checks the
// member is in it.
func (n *Node) takeUp(ctx context.Context, ap approvedPursuit, fetch func(context.Context, event.ID) error) error {
	var k keys.Key
	if len(ap.Seed) == len(k.Seed) && ap.Gen > 0 {
		k = keys.Key{Scope: keys.Scope{Pursuance: ap.ID}, Gen: ap.Gen}
		copy(k.Seed[:], ap.Seed)
	}
	if err := n.addSecrets(ap.ID, state.InviteSecret{}, k, ap.Relays); err != nil {
		return err
	}
	if err := fetch(ctx, ap.ID); err != nil {
		return err
	}
	s, err := n.State(ctx, ap.ID)
	if err != nil {
		return errors.New("nothing of it could be fetched from its relays yet: `pursuance sync` later")
	}
	if _, ok := s.Member(n.me()); !ok {
		return fmt.Errorf("its log, as fetched, does not have you as a member: `pursuance sync` later")
	}
	return nil
}

// publishOwnAdds publishes this device's add (copied from a log that has
// it) in each pursuance the member is in here whose log lacks it.
func (n *Node) publishOwnAdds(ctx context.Context) error {
	ps, err := n.Pursuances(ctx)
	if err != nil {
		return err
	}
	var op *state.Device
	var lack []event.ID
	for _, sum := range ps {
		s, err := n.State(ctx, sum.ID)
		if err != nil {
			return err
		}
		if _, ok := s.Member(n.me()); !ok {
			continue
		}
		found := false
		for _, d := range s.Devices(n.me()) {
			if d.Device != n.id.ID() {
				continue
			}
			found = true
			if op == nil && !d.Added.IsZero() {
				op, _ = n.deviceAddOp(ctx, s, d.Device)
			}
		}
		if !found {
			lack = append(lack, sum.ID)
		}
	}
	if n.dev != nil && n.dev.Recert != nil {
		// Certified anew by the rotated root: what a log that knows
		// only the root's new key accepts.
		op = n.dev.Recert
	}
	if op == nil {
		return nil
	}
	var errs []error
	for _, p := range lack {
		if err := n.publishAdd(ctx, p, op); err != nil {
			errs = append(errs, fmt.Errorf("%s: publishing this device: %w", p.Short(), err))
		}
	}
	return errors.Join(errs...)
}

// deviceAddOp returns the add that makes dev a device of the member in
// another log, as s knows it: the add that certified it, or, for a device
// that rotated its key since (docs/devices.md §6.2), the add of its first
// key with the line of its replacements down to dev.
func (n *Node) deviceAddOp(ctx context.Context, s *state.State, dev identity.PublicKey) (*state.Device, error) {
	byKey := map[identity.PublicKey]state.DeviceInfo{}
	for _, d := range s.Devices(n.me()) {
		byKey[d.Device] = d
	}
	var line []state.Device
	k := dev
	for range state.MaxRootLine + 1 {
		d, ok := byKey[k]
		if !ok || d.Added.IsZero() {
			return nil, fmt.Errorf("device %s has no certificate in this log", k.Short())
		}
		e, err := n.st.Get(ctx, d.Added)
		if err != nil {
			return nil, err
		}
		o, err := state.DecodeOp(e.Kind, e.Body())
		if err != nil {
			return nil, err
		}
		op, ok := o.(*state.Device)
		if !ok || op.Added() != k {
			return nil, fmt.Errorf("event %s does not certify %s", d.Added.Short(), k.Short())
		}
		switch op.Action {
		case state.DeviceAdd:
			if len(line) == 0 {
				return op, nil
			}
			c := *op
			c.Line = append(slices.Clone(op.Line), line...)
			if len(c.Line) > state.MaxRootLine {
				return nil, fmt.Errorf("device %s rotated more than %d times: link it again", dev.Short(), state.MaxRootLine)
			}
			return &c, nil
		case state.DeviceReplace:
			link := state.Device{Action: state.DeviceReplace, Identity: op.Identity, Device: op.Device, Parent: op.Parent,
				ParentKEM: op.ParentKEM, Name: op.Name, KEM: op.KEM, Cert: op.Cert, Proof: op.Proof}
			line = append([]state.Device{link}, line...)
			k = op.Parent
		default:
			return nil, fmt.Errorf("event %s does not certify %s", d.Added.Short(), k.Short())
		}
	}
	return nil, fmt.Errorf("device %s rotated more than %d times: link it again", dev.Short(), state.MaxRootLine)
}

// PostDeviceMailbox posts this home's list of the member's pursuances to
// the device mailbox when it differs from what it last posted under the
// current mailbox key.
func (n *Node) PostDeviceMailbox(ctx context.Context) (bool, error) {
	kem, mark := n.mailboxKEM()
	if kem == nil {
		return false, nil
	}
	ps, err := n.memberPursuits(ctx)
	if err != nil || len(ps) == 0 {
		return false, err
	}
	ent := mailboxEntry{Member: n.me(), From: n.id.ID(), Pursuances: ps}
	if n.dev != nil {
		ent.Asks, ent.Answers = n.dev.Asked, n.dev.Done
		if !n.IsDevice() && n.id.Rotated() {
			ent.Certs = n.childCerts(ctx)
		}
	}
	pt, err := cbor.Marshal(ent)
	if err != nil {
		return false, err
	}
	relays := n.mailboxRelays(ps)
	h := sha256.New()
	h.Write(mark[:])
	h.Write(pt)
	for _, u := range relays {
		h.Write([]byte(u + "\x00"))
	}
	sum := h.Sum(nil)
	d := n.ensureDevice()
	if bytes.Equal(d.MailboxPosted, sum) {
		return false, nil
	}
	var errs []error
	sent := 0
	for _, u := range relays {
		k, env, err := n.mailbox(kem, u)
		if err != nil {
			return false, err
		}
		box, err := env.Seal(pt, n.rand())
		if err != nil {
			return false, err
		}
		_, sk, err := k.Topic()
		if err != nil {
			return false, err
		}
		if _, err := n.relayClient(event.ID(k.Scope.Pursuance), u).Append(ctx, env.Topic(), sk, [][]byte{box}); err != nil {
			errs = append(errs, fmt.Errorf("device mailbox on %s: %w", u, err))
			continue
		}
		sent++
	}
	if sent == 0 {
		return false, errors.Join(errs...)
	}
	d.MailboxPosted = sum
	if err := n.saveDevice(d); err != nil {
		return true, err
	}
	return true, errors.Join(errs...)
}
