package app

import (
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// LookAlike is a pair of members whose names a person could take for one
// another (identity.Confusable): only their fingerprints tell them apart.
type LookAlike struct {
	A, B *state.Member
}

// LookAlikes returns every pair of s's members with confusable names, in
// the order Members lists them.
func LookAlikes(s *state.State) []LookAlike {
	ms := s.Members()
	var out []LookAlike
	for i, a := range ms {
		for _, b := range ms[i+1:] {
			if identity.Confusable(a.Name, b.Name) {
				out = append(out, LookAlike{a, b})
			}
		}
	}
	return out
}

// LooksLike returns the members of s other than the one with ID me whose
// names a person could take for name.
func LooksLike(s *state.State, me identity.PublicKey, name string) []*state.Member {
	var out []*state.Member
	for _, m := range s.Members() {
		if m.ID != me && identity.Confusable(m.Name, name) {
			out = append(out, m)
		}
	}
	return out
}
