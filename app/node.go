package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
	"github.com/pursuance/pursuance/ingest"
	"github.com/pursuance/pursuance/internal/flock"
	"github.com/pursuance/pursuance/state"
	"github.com/pursuance/pursuance/store"
)

// ErrNotPermitted is wrapped by the error of an action the member's own
// roles do not permit; the rest of the message says which rule.
var ErrNotPermitted = errors.New("not permitted")

// ErrAmbiguous is wrapped when a name or prefix matches several things;
// the message lists them.
var ErrAmbiguous = errors.New("ambiguous")

// StoreFile is the name of the event store in a home.
const StoreFile = "events.db"

// Options are a Node's sources of time, randomness and logs.
type Options struct {
	Now  func() time.Time // time.Now when nil
	Rand io.Reader        // crypto/rand when nil
	// Logger receives what a user may want to know about but that does
	// not stop the work (a relay's lies), at level Warn; nil: dropped.
	Logger *slog.Logger
	// NodeRelay is the URL of the relay this member's node embeds
	// (`pursuance up`). Invite codes into a pursuance that has no relay of
	// its own name it, so that a newcomer fetches the log from the
	// inviter's node and the two sync through it.
	NodeRelay string
	// RelayTimeout is how long a sync waits for a relay that sends
	// nothing (0: relay.DefaultStall).
	// Set, it also bounds a connection to an onion service (0: 45 s,
	// relay.OnionConnectStall).
	RelayTimeout time.Duration
	// Dial opens every connection the node makes to relays and other
	// members' nodes, isolated by pursuance (DialFunc); nil: direct
	// connections, and onion services (.onion URLs) fail with
	// ErrNeedsTor. internal/cli makes it dial through Tor.
	Dial DialFunc

	// Folds, when set, is shared by the Nodes opened with it: a state one
	// folded serves the next while the log is the same (sharedfold.go).
	Folds *FoldCache
	// CheckpointWrites: the node is a command's, in a process that keeps
	// no state past it (no `pursuance up`): on Close it writes the
	// checkpoint of each pursuance it wrote to, so that the next command
	// opens it without reading the log (docs/fold.md, "When it is
	// written").
	CheckpointWrites bool

	limits syncLimits // zero: the defaults (tests lower them)
}

// Node is one member's home: identity, store and the pursuances in it. It
// is safe for use by one goroutine at a time.
type Node struct {
	home string
	pub  identity.Public
	id   *identity.Identity
	dev  *homeDevice // DeviceFile: the member this device speaks for (device.go); nil for a lone root
	keys homeKeys
	st   store.Store
	in   *ingest.Ingester
	lock *homeLock
	opts Options
	sdb  *syncDB // opened by the first sync
	adm  admissions
	lnk  *linkedStore // the other sides of links (linksync.go), opened when first needed
	// clients are the HTTP clients of the node's connections, one per
	// isolation string (net.go).
	clients netClients

	randMu sync.Mutex // serializes reads of Options.Rand
	turn   sync.Mutex // the home, among Sync's goroutines (lock.go)
	// lockOf, when set, is the node whose home's lock covers this one (a
	// join's staging node, inside the home); Sync lets go of that lock.
	lockOf *Node
	ckpt   bool       // keeps checkpoints of its folds in the home (checkpoint.go): a node of a home, not a staging one
	folds  *foldCache // the last state folded of each pursuance (fold.go; Options.Folds, else the home's kept by this process)
	// holding is whether lock is held, for readers without turn (fold.go).
	holding atomic.Bool
	// wrote holds the pursuances this node stored events of (its own, or
	// a sync's), for Options.CheckpointWrites; wroteMu guards it (a
	// sync's goroutines store).
	wroteMu sync.Mutex
	wrote   map[event.ID]bool
}

