package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/profile"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// Public profiles and the directory (docs/directory.md): one app-level
// function per action, as the CLI and the web UI use them —
// ProfilePublish, ProfileWithdraw, ProfileOf, Discover — each returning
// plain structs. Join requests are in knock.go.

// ProfileDraft is what a member publishes: the pursuance's name comes
// from its charter.
type ProfileDraft struct {
	Mission string
	Seeking string
	// IntakeRole is the role whose holders read and answer join requests
	// ("": the role of the profile in force, else this member's highest).
	IntakeRole string
}

// ProfileView is a pursuance's public profile as its log certifies it.
type ProfileView struct {
	Pursuance  event.ID
	Key        identity.PublicKey // the profile key relays list it under
	Name       string
	Mission    string
	Seeking    string
	IntakeRole string
	Relays     []string
	Version    uint64
	Withdrawn  bool
}

func profileView(p event.ID, in state.ProfileInfo) ProfileView {
	r := in.Record
	return ProfileView{Pursuance: p, Key: in.Key, Name: r.Name, Mission: r.Mission, Seeking: r.Seeking, IntakeRole: in.Role,
		Relays: slices.Clone(r.Relays), Version: r.Version, Withdrawn: r.Withdrawn}
}

// ProfileOf returns p's public profile in force, if it has one.
func (n *Node) ProfileOf(ctx context.Context, p event.ID) (ProfileView, bool, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return ProfileView{}, false, err
	}
	in, ok := s.Profile()
	if !ok {
		return ProfileView{}, false, nil
	}
	return profileView(p, in), true, nil
}

// intakeKeys derives the keys of a certified profile key from the
// generation of its intake role this member holds.
func intakeKeys(s *state.State, in state.ProfileInfo) (keys.Intake, bool) {
	h, ok := s.Held()[in.Update]
	if !ok {
		return keys.Intake{}, false
	}
	ik, err := h.Key.Intake(in.Epoch)
	if err != nil || ik.Sign.Public() != in.Key {
		return keys.Intake{}, false
	}
	return ik, true
}

// profileRelays are where p's profile is published and takes join
// requests: its relay list (else this node's relay), at most
// profile.MaxRelays of them.
func (n *Node) profileRelays(ctx context.Context, s *state.State) []string {
	urls := s.Relays()
	if len(urls) == 0 {
		urls, _ = n.RelayURLs(ctx, s.Pursuance())
	}
	if len(urls) == 0 && n.opts.NodeRelay != "" {
		urls = []string{n.opts.NodeRelay}
	}
	var out []string
	for _, u := range urls {
		if profile.CheckURL(u) == nil && len(out) < profile.MaxRelays {
			out = append(out, u)
		}
	}
	return out
}

