package state

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/profile"
)

// Profile publishes the pursuance's public profile, or withdraws it
// (kind 30, docs/directory.md). Record is the signed record relays carry
// (package profile): a profile, or a withdrawal. For a profile, Role is
// the intake role, Update the key-update of the role's generation and
// Epoch the epoch the record's keys derive from (keys.Key.Intake): the
// event certifies, in the pursuance's own log, that the record's key is
// the pursuance's. Retire withdraws earlier profile keys (after the
// intake role was re-keyed, a profile moves to the new generation's keys
// and the old ones are withdrawn for good).
type Profile struct {
	Record []byte   `cbor:"1,keyasint"`
	Role   string   `cbor:"2,keyasint,omitempty"`
	Update event.ID `cbor:"3,keyasint,omitzero"`
	Epoch  uint64   `cbor:"4,keyasint,omitempty"`
	Retire [][]byte `cbor:"5,keyasint,omitempty"`
}

func (Profile) Kind() event.Kind { return event.KindProfile }

// MaxRetire bounds the profile keys one profile event withdraws.
const MaxRetire = 16

// checkProfileOp checks a profile op's shape: its records parse and
// verify, by the keys they name.
func checkProfileOp(o *Profile) error {
	r, err := profile.Parse(o.Record)
	if err != nil {
		return err
	}
	switch {
	case r.Withdrawn && (o.Role != "" || !o.Update.IsZero() || o.Epoch != 0):
		return errors.New("a withdrawal names no intake role")
	case !r.Withdrawn && (o.Role == "" || o.Update.IsZero()):
		return errors.New("a profile names its intake role and the generation its keys come from")
	case len(o.Retire) > MaxRetire:
		return fmt.Errorf("%d profile keys withdrawn at once, more than %d", len(o.Retire), MaxRetire)
	}
	seen := map[identity.PublicKey]bool{r.Key: true}
	for _, b := range o.Retire {
		w, err := profile.Parse(b)
		if err != nil {
			return fmt.Errorf("withdrawn key: %v", err)
		}
		if !w.Withdrawn || w.Pursuance != r.Pursuance {
			return errors.New("a retired profile key's record is not its withdrawal")
		}
		if seen[w.Key] {
			return errors.New("a profile key named twice")
		}
		seen[w.Key] = true
	}
	return nil
}

// profileState is one profile key the log has certified: the newest
// record under it (a withdrawal is final), and where its keys come from.
type profileState struct {
	rec    *profile.Record
	role   string
	update event.ID
	epoch  uint64
	by     event.ID // the event (or carried proposal) that certified the key
}

// permittedProfile checks a profile event against the view: its author
// may publish-profile (checked by the caller's Allows), it speaks for this
// pursuance, its intake role is in the charter and the generation it
// names is one of that role's, and every record supersedes what the view
// holds under its key (a withdrawn key stays withdrawn).
func (b *builder) permittedProfile(a *authState, op *Profile) error {
	r, err := profile.Parse(op.Record)
	if err != nil {
		return err
	}
	if r.Pursuance != b.pursuance {
		return fmt.Errorf("the profile speaks for pursuance %s, not this one", r.Pursuance.Short())
	}
	if !r.Withdrawn {
		if a.charter.Rank(op.Role) < 0 {
			return fmt.Errorf("no role %q in the charter", op.Role)
		}
		if !slices.ContainsFunc(a.keys[op.Role], func(g KeyGen) bool { return g.Update == op.Update }) {
			return fmt.Errorf("role %q has no key generation %s", op.Role, op.Update.Short())
		}
	} else if a.profiles[r.Key] == nil {
		return fmt.Errorf("profile key %s was never this pursuance's", shortKey(r.Key))
	}
	if err := supersedes(a, r); err != nil {
		return err
	}
	for _, w := range op.Retire {
		rec, _ := profile.Parse(w) // checked by DecodeOp
		if a.profiles[rec.Key] == nil {
			return fmt.Errorf("profile key %s was never this pursuance's", shortKey(rec.Key))
		}
		if err := supersedes(a, rec); err != nil {
			return err
		}
	}
	return nil
}