// Open opens the home at dir with its identity id, unlocked from the
// home's keystore (keystore.Open, which needs the passphrase): it checks
// that id is the home's, and opens, creating if needed, the event store.
// Everything the home keeps is encrypted at rest under keys derived from
// id (docs/keystore.md), so there is no opening a home without it; a home
// written by an earlier version, in the clear, is encrypted on the way.
// Open takes the home's lock, so that two processes never sign with one
// chain at once; a second Open on the same home waits for the first to
// Close.
func Open(ctx context.Context, dir string, id *identity.Identity, opts Options) (*Node, error) {
	pub, err := keystore.ReadPublic(dir)
	if err != nil {
		return nil, err
	}
	if id == nil {
		return nil, errors.New("app: opening a home needs its identity, unlocked with the passphrase: the home is encrypted under it")
	}
	if id.ID() != pub.ID {
		return nil, errors.New("app: not this home's identity")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lock, err := lockHome(ctx, dir)
	if err != nil {
		return nil, err
	}
	keys := deriveHomeKeys(id)
	if err := migrateSecretNames(dir, keys); err != nil {
		lock.Close()
		return nil, err
	}
	st, err := store.OpenSQLite(filepath.Join(dir, StoreFile), keys.store)
	if err != nil {
		lock.Close()
		if errors.Is(err, store.ErrWrongKey) {
			return nil, fmt.Errorf("%s does not open with the identity in %s: it belongs to another identity (was identity.json replaced?)", StoreFile, dir)
		}
		return nil, err
	}
	// The identity's public part, not the file's: its KEM key may be newer
	// than the one identity.json showed (a rotation).
	n := &Node{home: dir, pub: id.Public(), id: id, keys: keys, st: st, in: ingest.New(st, ingest.Options{}), lock: lock, opts: opts, folds: opts.Folds.cache(dir), ckpt: true}
	if err := n.loadDevice(); err != nil {
		st.Close()
		lock.Close()
		return nil, err
	}
	n.holding.Store(lock != nil)
	return n, nil
}

// lockPoll is how often lockHome tries again for a home another process
// holds.
const lockPoll = 50 * time.Millisecond

// lockHome takes an exclusive lock on the home's lock file, waiting (until
// ctx ends) if another process holds it. Within this process the Nodes of
// one home (a node's web requests, served commands and rounds) take turns
// first (homeTurn): one waiting for another is handed the home the moment
// it is let go, instead of finding it at its next poll, lockPoll later.
func lockHome(ctx context.Context, dir string) (*homeLock, error) {
	turn := homeTurn(dir)
	select {
	case turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("lock home: another pursuance process is using %s: %w", dir, ctx.Err())
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		<-turn
		return nil, fmt.Errorf("lock home: %w", err)
	}
	for {
		lockTries.Add(1)
		ok, err := flock.TryLock(f)
		if err != nil {
			f.Close()
			<-turn
			return nil, fmt.Errorf("lock home: %w", err)
		}
		if ok {
			return &homeLock{f: f, turn: turn}, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			<-turn
			return nil, fmt.Errorf("lock home: another pursuance process is using %s: %w", dir, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// lockTries counts the attempts at a home's lock file (tests).
var lockTries atomic.Int64

// homeLock is a home's lock held by a Node of this process: the lock
// file, locked, and the home's turn in this process.
type homeLock struct {
	f      *os.File
	turn   chan struct{}
	closed bool
}

// Close releases the lock file, then the turn: the next Node of this
// process waiting for the home takes both.
func (l *homeLock) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.f.Close()
	<-l.turn
	return err
}

// homeTurnsOf holds, per home directory, the turn this process's Nodes of
// it take before its lock file: a channel with room for one.
var homeTurnsOf struct {
	sync.Mutex
	by map[string]chan struct{}
}

// homeTurn returns the turn of the home at dir in this process.
func homeTurn(dir string) chan struct{} {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	homeTurnsOf.Lock()
	defer homeTurnsOf.Unlock()
	if homeTurnsOf.by == nil {
		homeTurnsOf.by = map[string]chan struct{}{}
	}
	t := homeTurnsOf.by[dir]
	if t == nil {
		t = make(chan struct{}, 1)
		homeTurnsOf.by[dir] = t
	}
	return t
}

// Close closes the store and releases the home.
func (n *Node) Close() error {
	n.checkpointWrites()
	n.clients.close()
	err := n.st.Close()
	if n.sdb != nil {
		err = errors.Join(err, n.sdb.Close())
	}
	if n.lnk != nil {
		err = errors.Join(err, n.lnk.st.Close())
	}
	if n.lock != nil {
		n.lock.Close()
	}
	return err
}

// Me returns this home's public identity.
func (n *Node) Me() identity.Public {
	if n.dev != nil {
		return n.memberPublic() // the member this device speaks for (device.go)
	}
	return n.pub
}

// Unlock gives the node id, which must be this home's identity: after a
// rotation of its KEM key (keystore.RotateKEM) or once a rotation of its
// signing key is settled (keystore.Settle), the newer form of the identity
// the node was opened with: same signing key, member and home seed (the
// home's keys at rest come from the home seed, which no rotation changes).
func (n *Node) Unlock(id *identity.Identity) error {
	if id.ID() != n.pub.ID || id.Member() != n.id.Member() || string(id.HomeSeed()) != string(n.id.HomeSeed()) {
		return errors.New("app: not this home's identity")
	}
	n.id, n.pub = id, id.Public() // the KEM key may be newer than the one read at Open
	return nil
}

// Store returns the node's event store, for tools that move raw events.
func (n *Node) Store() store.Store { return n.st }

// Summary names a pursuance.
type Summary struct {
	ID   event.ID `json:"pursuance"`
	Name string   `json:"name"`
}

// Pursuances lists the pursuances in this home, by name.
func (n *Node) Pursuances(ctx context.Context) ([]Summary, error) {
	ids, err := n.st.Pursuances(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(ids))
	for _, id := range ids {
		name, err := n.nameOf(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, Summary{ID: id, Name: name})
	}
	slices.SortFunc(out, func(a, b Summary) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// nameOf returns a pursuance's name in force as its last state had it
// (State records it), else the name in its founding charter.
func (n *Node) nameOf(ctx context.Context, p event.ID) (string, error) {
	if sdb, err := n.syncDB(ctx); err == nil {
		if name, err := sdb.name(ctx, p); err == nil && name != "" {
			return name, nil
		}
	}
	g, err := n.st.Get(ctx, p)
	if err != nil {
		return "", err
	}
	op, err := state.DecodeOp(g.Kind, g.Body())
	if err != nil {
		return "", err
	}
	gen, ok := op.(*state.Genesis)
	if !ok {
		return "", fmt.Errorf("pursuance %s: first event is not a genesis", p.Short())
	}
	c, err := charter.Unmarshal(gen.Charter)
	if err != nil {
		return "", err
	}
	return c.Name, nil
}

// Resolve finds a pursuance by full ID, unique ID prefix, or unique name.
func (n *Node) Resolve(ctx context.Context, ref string) (event.ID, error) {
	all, err := n.Pursuances(ctx)
	if err != nil {
		return event.ID{}, err
	}
	if len(all) == 0 {
		return event.ID{}, errors.New("no pursuances on this home yet: create one with `pursuance create --name NAME`")
	}
	var byName, byPrefix []Summary
	low := strings.ToLower(ref)
	for _, s := range all {
		if s.ID.String() == low {
			return s.ID, nil
		}
		// Names match as member names do: without regard to case.
		if strings.EqualFold(s.Name, ref) {
			byName = append(byName, s)
		}
		if len(low) >= MinPrefix && strings.HasPrefix(s.ID.String(), low) {
			byPrefix = append(byPrefix, s)
		}
	}
	for _, m := range [][]Summary{byName, byPrefix} {
		switch len(m) {
		case 0:
			continue
		case 1:
			return m[0].ID, nil
		default:
			var c []string
			for _, s := range m {
				c = append(c, fmt.Sprintf("%s (%s)", s.ID.Short(), s.Name))
			}
			return event.ID{}, fmt.Errorf("%w: %q could be %s", ErrAmbiguous, ref, strings.Join(c, ", "))
		}
	}
	if len(low) < MinPrefix && isHex(low) {
		return event.ID{}, fmt.Errorf("no pursuance named %q on this home, and an ID prefix needs at least %d hex digits (`pursuance list` shows them)", ref, MinPrefix)
	}
	return event.ID{}, fmt.Errorf("no pursuance %q on this home (`pursuance list` shows them; `pursuance join CODE` joins one)", ref)
}

// MinPrefix is the fewest hex digits of a pursuance's or task's ID that
// name it; MinMemberPrefix the fewest characters of a member ID ("pm1…").
const (
	MinPrefix       = 4
	MinMemberPrefix = 6
)

// isHex reports whether s is made of hex digits only.
func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return s != ""
}

// SameName returns the other pursuances on this home named like p (by
// case): commands then need an ID prefix to tell them apart.
func (n *Node) SameName(ctx context.Context, p event.ID, name string) ([]Summary, error) {
	all, err := n.Pursuances(ctx)
	if err != nil {
		return nil, err
	}
	var out []Summary
	for _, s := range all {
		if s.ID != p && strings.EqualFold(s.Name, name) {
			out = append(out, s)
		}
	}
	return out, nil
}

// State folds a pursuance's log from the store: this member's view, in
// which the keys it holds are opened (State.Held) and so is the task
// content sealed to them.
func (n *Node) State(ctx context.Context, p event.ID) (*state.State, error) {
	s, err := n.fold(ctx, p, false)
	if err != nil {
		return nil, err
	}
	if n.dev != nil {
		// Another device of the member may have given it a new KEM key
		// (device.go): learned, the state opens what is sealed to it.
		if learned, err := n.learnMemberKEMs(s); err != nil {
			return nil, err
		} else if learned {
			return n.State(ctx, p)
		}
	}
	// Lists name a pursuance by the name in force (an amendment may
	// rename it); a failure here costs only a stale name.
	if sdb, err := n.syncDB(ctx); err == nil {
		sdb.setName(ctx, p, s.Name())
	}
	return s, nil
}

// ResolveMember finds a member by full member ID (returned as given, member
// or not, so that rules can judge it), or a current member of s by unique
// prefix of its ID or unique display name.
func ResolveMember(s *state.State, ref string) (identity.PublicKey, error) {
	if pk, err := identity.ParseMemberID(ref); err == nil {
		return pk, nil
	}
	var byName, byPrefix []*state.Member
	for _, m := range s.Members() {
		if strings.EqualFold(m.Name, ref) {
			byName = append(byName, m)
		}
		if len(ref) >= MinMemberPrefix && strings.HasPrefix(m.ID.String(), ref) {
			byPrefix = append(byPrefix, m)
		}
	}
	for _, ms := range [][]*state.Member{byName, byPrefix} {
		switch len(ms) {
		case 0:
			continue
		case 1:
			return ms[0].ID, nil
		default:
			var c []string
			for _, m := range ms {
				c = append(c, fmt.Sprintf("%s (%s)", m.Name, m.ID))
			}
			return identity.PublicKey{}, fmt.Errorf("%w: %q could be %s", ErrAmbiguous, ref, strings.Join(c, ", "))
		}
	}
	if strings.HasPrefix(ref, "pm1") && len(ref) < MinMemberPrefix {
		return identity.PublicKey{}, fmt.Errorf("no member named %q in %s, and a member ID prefix needs at least %d characters", ref, s.Name(), MinMemberPrefix)
	}
	return identity.PublicKey{}, fmt.Errorf("no member %q in %s", ref, s.Name())
}

// ResolveAssignee parses WHO: "role:NAME" or a member reference.
func ResolveAssignee(s *state.State, who string) (string, error) {
	if strings.HasPrefix(who, "role:") {
		r := strings.TrimPrefix(who, "role:")
		if s.Charter().Rank(r) < 0 {
			return "", fmt.Errorf("no role %q in the charter of %s (roles: %s)", r, s.Name(), strings.Join(s.Charter().RoleNames(), ", "))
		}
		return who, nil
	}
	pk, err := ResolveMember(s, who)
	if err != nil {
		return "", err
	}
	return pk.String(), nil
}
