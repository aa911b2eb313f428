package charter

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a charter. The wire limit bounds everything else; the others
// keep a charter readable.
const (
	MaxWireSize       = 64 << 10  // bytes of the wire form
	MaxNameLen        = 100       // characters of Charter.Name
	MaxMissionLen     = 2000      // characters of Charter.Mission
	MaxDescriptionLen = 500       // characters of Role.Description
	MaxRoles          = 64        // roles in a charter
	MaxRoleNameLen    = 32        // bytes of a role name
	MaxApprovals      = 1<<31 - 1 // Quorum.Approvals
)

// pos is a place in the YAML source; the zero pos is "unknown".
type pos struct{ line, col int }

// positions records where Parse found each part of a charter, so that the
// checks shared with Validate can report lines. Lists that Parse sorts are
// recorded by value: the first place each value was written.
type positions struct {
	doc     pos // start of the document
	name    pos
	mission pos
	roles   pos
	role    []rolePos // by index in Charter.Roles
	quorum  map[Action]quorumPos
	// nameBad and rolesBad are set when "name" or "roles" was present but
	// malformed, so already reported.
	nameBad, rolesBad bool
	// incomplete is set when Parse left out a malformed part; the checks
	// that need the whole charter (roles never held, quorums on actions no
	// role may do) are skipped rather than report its consequences.
	incomplete bool
}

type rolePos struct {
	n           int // 1-based place in the YAML list
	nameBad     bool
	at          pos // the list entry
	name        pos
	description pos
	grant       map[Action]grantPos
	vis         pos            // the task-visibility value
	visRef      map[string]pos // each name in it
}

type grantPos struct {
	at  pos            // the action's key
	ref map[string]pos // each role name or scope in the value
}

type quorumPos struct {
	at, approvals, of pos
}

// Validate checks that c is a well-formed charter: everything Parse checks
// beyond YAML syntax, plus the canonical form Parse produces (lists sorted
// and without repeats, grants and quorums sorted by action) and the size of
// the wire form. It returns nil or an ErrorList without line numbers, which
// wraps ErrInvalid.
func (c *Charter) Validate() error {
	return check(c, nil).err()
}

// checker collects the problems of a charter. Its positions are empty
// (every lookup the zero pos) for a charter that did not come from YAML.
type checker struct {
	c    *Charter
	p    *positions
	errs ErrorList
}

func (k *checker) errorf(at pos, format string, args ...any) {
	k.errs = append(k.errs, &Error{Line: at.line, Column: at.col, Msg: fmt.Sprintf(format, args...)})
}

func (k *checker) rolePos(i int) rolePos {
	if i >= len(k.p.role) {
		return rolePos{}
	}
	return k.p.role[i]
}

func (k *checker) grantPos(i int, a Action) grantPos {
	return k.rolePos(i).grant[a]
}

// or returns the first known pos of ps.
func or(ps ...pos) pos {
	for _, p := range ps {
		if p.line > 0 {
			return p
		}
	}
	return pos{}
}

