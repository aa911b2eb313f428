package state

import (
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/profile"
)

// Public profiles in the scenario language
// (testdata/scenarios/profiles.txt). Ops:
//
//	NAME: profile ROLE key=K [version=N] [update=LABEL] [epoch=N]
//	      [pursuance=OTHER] [retire=K2[,K3]] ["NAME"]
//	      publishes a profile signed by profile key K (a label: the key is
//	      derived from it), with ROLE as its intake role and the role's
//	      current generation in NAME's view (or update=LABEL); its version
//	      is one more than the view's under K unless given; retire=
//	      withdraws other keys in the same event; pursuance= makes the
//	      record speak for another pursuance
//	NAME: profile withdraw key=K [version=N]
//
// Expectations:
//
//	expect profile K VERSION      the profile in force is K's, at VERSION
//	expect profile none           none is in force (never, or withdrawn)
//	expect profilekey K withdrawn|live   what the log holds under K
//
// The rules never see the keys' derivation from the role's seed (a member
// who holds it checks that, app.Node.ProfileView); so a scenario's keys
// come from labels.

// profileKeys derives a deterministic profile key and intake key from a
// label.
func profileKeys(t tb, label string) (*identity.SigningKey, *identity.KEMPrivateKey) {
	t.Helper()
	h := sha256.Sum256([]byte("profile-key " + label))
	sk, err := identity.SigningKeyFromSeed(h[:])
	if err != nil {
		t.Fatal(err)
	}
	h = sha256.Sum256([]byte("intake-key " + label))
	kem, err := identity.KEMPrivateKeyFromBytes(h[:])
	if err != nil {
		t.Fatal(err)
	}
	return sk, kem
}

func (w *world) profileOp(a *actor, args []string) Op {
	w.t.Helper()
	kv := func(key string) (string, bool) {
		for _, x := range args[1:] {
			if v, ok := strings.CutPrefix(x, key+"="); ok {
				return v, true
			}
		}
		return "", false
	}
	s := buildFrom(w.t, w.pursue, a.seen)
	sign := func(label string, withdraw bool, version uint64, pursuance event.ID) []byte {
		sk, kem := profileKeys(w.t, label)
		if version == 0 {
			version = 1
			if p, ok := s.ProfileKey(sk.Public()); ok {
				version = p.Record.Version + 1
			}
		}
		r := &profile.Record{Key: sk.Public(), Pursuance: pursuance, Version: version, Withdrawn: withdraw}
		if !withdraw {
			r.Name, r.Mission, r.Intake = "A desk", "We check facts.", kem.Public()
			for _, x := range args[1:] {
				if !strings.Contains(x, "=") && x != args[1] {
					r.Name = x
				}
			}
		}
		b, err := r.Sign(sk)
		if err != nil {
			w.t.Fatal(err)
		}
		return b
	}
	key, ok := kv("key")
	if !ok || len(args) < 2 {
		w.t.Fatalf("profile: needs ROLE|withdraw and key=K")
	}
	var version uint64
	if v, ok := kv("version"); ok {
		fmt.Sscan(v, &version)
	}
	pursuance := w.pursue
	if p, ok := kv("pursuance"); ok {
		pursuance = w.pursuanceOf(p)
	}
	if args[1] == "withdraw" {
		return &Profile{Record: sign(key, true, version, pursuance)}
	}
	op := &Profile{Record: sign(key, false, version, pursuance), Role: args[1]}
	if l, ok := kv("update"); ok {
		op.Update = w.id(l)
	} else if g, ok := s.CurrentKey(args[1]); ok {
		op.Update = g.Update
	} else {
		op.Update = event.ID{0xee} // no generation: the rules refuse it
	}
	if e, ok := kv("epoch"); ok {
		fmt.Sscan(e, &op.Epoch)
	}
	if r, ok := kv("retire"); ok {
		for _, k := range strings.Split(r, ",") {
			op.Retire = append(op.Retire, sign(k, true, 0, w.pursue))
		}
	}
	return op
}

func (w *world) expectProfile(s *State, args []string) {
	w.t.Helper()
	switch args[0] {
	case "profile":
		p, ok := s.Profile()
		got := "none"
		if ok {
			got = fmt.Sprint(w.profileLabel(p.Key), " ", p.Record.Version)
		}
		if want := strings.Join(args[1:], " "); got != want {
			w.t.Errorf("profile in force: got %s, want %s", got, want)
		}
	case "profilekey":
		sk, _ := profileKeys(w.t, args[1])
		p, ok := s.ProfileKey(sk.Public())
		got := "unknown"
		switch {
		case ok && p.Record.Withdrawn:
			got = "withdrawn"
		case ok:
			got = "live"
		}
		if got != args[2] {
			w.t.Errorf("profile key %s: got %s, want %s", args[1], got, args[2])
		}
	}
}

// profileLabel names a profile key by the label it came from (the
// scenario's labels are short words; this tries those in use).
func (w *world) profileLabel(k identity.PublicKey) string {
	for _, l := range []string{"k1", "k2", "k3", "k4", "forged"} {
		if sk, _ := profileKeys(w.t, l); sk.Public() == k {
			return l
		}
	}
	return "?"
}
