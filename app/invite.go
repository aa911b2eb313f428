package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/ingest"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
	"github.com/pursuance/pursuance/store"
)

// InviteCode is what a newcomer needs to join: the pursuance, the invite
// event, the invite's secret (the seed of its signing key, from which its
// KEM key is derived too) and the group key current when it was made, which
// opens the pursuance's log. Whoever holds the code can read the
// pursuance and join once, so it must travel over a channel the inviter
// trusts.
type InviteCode struct {
	Pursuance event.ID
	Invite    event.ID
	Key       *identity.SigningKey
	Group     keys.Key // Gen 0 when the inviter held no group key
	Relays    []string // where the pursuance's log is, at the time of the invite
}

const inviteCodeSize = 2*event.IDSize + 32 + 8 + keys.SeedSize + inviteChecksumSize // without relays

const (
	invitePrefix        = "pi1"
	inviteChecksumLabel = "pursuance/v1/invite-code-checksum"
	inviteChecksumSize  = 3
)

var inviteEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrBadInviteCode is wrapped by ParseInviteCode's errors.
var ErrBadInviteCode = errors.New("not a valid invite code")

// String returns the code's text form: "pi1" and the base32 of the
// pursuance ID, the invite event ID, the invite key's seed, the group key's
// generation and seed, and a 3-byte checksum (docs/invites.md).
func (c InviteCode) String() string {
	raw := make([]byte, 0, inviteCodeSize)
	raw = append(raw, c.Pursuance[:]...)
	raw = append(raw, c.Invite[:]...)
	raw = append(raw, c.Key.Seed()...)
	raw = binary.BigEndian.AppendUint64(raw, c.Group.Gen)
	raw = append(raw, c.Group.Seed[:]...)
	if len(c.Relays) > 0 {
		raw = binary.AppendUvarint(raw, uint64(len(c.Relays)))
		for _, r := range c.Relays {
			raw = binary.AppendUvarint(raw, uint64(len(r)))
			raw = append(raw, r...)
		}
	}
	raw = append(raw, inviteChecksum(raw)...)
	return invitePrefix + inviteEncoding.EncodeToString(raw)
}

func inviteChecksum(b []byte) []byte {
	h := sha256.New()
	h.Write([]byte(inviteChecksumLabel))
	h.Write(b)
	return h.Sum(nil)[:inviteChecksumSize]
}

// ParseInviteCode parses an invite code; a mistyped code is an error.
func ParseInviteCode(s string) (InviteCode, error) {
	// Mail and chat wrap long lines, and a QR code carries the code in
	// upper case: white space anywhere is dropped, case folded.
	s = strings.ToLower(strings.Join(strings.Fields(s), ""))
	body, ok := strings.CutPrefix(s, invitePrefix)
	if !ok {
		return InviteCode{}, fmt.Errorf("%w: it does not start with %q", ErrBadInviteCode, invitePrefix)
	}
	raw, err := inviteEncoding.DecodeString(body)
	if err != nil || len(raw) < inviteCodeSize || inviteEncoding.EncodeToString(raw) != body {
		return InviteCode{}, fmt.Errorf("%w: wrong length or characters", ErrBadInviteCode)
	}
	n := len(raw) - inviteChecksumSize
	if !bytes.Equal(inviteChecksum(raw[:n]), raw[n:]) {
		return InviteCode{}, fmt.Errorf("%w: checksum mismatch (a typo?)", ErrBadInviteCode)
	}
	var c InviteCode
	copy(c.Pursuance[:], raw[:32])
	copy(c.Invite[:], raw[32:64])
	c.Key, err = identity.SigningKeyFromSeed(raw[64:96])
	if err != nil {
		return InviteCode{}, fmt.Errorf("%w: %v", ErrBadInviteCode, err)
	}
	c.Group = keys.Key{Scope: keys.Scope{Pursuance: c.Pursuance}, Gen: binary.BigEndian.Uint64(raw[96:104])}
	copy(c.Group.Seed[:], raw[104:136])
	tail := raw[136:n]
	if len(tail) > 0 {
		count, k := binary.Uvarint(tail)
		if k <= 0 || count > state.MaxRelays {
			return InviteCode{}, fmt.Errorf("%w: bad relay list", ErrBadInviteCode)
		}
		tail = tail[k:]
		for range count {
			size, k := binary.Uvarint(tail)
			if k <= 0 || size > uint64(len(tail)-k) {
				return InviteCode{}, fmt.Errorf("%w: bad relay list", ErrBadInviteCode)
			}
			r := string(tail[k : k+int(size)])
			if err := state.CheckRelayURL(r); err != nil {
				return InviteCode{}, fmt.Errorf("%w: %v", ErrBadInviteCode, err)
			}
			c.Relays = append(c.Relays, r)
			tail = tail[k+int(size):]
		}
		if len(tail) != 0 {
			return InviteCode{}, fmt.Errorf("%w: bytes after the relay list", ErrBadInviteCode)
		}
	}
	return c, nil
}