// supersedes checks that r may follow what a holds under r's key.
func supersedes(a *authState, r *profile.Record) error {
	old := a.profiles[r.Key]
	switch {
	case old == nil:
		return nil
	case old.rec.Withdrawn:
		return fmt.Errorf("profile key %s was withdrawn, for good: publish under a new one", shortKey(r.Key))
	case r.Version <= old.rec.Version:
		return fmt.Errorf("profile version %d does not supersede version %d", r.Version, old.rec.Version)
	}
	return nil
}

func shortKey(k identity.PublicKey) string { return fmt.Sprintf("%x", k[:6]) }

// applyProfile records an accepted profile op; id names its effect.
func applyProfile(a *authState, id event.ID, op *Profile) {
	r, err := profile.Parse(op.Record)
	if err != nil {
		return
	}
	if a.profiles == nil {
		a.profiles = map[identity.PublicKey]*profileState{}
	}
	// Two records signed concurrently under one key (each saw neither)
	// resolve as relays resolve them (profile.Record.Supersedes), not by
	// log order, so that members and relays agree.
	for _, w := range op.Retire {
		if rec, err := profile.Parse(w); err == nil {
			if p := a.profiles[rec.Key]; p != nil && rec.Supersedes(p.rec) {
				p.rec = rec
			}
		}
	}
	if p := a.profiles[r.Key]; p != nil {
		if r.Supersedes(p.rec) {
			p.rec = r
		}
	} else {
		a.profiles[r.Key] = &profileState{rec: r, role: op.Role, update: op.Update, epoch: op.Epoch, by: id}
	}
	a.profile = r.Key
}

// ProfileInfo is one profile key of the pursuance, as its log certifies
// it: the newest record under it, and the intake role generation and epoch
// its keys are derived from.
type ProfileInfo struct {
	Key    identity.PublicKey
	Record *profile.Record // the newest record (Record.Withdrawn: withdrawn for good)
	Role   string
	Update event.ID // the key-update of the role's generation
	Epoch  uint64
	By     event.ID // the event that first certified the key
}

func (p *profileState) info(k identity.PublicKey) ProfileInfo {
	return ProfileInfo{Key: k, Record: p.rec, Role: p.role, Update: p.update, Epoch: p.epoch, By: p.by}
}

// Profile returns the pursuance's public profile in force: the key of
// the last profile event in log order, unless that event withdrew it.
func (s *State) Profile() (ProfileInfo, bool) {
	a := s.b().auth
	p := a.profiles[a.profile]
	if p == nil || p.rec.Withdrawn {
		return ProfileInfo{}, false
	}
	return p.info(a.profile), true
}

// Profiles returns every profile key the log certified, withdrawn ones
// too, in the order they were first certified.
func (s *State) Profiles() []ProfileInfo {
	var out []ProfileInfo
	for k, p := range s.b().auth.profiles {
		out = append(out, p.info(k))
	}
	slices.SortFunc(out, func(x, y ProfileInfo) int { return cmp.Compare(s.b().at(x.By), s.b().at(y.By)) })
	return out
}

// ProfileKey returns what the log certifies of profile key k, if it is
// one of this pursuance's.
func (s *State) ProfileKey(k identity.PublicKey) (ProfileInfo, bool) {
	p := s.b().auth.profiles[k]
	if p == nil {
		return ProfileInfo{}, false
	}
	return p.info(k), true
}

// MayPublishProfile reports whether member m may publish the profile
// alone now (without a proposal).
func (s *State) MayPublishProfile(m identity.PublicKey) bool {
	a := s.b().auth
	if _, ok := a.members[m]; !ok {
		return false
	}
	return a.charter.Allows(a.roles(m), charter.PublishProfile, nil, nil) == nil
}