// check runs the semantic checks on c, reporting positions from p if it is
// not nil.
func check(c *Charter, p *positions) ErrorList {
	if p == nil {
		p = new(positions)
	}
	k := &checker{c: c, p: p}
	doc := p.doc
	k.checkText(or(p.name, doc), "name", c.Name, MaxNameLen, false)
	if strings.TrimSpace(c.Name) == "" && !p.nameBad {
		k.errorf(or(p.name, doc), `"name" is missing or empty`)
	}
	k.checkText(p.mission, "mission", c.Mission, MaxMissionLen, true)
	switch {
	case len(c.Roles) == 0 && p.rolesBad:
	case len(c.Roles) == 0:
		k.errorf(or(p.roles, doc), `"roles" is missing or empty: a charter needs at least one role`)
	case len(c.Roles) > MaxRoles:
		k.errorf(p.roles, "too many roles (%d; at most %d)", len(c.Roles), MaxRoles)
	}
	k.checkRoleNames()
	for i := range c.Roles {
		k.checkRole(i)
	}
	k.checkQuorums()
	switch {
	case c.Keys.History != HistoryChained && c.Keys.History != HistoryFromJoin:
		k.errorf(doc, "unknown key history %q", c.Keys.History)
	case c.Keys.RotateEvery != 0 && c.Keys.RotateEvery < MinRotateEvery:
		k.errorf(doc, `"rotate-every" is %s; the shortest period is 1h`, FormatPeriod(c.Keys.RotateEvery))
	case c.Keys.RotateEvery%60 != 0:
		k.errorf(doc, `"rotate-every" must be whole minutes`)
	}
	k.checkContinuity(doc)
	if !p.incomplete {
		k.checkHeld()
	}
	if len(k.errs) == 0 {
		if b, err := c.encode(); err != nil {
			k.errorf(doc, "cannot encode: %v", err)
		} else if len(b) > MaxWireSize {
			k.errorf(doc, "charter too large: %d bytes encoded (at most %d)", len(b), MaxWireSize)
		}
	}
	slices.SortStableFunc(k.errs, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return k.errs
}

// checkText checks a free-text field: valid UTF-8, at most max characters,
// no control characters but, if multiline, newlines and tabs.
func (k *checker) checkText(at pos, field, s string, max int, multiline bool) {
	if !utf8.ValidString(s) {
		k.errorf(at, "%s is not valid UTF-8", field)
		return
	}
	if n := utf8.RuneCountInString(s); n > max {
		k.errorf(at, "%s is too long (%d characters; at most %d)", field, n, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			k.errorf(at, "%s contains the control character %U", field, r)
			return
		}
	}
}

// validRoleName reports whether name is a lowercase letter followed by up to
// 31 lowercase letters, digits or hyphens, and not reserved.
func validRoleName(name string) bool {
	if name == "" || len(name) > MaxRoleNameLen || name == RolesBelow || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (k *checker) checkRoleNames() {
	first := make(map[string]int)
	for i := range k.c.Roles {
		name := k.c.Roles[i].Name
		rp := k.rolePos(i)
		at := or(rp.name, rp.at)
		switch {
		case name == "":
			if !rp.nameBad {
				k.errorf(at, "role %d has no name", k.roleNumber(i))
			}
			continue
		case name == AllRoles || name == RolesBelow:
			k.errorf(at, "role name %q is reserved", name)
		case !validRoleName(name):
			k.errorf(at, "bad role name %q: a role name is a lowercase letter followed by up to %d lowercase letters, digits or hyphens", name, MaxRoleNameLen-1)
		}
		if j, dup := first[name]; dup {
			if fp := k.rolePos(j); fp.name.line > 0 {
				k.errorf(at, "duplicate role %q (first at line %d)", name, fp.name.line)
			} else {
				k.errorf(at, "duplicate role %q", name)
			}
			continue
		}
		first[name] = i
	}
}

// roleNumber returns the 1-based place of role i in the list written.
func (k *checker) roleNumber(i int) int {
	if n := k.rolePos(i).n; n > 0 {
		return n
	}
	return i + 1
}

// roleList returns the charter's role names for messages: "a, b, c".
func (k *checker) roleList() string {
	names := k.c.RoleNames()
	seen := make(map[string]bool)
	var b strings.Builder
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
	}
	return b.String()
}

func (k *checker) unknownRole(at pos, name, where string) {
	k.errorf(at, "unknown role %q in %s (roles are: %s)", name, where, k.roleList())
}

// sortedUnique reports whether s is strictly increasing.
func sortedUnique[T ~string](s []T) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func (k *checker) checkRole(i int) {
	r := &k.c.Roles[i]
	rp := k.rolePos(i)
	who := fmt.Sprintf("role %q", r.Name)
	if r.Name == "" {
		who = fmt.Sprintf("role %d", k.roleNumber(i))
	}
	k.checkText(or(rp.description, rp.at), who+" description", r.Description, MaxDescriptionLen, true)
	if !slices.IsSortedFunc(r.Grants, func(a, b Grant) int { return strings.Compare(string(a.Action), string(b.Action)) }) {
		k.errorf(rp.at, "%s: grants are not sorted by action", who)
	}
	for j := range r.Grants {
		g := &r.Grants[j]
		gp := k.grantPos(i, g.Action)
		at := or(gp.at, rp.at)
		if j > 0 && r.Grants[j-1].Action == g.Action {
			k.errorf(at, "%s: %s granted twice", who, g.Action)
			continue
		}
		switch g.Action.kind() {
		case unknownAction:
			k.errorf(at, "%s: unknown action %q (actions are: %s)", who, g.Action, actionList())
		case plainAction:
			if len(g.Roles) > 0 || len(g.Tasks) > 0 {
				k.errorf(at, "%s: %s takes no roles or tasks", who, g.Action)
			}
		case roleAction:
			if len(g.Tasks) > 0 {
				k.errorf(at, "%s: %s takes roles, not task scopes", who, g.Action)
			}
			if len(g.Roles) == 0 {
				k.errorf(at, "%s: %s names no role", who, g.Action)
			}
			if !sortedUnique(g.Roles) {
				k.errorf(at, "%s: the roles of %s are not sorted or repeat", who, g.Action)
			}
			for _, name := range g.Roles {
				if name != AllRoles && name != RolesBelow && k.c.Rank(name) < 0 {
					k.unknownRole(or(gp.ref[name], at), name, string(g.Action))
				}
			}
		case taskAction:
			if len(g.Roles) > 0 {
				k.errorf(at, "%s: %s takes task scopes, not roles", who, g.Action)
			}
			if len(g.Tasks) == 0 {
				k.errorf(at, "%s: %s names no task scope", who, g.Action)
			}
			if !sortedUnique(g.Tasks) {
				k.errorf(at, "%s: the task scopes of %s are not sorted or repeat", who, g.Action)
			}
			for _, s := range g.Tasks {
				if s != AnyTask && s != AssignedTask && s != OwnTask {
					k.errorf(or(gp.ref[s], at), "%s: unknown task scope %q in %s (scopes are: any, assigned, own)", who, s, g.Action)
				}
			}
		}
	}
	if !sortedUnique(r.TaskVisibility) {
		k.errorf(or(rp.vis, rp.at), "%s: task-visibility is not sorted or repeats", who)
	}
	for _, name := range r.TaskVisibility {
		if k.c.Rank(name) < 0 {
			k.unknownRole(or(rp.visRef[name], rp.vis, rp.at), name, "task-visibility")
		}
	}
}

func (k *checker) checkQuorums() {
	c := k.c
	for i := range c.Quorums {
		q := &c.Quorums[i]
		qp := k.p.quorum[q.Action]
		if i > 0 && c.Quorums[i-1].Action >= q.Action {
			k.errorf(qp.at, "quorums are not sorted by action or repeat (%s)", q.Action)
			continue
		}
		if q.Action.kind() == unknownAction {
			k.errorf(qp.at, "unknown action %q in quorum (actions are: %s)", q.Action, actionList())
			continue
		}
		if !q.Action.Quorumable() {
			k.errorf(qp.at, "quorum on %s: only %s can require a quorum", q.Action, quorumableList())
			continue
		}
		if q.Approvals < 0 {
			k.errorf(or(qp.approvals, qp.at), "quorum of %s: approvals must be at least 1", q.Action)
		}
		if q.Approvals > MaxApprovals {
			k.errorf(or(qp.approvals, qp.at), "quorum of %s: approvals must be at most %d", q.Action, MaxApprovals)
		}
		switch {
		case q.Of == "":
			k.errorf(qp.at, "quorum of %s: missing \"of\": the role whose members approve", q.Action)
		case c.Rank(q.Of) < 0:
			k.unknownRole(or(qp.of, qp.at), q.Of, "quorum of "+string(q.Action))
		}
		granted := false
		for j := range c.Roles {
			if _, ok := c.Roles[j].grant(q.Action); ok {
				granted = true
				break
			}
		}
		if !granted && !k.p.incomplete {
			k.errorf(qp.at, "quorum on %s, but no role may %s", q.Action, q.Action)
		}
	}
}

// checkHeld reports the roles no member can ever come to hold: the founder
// holds the first role, and a role can be held once a role that can be held
// may assign or invite into it.
func (k *checker) checkHeld() {
	c := k.c
	if len(c.Roles) == 0 {
		return
	}
	held := make([]bool, len(c.Roles))
	held[0] = true
	for changed := true; changed; {
		changed = false
		for i := range c.Roles {
			if !held[i] {
				continue
			}
			for j := range c.Roles {
				if !held[j] && (c.covers(i, AssignRole, j) || c.covers(i, Invite, j)) {
					held[j] = true
					changed = true
				}
			}
		}
	}
	for j := 1; j < len(c.Roles); j++ {
		if held[j] || c.Roles[j].Name == "" {
			continue
		}
		rp := k.rolePos(j)
		byAny := false
		for i := range c.Roles {
			if c.covers(i, AssignRole, j) || c.covers(i, Invite, j) {
				byAny = true
				break
			}
		}
		if byAny {
			k.errorf(or(rp.name, rp.at), "role %q can never be held: only roles that can never be held may assign or invite into it", c.Roles[j].Name)
		} else {
			k.errorf(or(rp.name, rp.at), "role %q can never be held: no role may assign or invite into it", c.Roles[j].Name)
		}
	}
}

// actionList returns the action names for messages.
func actionList() string {
	var b strings.Builder
	for i, a := range Actions() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(a))
	}
	return b.String()
}