// Invite publishes an invite into role: joinable uses times (0: no limit)
// until expires from now (0: never). It returns the code to hand over.
// When the charter puts invites under a quorum, the invite is proposed
// (Result.Proposed) and the code works once the proposal is carried.
func (n *Node) Invite(ctx context.Context, p event.ID, role string, expires time.Duration, uses uint64, opts DoOptions) (InviteCode, Result, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return InviteCode{}, Result{}, err
	}
	// Keys first: the invite seals the current generations, which must not
	// be stale (heal would otherwise rotate them under it).
	if s, _, err = n.heal(ctx, s); err != nil {
		return InviteCode{}, Result{}, err
	}
	// A role with no key yet gets its first generation now, so that the
	// invite seals it: the newcomer then reads what is written for its
	// role from the start, with nobody online (without it, the newcomer
	// would wait for a holder to re-key once it has joined). An inviter
	// who does not read the role leaves it to the first holder who writes.
	if _, keyed := s.CurrentKey(role); !keyed && role != "" && slices.Contains(s.EntitledScopes(n.me()), role) {
		if _, err := n.rotate(ctx, s, role, DoOptions{}); err == nil {
			if s, err = n.State(ctx, p); err != nil {
				return InviteCode{}, Result{}, err
			}
		}
	}
	key, err := identity.NewSigningKey(n.rand())
	if err != nil {
		return InviteCode{}, Result{}, err
	}
	kem, err := keys.InviteKEMKey(key.Seed())
	if err != nil {
		return InviteCode{}, Result{}, err
	}
	op := &state.Invite{Key: key.Public(), Role: role, Uses: uses, KEM: kem.Public().Bytes()}
	if expires > 0 {
		op.Expires = uint64(n.opts.Now().Add(expires).UnixMilli())
	}
	// Seal the current generations the newcomer needs (the group key and
	// the role's) to the invite's KEM key; the group key also goes in the
	// code, to open the log before the newcomer has joined.
	ring, err := n.KeyRing(ctx, s)
	if err != nil {
		return InviteCode{}, Result{}, err
	}
	var group keys.Key
	for _, scope := range []string{"", role} {
		cur, ok := s.CurrentKey(scope)
		if !ok {
			continue
		}
		i := slices.IndexFunc(ring, func(h HeldKey) bool { return h.Update == cur.Update })
		if i < 0 {
			continue // not held: whoever holds it re-keys once the newcomer is in
		}
		k := ring[i].Key
		if scope == "" {
			group = k
		}
		box, err := keys.SealSeed(&k, key.Public(), kem.Public())
		if err != nil {
			return InviteCode{}, Result{}, err
		}
		op.Boxes = append(op.Boxes, state.InviteSeal{Role: scope, Update: cur.Update, Box: box})
	}
	// Under a quorum, the invite is proposed; the code names the proposal,
	// which is the invite's ID once carried (docs/rules.md).
	res, err := n.Act(ctx, p, op, opts)
	if err != nil {
		return InviteCode{}, Result{}, err
	}
	relays := s.Relays()
	if len(relays) == 0 && n.opts.NodeRelay != "" {
		relays = []string{n.opts.NodeRelay}
	}
	return InviteCode{Pursuance: p, Invite: res.Event.ID(), Key: key, Group: group, Relays: relays}, res, nil
}