// ProfilePublish publishes p's public profile, or a new version of it,
// under the publish-profile rule of its charter: the record is certified
// by a profile event in p's log, then given to p's relays. The profile's
// keys derive from the current generation of the intake role's key (one
// is made first when the role has none and this member may make it);
// when that generation changed, the profile moves to new keys and the
// old ones are withdrawn for good. Under a quorum, the profile is
// proposed (Result.Proposed) and reaches relays once carried (the next
// ProfilePush, which Requests does).
func (n *Node) ProfilePublish(ctx context.Context, p event.ID, d ProfileDraft, opts DoOptions) (ProfileView, Result, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return ProfileView{}, Result{}, err
	}
	if !s.MayPublishProfile(n.me()) {
		return ProfileView{}, Result{}, fmt.Errorf("%w: your roles in %s may not publish-profile", ErrNotPermitted, s.Name())
	}
	cur, live := s.Profile()
	role := d.IntakeRole
	if role == "" && live {
		role = cur.Role
	}
	if role == "" {
		if m, ok := s.Member(n.me()); ok && len(m.Roles) > 0 {
			role = m.Roles[0]
		}
	}
	if s.Charter().Rank(role) < 0 {
		return ProfileView{}, Result{}, fmt.Errorf("no role %q in the charter of %s (roles: %s)", role, s.Name(), strings.Join(s.Charter().RoleNames(), ", "))
	}
	if _, ok := s.CurrentKey(role); !ok {
		if !s.MayRotate(n.me(), role) {
			return ProfileView{}, Result{}, fmt.Errorf("role %q of %s has no key yet, which its profile's keys come from, and you may not make one: ask a member who may rotate-keys", role, s.Name())
		}
		if _, err := n.rotate(ctx, s, role, DoOptions{}); err != nil {
			return ProfileView{}, Result{}, err
		}
		if s, err = n.State(ctx, p); err != nil {
			return ProfileView{}, Result{}, err
		}
	}
	gen, _ := s.CurrentKey(role)
	held, ok := s.Held()[gen.Update]
	if !ok {
		return ProfileView{}, Result{}, fmt.Errorf("you do not hold the current key of role %q of %s: only its holders publish a profile that takes join requests for it (sync first, or ask one of them)", role, s.Name())
	}
	// Keep the profile's key while its generation is current; else a new
	// epoch of the generation, never one used before.
	epoch, version := uint64(0), uint64(1)
	var same *state.ProfileInfo
	for _, in := range s.Profiles() {
		if in.Update != gen.Update {
			continue
		}
		if !in.Record.Withdrawn && (same == nil || in.Record.Version > same.Record.Version) {
			in := in
			same = &in
		}
		epoch = max(epoch, in.Epoch+1)
	}
	if same != nil {
		epoch, version = same.Epoch, same.Record.Version+1
	}
	ik, err := held.Key.Intake(epoch)
	if err != nil {
		return ProfileView{}, Result{}, err
	}
	rec := &profile.Record{Key: ik.Sign.Public(), Pursuance: p, Version: version, Name: s.Name(), Mission: d.Mission, Seeking: d.Seeking,
		Intake: ik.KEM.Public(), Relays: n.profileRelays(ctx, s)}
	raw, err := rec.Sign(ik.Sign)
	if err != nil {
		return ProfileView{}, Result{}, err
	}
	op := &state.Profile{Record: raw, Role: role, Update: gen.Update, Epoch: epoch}
	// Withdraw, for good, every other live key of the profile this member
	// can sign for.
	for _, in := range s.Profiles() {
		if in.Key == rec.Key || in.Record.Withdrawn || len(op.Retire) == state.MaxRetire {
			continue
		}
		if old, ok := intakeKeys(s, in); ok {
			w := &profile.Record{Key: in.Key, Pursuance: p, Version: in.Record.Version + 1, Withdrawn: true}
			b, err := w.Sign(old.Sign)
			if err != nil {
				return ProfileView{}, Result{}, err
			}
			op.Retire = append(op.Retire, b)
		}
	}
	res, err := n.Act(ctx, p, op, opts)
	if err != nil {
		return ProfileView{}, Result{}, err
	}
	view := ProfileView{Pursuance: p, Key: rec.Key, Name: rec.Name, Mission: rec.Mission, Seeking: rec.Seeking, IntakeRole: role, Relays: rec.Relays, Version: version}
	if !res.Proposed && res.Accepted {
		if err := n.ProfilePush(ctx, p); err != nil {
			res.SyncErr = err
		}
	}
	return view, res, nil
}

// ProfileWithdraw withdraws p's profile in force, for good: honest relays
// stop listing it and take no more join requests for it.
func (n *Node) ProfileWithdraw(ctx context.Context, p event.ID, opts DoOptions) (Result, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return Result{}, err
	}
	if !s.MayPublishProfile(n.me()) {
		return Result{}, fmt.Errorf("%w: your roles in %s may not publish-profile", ErrNotPermitted, s.Name())
	}
	in, ok := s.Profile()
	if !ok {
		return Result{}, fmt.Errorf("%s has no public profile in force", s.Name())
	}
	ik, ok := intakeKeys(s, in)
	if !ok {
		return Result{}, fmt.Errorf("you do not hold the key of role %q of %s the profile's keys come from: ask one of its holders to withdraw it", in.Role, s.Name())
	}
	w := &profile.Record{Key: in.Key, Pursuance: p, Version: in.Record.Version + 1, Withdrawn: true}
	b, err := w.Sign(ik.Sign)
	if err != nil {
		return Result{}, err
	}
	res, err := n.Act(ctx, p, &state.Profile{Record: b}, opts)
	if err != nil {
		return Result{}, err
	}
	if !res.Proposed && res.Accepted {
		if err := n.ProfilePush(ctx, p); err != nil {
			res.SyncErr = err
		}
	}
	return res, nil
}