// checkContinuity checks the continuity section: its periods are whole
// minutes and at least what they must be, witnesses are set exactly when
// inactivity is, and nothing takes over roles unless members can count as
// inactive (docs/succession.md).
func (k *checker) checkContinuity(doc pos) {
	c := k.c
	x := c.Continuity
	period := func(name string, secs, least uint64) {
		switch {
		case secs%60 != 0:
			k.errorf(doc, "%q must be whole minutes", name)
		case secs != 0 && secs < least:
			k.errorf(doc, "%q is %s; the shortest is %s", name, FormatPeriod(secs), FormatPeriod(least))
		}
	}
	period("inactive-after", x.InactiveAfter, MinInactiveAfter)
	period("waiting", x.Waiting, 60)
	period("proposals-expire", x.ProposalsExpire, MinInactiveAfter)
	switch {
	case x.InactiveAfter == 0 && (x.Witnesses != 0 || x.Waiting != 0):
		k.errorf(doc, `continuity: "witnesses" and "waiting" need "inactive-after"`)
	case x.InactiveAfter != 0 && (x.Witnesses < 1 || x.Witnesses > MaxWitnesses):
		k.errorf(doc, `continuity: "witnesses" must be from 1 to %d`, MaxWitnesses)
	}
	if x.InactiveAfter != 0 {
		return
	}
	for i := range c.Roles {
		if _, ok := c.Roles[i].grant(TakeOver); ok {
			k.errorf(k.grantPos(i, TakeOver).at, "role %q: take-over needs continuity's \"inactive-after\": nobody is ever inactive without it", c.Roles[i].Name)
		}
	}
}