// Accept keeps an invite code's keys in this home (sealed to this member),
// so that the pursuance's log can be opened: call it before importing the
// log of a pursuance one was invited into. Join calls it too.
func (n *Node) Accept(code InviteCode) error {
	inv := state.InviteSecret{Invite: code.Invite}
	copy(inv.Seed[:], code.Key.Seed())
	return n.addSecrets(code.Pursuance, inv, code.Group, code.Relays)
}

// Join joins the pursuance an invite code names: it reads the log from
// opts.Export (a member's export) or fetches it from the relays the code
// names and opts.Peers, signs the join on top of it and publishes it.
//
// A join that fails leaves nothing behind. A pursuance new to this home is
// brought into a staging area first (a store in memory and a private
// directory in the home for the code's keys and the sync cursors), and
// moves into the home only once the join stands; a refused code, a log
// that could not be fetched or a crash leave the home as it was (a
// staging directory left by a crash is removed by the next join).
func (n *Node) Join(ctx context.Context, code InviteCode, opts DoOptions) (Result, error) {
	if code.Reach() == ReachTor && n.opts.Dial == nil && opts.Export == nil && len(opts.Peers) == 0 {
		// Nothing to fetch the log from without Tor: say so before
		// anything is staged.
		return Result{}, fmt.Errorf("this invite code names only onion services (%s), which need Tor: %w", strings.Join(code.Relays, ", "), ErrNeedsTor)
	}
	var res Result
	if _, err := n.st.Get(ctx, code.Pursuance); err == nil {
		// Already here (imported, or a member who left comes back).
		if res, err = n.join(ctx, n, code, opts); err != nil {
			return res, err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return Result{}, err
	} else if res, err = n.joinStaged(ctx, code, opts); err != nil {
		return res, err
	}
	// The member's other devices are its devices here too.
	n.carryDevices(ctx, code.Pursuance)
	// Publish the join (and anything else new) where the others will look.
	if urls, _ := n.relayURLs(ctx, code.Pursuance, nil); len(urls) > 0 {
		if sres, err := n.Sync(ctx, code.Pursuance, SyncOptions{Relays: opts.Peers}); err != nil || relayErrors(sres) != "" {
			res.SyncErr = errors.Join(err, errors.New(relayErrors(sres)))
		}
	}
	return res, nil
}

// joinStaged joins a pursuance new to this home in a staging node, and
// moves it into the home once the join stands.
func (n *Node) joinStaged(ctx context.Context, code InviteCode, opts DoOptions) (Result, error) {
	removeStaging(n.home)
	dir, err := os.MkdirTemp(n.home, stagingPrefix)
	if err != nil {
		return Result{}, fmt.Errorf("join: %w", err)
	}
	defer os.RemoveAll(dir)
	mem := store.NewMemory()
	stage := &Node{home: dir, pub: n.pub, id: n.id, keys: n.keys, st: mem, in: ingest.New(mem, ingest.Options{}), opts: n.opts, lockOf: n, folds: new(foldCache)}
	defer stage.Close()
	res, err := n.join(ctx, stage, code, opts)
	if err != nil {
		return res, err
	}
	if err := n.moveIn(ctx, stage, code); err != nil {
		return Result{}, fmt.Errorf("join: keep the pursuance on this home: %w", err)
	}
	return res, nil
}

// stagingPrefix names the directories in a home where Join brings a
// pursuance before its join stands.
const stagingPrefix = ".join-"

// removeStaging removes staging directories a crashed join left behind.
func removeStaging(home string) {
	old, _ := filepath.Glob(filepath.Join(home, stagingPrefix+"*"))
	for _, d := range old {
		os.RemoveAll(d)
	}
}

// join keeps the code's keys in at's home, brings the log into at's
// store, and signs the join there; it publishes nothing. at is n itself,
// or n's staging node.
func (n *Node) join(ctx context.Context, at *Node, code InviteCode, opts DoOptions) (Result, error) {
	if err := at.Accept(code); err != nil {
		return Result{}, err
	}
	if opts.Export != nil {
		ir, err := at.Import(ctx, opts.Export)
		if err != nil {
			return Result{}, err
		}
		if opts.Imported != nil {
			*opts.Imported = ir
		}
	}
	_, err := at.st.Get(ctx, code.Invite)
	if errors.Is(err, store.ErrNotFound) {
		// Fetch the log from the relays the code names.
		urls, uerr := at.relayURLs(ctx, code.Pursuance, opts.Peers)
		if uerr != nil {
			return Result{}, uerr
		}
		if len(urls) == 0 {
			return Result{}, fmt.Errorf("the invite's pursuance %s is not on this home yet, and the code names no relay; get its log first (`pursuance join CODE --log FILE`)", code.Pursuance.Short())
		}
		sres, serr := at.Sync(ctx, code.Pursuance, SyncOptions{PullOnly: true, Relays: opts.Peers})
		_, err = at.st.Get(ctx, code.Invite)
		if err != nil {
			why := relayErrors(sres)
			if serr != nil {
				why = serr.Error()
			}
			if why == "" {
				return Result{}, fmt.Errorf("the relays asked (%s) do not hold the invite: if it was just made, try again in a moment; if they dropped old events, join from a member's node (`--peer URL`)", strings.Join(urls, ", "))
			}
			return Result{}, fmt.Errorf("the invite's pursuance %s is not on this home, and its relays did not give it (%s)", code.Pursuance.Short(), why)
		}
	}
	if err != nil {
		return Result{}, err
	}
	if n.IsDevice() {
		return Result{}, errors.New("a linked device does not join itself: ask your root home to (`pursuance join CODE` here does, through the device mailbox), or join there; the pursuance reaches this device at its next sync")
	}
	line, err := n.rootLine()
	if err != nil {
		return Result{}, err
	}
	pub := n.memberPublic()
	op := &state.Join{
		Invite:  code.Invite,
		Proof:   code.Key.Sign(state.JoinMessage(code.Pursuance, code.Invite, pub.ID)),
		Name:    pub.Name,
		KEM:     pub.KEM.Bytes(),
		Binding: pub.KEMBinding[:],
		Root:    line,
	}
	return at.Do(ctx, code.Pursuance, op, DoOptions{Unchecked: opts.Unchecked})
}

// moveIn brings what a staging node holds of the code's pursuance into
// n's home: every event (verified again on the way in), the code's keys
// and what the staging sync learned of its relays.
func (n *Node) moveIn(ctx context.Context, stage *Node, code InviteCode) error {
	var batch [][]byte
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := n.in.Ingest(ctx, batch)
		batch = batch[:0]
		return err
	}
	err := stage.st.Iterate(ctx, code.Pursuance, func(e *event.Event) error {
		batch = append(batch, e.AppendEncode(nil))
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	if _, err := n.st.Get(ctx, code.Pursuance); err != nil {
		return err
	}
	if err := n.Accept(code); err != nil {
		return err
	}
	if stage.sdb == nil {
		return nil
	}
	sdb, err := n.syncDB(ctx)
	if err != nil {
		return err
	}
	return sdb.copyFrom(ctx, stage.sdb)
}

// Reach is where a newcomer holding an invite code can fetch the log.
type Reach string

const (
	ReachNowhere     Reach = "nowhere"      // the code names no relay: the log must come as a file
	ReachThisMachine Reach = "this-machine" // only loopback relays, such as the inviter's own node
	ReachRelays      Reach = "relays"       // a relay beyond this machine
	ReachTor         Reach = "tor"          // only onion services (and loopback): the newcomer needs Tor
)

// Reach says where a newcomer with the code can fetch the log: a code
// that names a clear-net relay beyond this machine works without Tor; one
// that names onion services and nothing else beyond this machine needs
// Tor.
func (c InviteCode) Reach() Reach {
	if len(c.Relays) == 0 {
		return ReachNowhere
	}
	onion := false
	for _, r := range c.Relays {
		switch {
		case IsOnionURL(r):
			onion = true
		case !loopbackURL(r):
			return ReachRelays
		}
	}
	if onion {
		return ReachTor
	}
	return ReachThisMachine
}

// loopbackURL reports whether a relay URL's host is a loopback address.
func loopbackURL(u string) bool {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return false
	}
	host, _, _ := strings.Cut(rest, "/")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// relayErrors summarizes the relays that failed in a sync, for people.
func relayErrors(r SyncResult) string {
	var out []string
	for _, rr := range r.Relays {
		if rr.Err != nil {
			out = append(out, rr.URL+": "+RelayError(rr.Err))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "; ")
}