// profileVersions sums up the profile records p's log certifies (each
// key and its version), to tell whether an event changed them.
func (n *Node) profileVersions(ctx context.Context, p event.ID) string {
	s, err := n.State(ctx, p)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, in := range s.Profiles() {
		fmt.Fprintf(&b, "%x:%d;", in.Key[:8], in.Record.Version)
	}
	return b.String()
}

// ProfilePush gives p's relays the newest record of every profile key p's
// log certifies (profiles and withdrawals). It fails only when no relay
// took them.
func (n *Node) ProfilePush(ctx context.Context, p event.ID) error {
	s, err := n.State(ctx, p)
	if err != nil {
		return err
	}
	infos := s.Profiles()
	if len(infos) == 0 {
		return nil
	}
	urls := n.profileRelays(ctx, s)
	for _, in := range infos {
		for _, u := range in.Record.Relays {
			if !slices.Contains(urls, u) {
				urls = append(urls, u)
			}
		}
	}
	if len(urls) == 0 {
		return fmt.Errorf("%s has no relay to publish its profile on: add one (pursuance relays add)", s.Name())
	}
	var errs []error
	okOne := false
	for _, u := range urls {
		c := n.relayClient(p, u)
		failed := false
		for _, in := range infos {
			if _, err := c.PutProfile(ctx, in.Record.Bytes()); err != nil {
				var se *relay.StatusError
				if errors.As(err, &se) && se.Status == 409 {
					continue // the relay holds a newer record (or the withdrawal)
				}
				errs = append(errs, fmt.Errorf("%s: %w", u, err))
				failed = true
				break
			}
		}
		okOne = okOne || !failed
	}
	if !okOne {
		return fmt.Errorf("no relay took the profile: %w", errors.Join(errs...))
	}
	return nil
}

// DirectoryEntry is one pursuance a relay's directory lists: its record,
// verified (signed by the key it names, the newest the relay holds, not
// withdrawn). That the key is the pursuance's is the pursuance's own
// log's to say: an outsider trusts the relay for that (docs/directory.md).
type DirectoryEntry struct {
	Pursuance event.ID
	Key       identity.PublicKey
	Name      string
	Mission   string
	Seeking   string
	Relays    []string
}

// Discover asks the directory of the relay at url for the pursuances
// whose profile has every word of query (as word beginnings). Records
// that do not verify are dropped (Logger warns).
func (n *Node) Discover(ctx context.Context, url, query string) ([]DirectoryEntry, error) {
	if err := state.CheckRelayURL(url); err != nil {
		return nil, err
	}
	c := relay.NewClient(url, n.clients.get(n.opts.Dial, n.outsideIsolation("directory", []byte(url)))).Stall(n.opts.RelayTimeout).OnionStall(n.opts.RelayTimeout)
	recs, bad, err := c.Directory(ctx, query, 0)
	if err != nil {
		return nil, fmt.Errorf("the directory of %s: %w", url, err)
	}
	if bad > 0 && n.opts.Logger != nil {
		n.opts.Logger.Warn("the relay's directory listed records that do not verify; they are not shown", "relay", url, "records", bad)
	}
	out := []DirectoryEntry{}
	for _, r := range recs {
		out = append(out, DirectoryEntry{Pursuance: r.Pursuance, Key: r.Key, Name: r.Name, Mission: r.Mission, Seeking: r.Seeking, Relays: slices.Clone(r.Relays)})
	}
	return out, nil
}

// outsideIsolation returns the isolation string of connections about
// something this member is not a member of (a directory query, a knock):
// apart from every pursuance's own (docs/tor.md, "Isolation").
func (n *Node) outsideIsolation(what string, v []byte) string {
	m := hmac.New(sha256.New, n.keys.isolation[:])
	m.Write([]byte(isolationLabel + "/" + what))
	m.Write(v)
	return hex.EncodeToString(m.Sum(nil)[:16])
}
