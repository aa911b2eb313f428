package state

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/pursuance/pursuance/charter"
)

// TestPropertyDevices plays random pursuances whose members act from
// several devices (docs/devices.md): devices are added, revoked and
// replaced by random devices — some by devices their rules forbid, some
// concurrently with the member's removal or with each other — and write,
// rotate keys and the member's KEM key, now and then forking their own
// chains. Besides convergence, soundness, garbage and stripping (as
// TestPropertyRules), it checks that
//   - a member's devices are one member: nothing accepted is authored by
//     a key the final state does not map to a member that admitted it;
//   - a revoked device reads nothing new: it holds no accepted key
//     generation whose key-update has the revocation in its causal past
//     (checkRevokedReadNothing), from the real sealed seeds and the real
//     boxes of the member's KEM keys.
func TestPropertyDevices(t *testing.T) {
	// Under the race detector, shorter plays keep the package's tests
	// within a couple of minutes on a loaded two-core machine.
	most := 30
	if raceEnabled {
		most = 15
	}
	rapid.Check(t, func(rt *rapid.T) {
		playDevices(rt, rapid.IntRange(5, most).Draw(rt, "steps"))
	})
}

func playDevices(rt *rapid.T, steps int) {
	w := newWorld(rt, rapid.Uint64().Draw(rt, "seed"))
	tmpl := rapid.SampledFrom(charter.TemplateNames()).Draw(rt, "template")
	c, err := charter.Template(tmpl)
	if err != nil {
		rt.Fatal(err)
	}
	roles := c.RoleNames()
	invitable := roles
	if len(roles) > 1 {
		invitable = roles[1:]
	}
	w.do("", "alice", false, []string{"found", tmpl})
	for i, n := range []string{"bob", "carol"} {
		inv := fmt.Sprintf("setup%d", i)
		w.do(inv, "alice", false, []string{"invite", rapid.SampledFrom(invitable).Draw(rt, "setup role")})
		w.do("", n, false, []string{"join", inv})
		w.sync(nil)
	}
	w.do("", "alice", false, []string{"rotate", "group"})
	members := []string{"alice", "bob", "carol"}
	// Each member's device actors, made as they are added.
	devices := map[string][]string{"alice": {"alice"}, "bob": {"bob"}, "carol": {"carol"}}
	next := 0
	pick := func(from []string, what string) string { return rapid.SampledFrom(from).Draw(rt, what) }
	var tasks []string
	for i := range steps {
		m := pick(members, "member")
		actor := pick(devices[m], "device")
		other := pick(members, "other")
		label := fmt.Sprintf("e%d", i)
		var args []string
		fork := false
		switch rapid.IntRange(0, 11).Draw(rt, "op") {
		case 0:
			w.sync([]string{actor, pick(append(devices[m], devices[other]...), "with")})
			continue
		case 1:
			w.sync(nil)
			continue
		case 2, 3:
			next++
			d := fmt.Sprintf("%s/d%d", m, next)
			devices[m] = append(devices[m], d)
			args = []string{"device", "add", d, "parent=" + pick(devices[m][:len(devices[m])-1], "parent")}
			if rapid.Bool().Draw(rt, "self-published?") {
				// The new device publishes its own certificate, having
				// fetched what the approver had.
				w.sync([]string{d, actor})
				actor = d
			}
		case 4:
			args = []string{"device", "revoke", pick(devices[m], "revoked")}
		case 5:
			next++
			d := fmt.Sprintf("%s/d%d", m, next)
			devices[m] = append(devices[m], d)
			args = []string{"device", "replace", d}
		case 6:
			args = []string{"task", "T" + label}
		case 7:
			if len(tasks) == 0 {
				continue
			}
			args = []string{"comment", pick(tasks, "task"), "c" + label}
		case 8:
			args = []string{"rotate", "group"}
		case 9:
			args = []string{"rekem"}
		case 10:
			args = []string{"remove", other}
		case 11:
			if len(tasks) == 0 {
				continue
			}
			args = []string{"status", pick(tasks, "task"), "Done"}
			fork = rapid.IntRange(0, 3).Draw(rt, "fork?") == 0
		}
		a := w.actor(actor)
		if len(a.seen) == 0 {
			continue
		}
		if fork && a.chain.Last != nil {
			prev := w.all[a.chain.Last.ID]
			if prev.Backlink.IsZero() {
				a.chain.Last = nil
			} else {
				r := w.all[prev.Backlink].Ref()
				a.chain.Last = &r
			}
		}
		unchecked := fork || rapid.IntRange(0, 4).Draw(rt, "unchecked?") == 0
		if w.try(label, actor, unchecked, args) != nil {
			continue
		}
		if args[0] == "task" {
			tasks = append(tasks, label)
		}
	}
	s := buildFrom(rt, w.pursue, w.all)
	checkConvergence(rt, w, s.Hash())
	checkSound(rt, s)
	checkGarbage(rt, w, s)
	checkStripped(rt, w, s)
	checkOneMember(rt, s)
	checkRevokedReadNothing(rt, w, s)
}

// checkOneMember checks that every accepted event speaks for a member
// who was admitted (its author, or the member its device belongs to).
func checkOneMember(t tb, s *State) {
	t.Helper()
	for _, n := range s.b().nodes {
		if !n.accepted {
			continue
		}
		if *n.member != s.MemberOf(*n.e.Author) {
			t.Errorf("%s %s: speaks for %s, but the state maps its author to %s", n.e.Kind, n.e.ID().Short(), n.member.Short(), s.MemberOf(*n.e.Author).Short())
		}
		if s.NameOf(*n.member) == "" {
			t.Errorf("%s %s: speaks for %s, whom the log never admitted", n.e.Kind, n.e.ID().Short(), n.member.Short())
		}
	}
}

// checkRevokedReadNothing checks that a device cut off by an accepted
// revocation (or replacement) holds no accepted key generation published
// with the revocation in its causal past.
func checkRevokedReadNothing(t tb, w *world, s *State) {
	t.Helper()
	b := s.b()
	// Each revoked device actor, with the revocations that cut it off.
	revs := map[*actor][]*node{}
	for _, r := range b.nodes {
		// A replace's old key is the same home as the new one: it is
		// revocations of other devices that must read nothing new.
		if d, ok := r.op.(*Device); !ok || d.Action != DeviceRevoke || !r.accepted {
			continue
		}
		for _, k := range r.revokes {
			for _, name := range w.order {
				if a := w.actors[name]; a.id.ID() == k && a != w.rootOf(a) {
					revs[a] = append(revs[a], r)
				}
			}
		}
	}
	if len(revs) == 0 {
		return
	}
	evs := logOrder(mapValues(w.all))
	for a, rs := range revs {
		x := NewBuilder(w.pursue, nil)
		for _, e := range evs {
			if err := x.Add(e); err != nil {
				t.Fatal(err)
			}
		}
		x.SetSecrets(w.secretsOf(a, nil))
		mine, err := x.Finish()
		if err != nil {
			t.Fatal(err)
		}
		for id := range mine.Held() {
			kn := b.nodes[b.at(id)]
			for _, r := range rs {
				if kn.accepted && b.inPast(r, kn) {
					t.Errorf("revoked device %s holds generation %s, published after its revocation %s", a.name, id.Short(), r.e.ID().Short())
				}
			}
		}
	}
}
