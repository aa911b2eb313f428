package charter

import (
	"fmt"
	"strings"
)

// Explain returns, in sentences, what the charter's continuity section and
// take-over grants mean: when a member counts as inactive, who may take
// over a role whose holders are all inactive, how quorums count, when
// proposals expire. `pursuance charter show` prints it under the YAML.
func (c *Charter) Explain() []string {
	x := c.Continuity
	var out []string
	if !x.Enabled() {
		out = append(out, "Nobody ever counts as inactive (no continuity: inactive-after): a role whose holders all vanish stays with them, and quorums count every holder.")
	} else {
		w := "the time claimed by the member whose events are latest"
		if x.Witnesses > 1 {
			w = fmt.Sprintf("the %s latest of the times the members claim on their latest events, so that fewer than %d members lying about the time cannot move it", ordinal(x.Witnesses), x.Witnesses)
		}
		out = append(out, fmt.Sprintf("A member counts as inactive once %s have passed since its last signed event; \"now\" is %s.", words(x.InactiveAfter), w))
		var takers []string
		for _, r := range c.Roles {
			if g, ok := r.grant(TakeOver); ok {
				takers = append(takers, fmt.Sprintf("%s may take over %s", r.Name, c.listRoles(g.Roles, r.Name)))
			}
		}
		if q, ok := c.QuorumFor(TakeOver); ok {
			takers = append(takers, fmt.Sprintf("a take-over needs %s of the active %q", approvalWords(q), q.Of))
		}
		if len(takers) == 0 {
			out = append(out, "No role may take over another: quorums of active members are how this pursuance goes on without absent members.")
		} else {
			out = append(out, fmt.Sprintf("When every holder of a role is inactive, %s; the claim waits %s, and any event a holder signs meanwhile cancels it.", strings.Join(takers, "; "), words(x.Waiting)))
		}
		out = append(out, "Quorums are counted over active holders: a majority of the active ones, and a fixed number of approvals never more than the active holders.")
	}
	if x.ProposalsExpire > 0 {
		out = append(out, fmt.Sprintf("A proposal expires %s after it is made; approvals after that are refused.", words(x.ProposalsExpire)))
	} else {
		out = append(out, "Proposals never expire.")
	}
	return out
}

// listRoles words a grant's role list as seen from the granting role.
func (c *Charter) listRoles(roles []string, from string) string {
	var out []string
	for _, r := range roles {
		switch r {
		case AllRoles:
			out = append(out, "any role")
		case RolesBelow:
			out = append(out, "any role below "+from)
		default:
			out = append(out, r)
		}
	}
	return strings.Join(out, ", ")
}

func approvalWords(q Quorum) string {
	if q.Approvals == 0 {
		return "a majority"
	}
	return fmt.Sprintf("%d approvals", q.Approvals)
}

// words writes a period in words: "30 days", "12 hours", "no time".
func words(secs uint64) string {
	p := FormatPeriod(secs)
	if p == "0" {
		return "no time"
	}
	n, unit := p[:len(p)-1], map[byte]string{'d': "day", 'h': "hour", 'm': "minute"}[p[len(p)-1]]
	if n != "1" {
		unit += "s"
	}
	return n + " " + unit
}

func ordinal(n uint64) string {
	switch n {
	case 2:
		return "second"
	case 3:
		return "third"
	}
	return fmt.Sprintf("%dth", n)
}
