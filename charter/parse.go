package charter

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// MaxYAMLSize is the largest charter file Parse reads, comments included.
const MaxYAMLSize = 256 << 10

// The keys of the YAML schema, for messages.
const (
	topKeys    = "name, mission, roles, quorum, keys, continuity"
	keysKeys   = "history, rotate-every"
	contKeys   = "inactive-after, witnesses, waiting, proposals-expire"
	roleKeys   = "name, description, can, task-visibility"
	quorumKeys = "approvals, of"
)

// majority is the YAML spelling of Quorum.Approvals == 0.
const majority = "majority"

// Parse reads a charter from its YAML form (docs/charter.md) and validates
// it. On failure it returns a nil Charter and an ErrorList, sorted by line,
// of every problem it found, each pointing at its line; the error wraps
// ErrInvalid. Comments are not kept. The Charter returned is canonical: its
// lists are sorted and hold no repeats, and Parse(c.YAML()) equals c.
func Parse(src []byte) (*Charter, error) {
	if len(src) > MaxYAMLSize {
		return nil, ErrorList{{Line: 1, Column: 1, Msg: fmt.Sprintf("charter file too large: %d bytes (at most %d)", len(src), MaxYAMLSize)}}
	}
	f, err := parseYAML(src)
	if err != nil {
		return nil, ErrorList{syntaxError(src, err)}
	}
	y := &yamlReader{c: new(Charter), p: &positions{doc: pos{1, 1}, quorum: make(map[Action]quorumPos)}}
	y.file(f)
	y.p.incomplete = y.incomplete
	y.errs = append(y.errs, check(y.c, y.p)...)
	if len(y.errs) > 0 {
		for _, e := range y.errs {
			if e.Line == 0 { // a part with no position: the document
				e.Line, e.Column = y.p.doc.line, y.p.doc.col
			}
		}
		slices.SortStableFunc(y.errs, func(a, b *Error) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		})
		return nil, y.errs
	}
	return y.c, nil
}

// parseYAML parses src into an AST, turning a panic of the YAML parser on
// hostile input into an error.
func parseYAML(src []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("unreadable YAML (%v)", r)
		}
	}()
	return parser.ParseBytes(src, 0)
}

// syntaxError turns an error of the YAML parser into an *Error at its line.
func syntaxError(src []byte, err error) *Error {
	e := &Error{Line: 1, Column: 1, Msg: "syntax error: " + err.Error()}
	var ye interface {
		GetToken() *token.Token
		GetMessage() string
	}
	if errors.As(err, &ye) {
		e.Msg = "syntax error: " + ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line > 0 {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	// An unquoted * is a YAML alias; say how to write "every role".
	lines := strings.Split(string(src), "\n")
	if e.Line <= len(lines) {
		l := lines[e.Line-1]
		if strings.Contains(l, "*") && !strings.Contains(l, `"*"`) && !strings.Contains(l, `'*'`) {
			e.Msg += ` (to mean every role, write "*" in quotes)`
		}
	}
	return e
}

func (y *yamlReader) file(f *ast.File) {
	var body ast.Node
	for _, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		if body != nil {
			y.broken(posOf(d.Body), "a charter file holds one YAML document; found a second one")
			break
		}
		body = d.Body
	}
	if body == nil {
		return
	}
	y.p.doc = posOf(body)
	entries, ok := y.mapping(body, "a charter")
	if !ok {
		y.p.nameBad, y.p.rolesBad = true, true
		return
	}
	for _, mv := range entries {
		key, at, ok := y.key(mv)
		if !ok {
			continue
		}
		switch key {
		case "name":
			y.p.name = or(posOf(mv.Value), at)
			var ok bool
			y.c.Name, ok = y.text(mv.Value, `"name"`)
			y.p.nameBad = !ok
		case "mission":
			y.p.mission = or(posOf(mv.Value), at)
			y.c.Mission, _ = y.text(mv.Value, `"mission"`)
		case "roles":
			y.p.roles = at
			y.p.rolesBad = !y.roles(mv.Value)
		case "quorum":
			y.quorums(mv.Value)
		case "keys":
			y.keys(mv.Value)
		case "continuity":
			y.continuity(mv.Value)
		default:
			y.unknownKey(at, key, "the charter", topKeys)
		}
	}
}

// roles reads the list of roles, reporting whether it was one and whether
// anything in it was left out.
func (y *yamlReader) roles(n ast.Node) bool {
	if !y.supported(n) {
		return false
	}
	var items []ast.Node
	switch n := n.(type) {
	case nil, *ast.NullNode:
	case *ast.SequenceNode:
		items = n.Values
	default:
		y.broken(posOf(n), `"roles" must be a list of roles, not %s`, describe(n))
		return false
	}
	ok := true
	for i, item := range items {
		ok = y.role(i+1, item) && ok
	}
	return ok
}

// role reads the nth entry of the list of roles, reporting whether it was
// a role.
func (y *yamlReader) role(n int, item ast.Node) bool {
	at := posOf(item)
	if !y.supported(item) {
		return false
	}
	if _, ok := item.(*ast.MappingNode); !ok {
		y.broken(at, "a role must be a mapping with name, description, can and task-visibility, not %s", describe(item))
		return false
	}
	entries, _ := y.mapping(item, "a role")
	r := Role{}
	rp := rolePos{n: n, at: at, grant: make(map[Action]grantPos)}
	for _, mv := range entries {
		key, kat, ok := y.key(mv)
		if !ok {
			continue
		}
		switch key {
		case "name":
			rp.name = or(posOf(mv.Value), kat)
			r.Name, ok = y.text(mv.Value, "a role's name")
			rp.nameBad = !ok
		case "description":
			rp.description = or(posOf(mv.Value), kat)
			r.Description, _ = y.text(mv.Value, "a role's description")
		case "can":
			r.Grants = y.grants(mv.Value, rp.grant)
		case "task-visibility":
			rp.vis = or(posOf(mv.Value), kat)
			if isNull(mv.Value) {
				continue
			}
			r.TaskVisibility, rp.visRef, _ = y.list(mv.Value, "task-visibility", "a role name or a list of role names", "a role name")
		default:
			y.unknownKey(kat, key, "a role", roleKeys)
		}
	}
	y.c.Roles = append(y.c.Roles, r)
	y.p.role = append(y.p.role, rp)
	return true
}

// grants reads a role's "can" mapping.
func (y *yamlReader) grants(n ast.Node, at map[Action]grantPos) []Grant {
	entries, ok := y.mapping(n, `"can"`)
	if !ok {
		return nil
	}
	var grants []Grant
	for _, mv := range entries {
		key, kat, ok := y.key(mv)
		if !ok {
			continue
		}
		a := Action(key)
		if a.kind() == unknownAction {
			y.broken(kat, "unknown action %q (actions are: %s)", key, actionList())
			continue
		}
		if g, ok := y.grant(a, mv.Value, kat, at); ok {
			grants = append(grants, g)
		}
	}
	slices.SortFunc(grants, func(a, b Grant) int { return strings.Compare(string(a.Action), string(b.Action)) })
	return grants
}

// grant reads the value granting action a, reporting whether it grants
// anything.
func (y *yamlReader) grant(a Action, v ast.Node, kat pos, at map[Action]grantPos) (Grant, bool) {
	if !y.supported(v) {
		return Grant{}, false
	}
	g := Grant{Action: a}
	gp := grantPos{at: kat}
	switch a.kind() {
	case plainAction:
		b, ok := v.(*ast.BoolNode)
		if !ok {
			y.broken(or(posOf(v), kat), "%s takes true or false, not %s", a, describe(v))
			return g, false
		}
		if !b.Value {
			return g, false
		}
	case roleAction:
		names, refs, ok := y.list(v, string(a), `a role name, "*", "below" or a list of role names`, "a role name")
		if !ok {
			return g, false
		}
		g.Roles, gp.ref = names, refs
	case taskAction:
		const takes = "a task scope (any, assigned, own) or a list of them"
		scopes, refs, ok := y.list(v, string(a), takes, "a task scope (any, assigned, own)")
		if !ok {
			return g, false
		}
		for _, s := range scopes {
			if !validScope(s) {
				y.broken(or(refs[s], kat), "%s takes %s, not %q", a, takes, s)
				ok = false
			}
		}
		if !ok {
			return g, false
		}
		g.Tasks, gp.ref = scopes, refs
	}
	at[a] = gp
	return g, true
}

func validScope(s string) bool { return s == AnyTask || s == AssignedTask || s == OwnTask }

func isNull(n ast.Node) bool {
	_, ok := n.(*ast.NullNode)
	return ok || n == nil
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// keys reads the key policy: {history: chained|from-join, rotate-every: DURATION}.
func (y *yamlReader) keys(n ast.Node) {
	entries, ok := y.mapping(n, `"keys"`)
	if !ok {
		return
	}
	for _, mv := range entries {
		key, at, ok := y.key(mv)
		if !ok {
			continue
		}
		vat := or(posOf(mv.Value), at)
		switch key {
		case "history":
			h, ok := y.text(mv.Value, `"history"`)
			switch {
			case !ok:
			case h == "chained":
				y.c.Keys.History = HistoryChained
			case h == HistoryFromJoin:
				y.c.Keys.History = HistoryFromJoin
			default:
				y.broken(vat, `"history" must be chained or from-join, not %q`, h)
			}
		case "rotate-every":
			d, ok := y.text(mv.Value, `"rotate-every"`)
			if !ok {
				continue
			}
			secs, err := ParsePeriod(d)
			if err != nil {
				y.broken(vat, `"rotate-every": %v`, err)
				continue
			}
			y.c.Keys.RotateEvery = secs
		default:
			y.unknownKey(at, key, `"keys"`, keysKeys)
		}
	}
}

// continuity reads the continuity rules: {inactive-after: DURATION,
// witnesses: N, waiting: DURATION, proposals-expire: DURATION}. A section
// that sets inactive-after and names no witnesses gets DefaultWitnesses.
func (y *yamlReader) continuity(n ast.Node) {
	entries, ok := y.mapping(n, `"continuity"`)
	if !ok {
		return
	}
	witnesses := false
	for _, mv := range entries {
		key, at, ok := y.key(mv)
		if !ok {
			continue
		}
		vat := or(posOf(mv.Value), at)
		var field *uint64
		switch key {
		case "inactive-after":
			field = &y.c.Continuity.InactiveAfter
		case "waiting":
			field = &y.c.Continuity.Waiting
		case "proposals-expire":
			field = &y.c.Continuity.ProposalsExpire
		case "witnesses":
			witnesses = true
			t, ok := y.text(mv.Value, `"witnesses"`)
			if !ok {
				continue
			}
			k, err := strconv.ParseUint(t, 10, 8)
			if err != nil || k < 1 || k > MaxWitnesses {
				y.broken(vat, `"witnesses" must be a whole number from 1 to %d, not %q`, MaxWitnesses, t)
				continue
			}
			y.c.Continuity.Witnesses = k
			continue
		default:
			y.unknownKey(at, key, `"continuity"`, contKeys)
			continue
		}
		d, ok := y.text(mv.Value, strconv.Quote(key))
		if !ok {
			continue
		}
		secs, err := ParsePeriod(d)
		if err != nil {
			y.broken(vat, "%q: %v", key, err)
			continue
		}
		*field = secs
	}
	if !witnesses && y.c.Continuity.InactiveAfter > 0 {
		y.c.Continuity.Witnesses = DefaultWitnesses
	}
}

// ParsePeriod parses a rotation period: a number and a unit, d (days), h
// (hours) or m (minutes), such as "30d" or "12h"; "0" is no period. It
// returns seconds.
func ParsePeriod(s string) (uint64, error) {
	if s == "0" {
		return 0, nil
	}
	units := map[byte]uint64{'d': 86400, 'h': 3600, 'm': 60}
	if len(s) < 2 || units[s[len(s)-1]] == 0 {
		return 0, fmt.Errorf("%q is not a period such as 30d, 12h or 90m", s)
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a period such as 30d, 12h or 90m", s)
	}
	return n * units[s[len(s)-1]], nil
}

// FormatPeriod is ParsePeriod's inverse, in the largest whole unit.
func FormatPeriod(secs uint64) string {
	switch {
	case secs == 0:
		return "0"
	case secs%86400 == 0:
		return strconv.FormatUint(secs/86400, 10) + "d"
	case secs%3600 == 0:
		return strconv.FormatUint(secs/3600, 10) + "h"
	}
	return strconv.FormatUint(secs/60, 10) + "m"
}

func (y *yamlReader) quorums(n ast.Node) {
	entries, ok := y.mapping(n, `"quorum"`)
	if !ok {
		return
	}
	for _, mv := range entries {
		key, kat, ok := y.key(mv)
		if !ok {
			continue
		}
		a := Action(key)
		if a.kind() == unknownAction {
			y.broken(kat, "unknown action %q in quorum (actions are: %s)", key, actionList())
			continue
		}
		if q, ok := y.quorum(a, mv.Value, kat); ok {
			y.c.Quorums = append(y.c.Quorums, q)
		}
	}
	slices.SortFunc(y.c.Quorums, func(a, b Quorum) int { return strings.Compare(string(a.Action), string(b.Action)) })
}

func (y *yamlReader) quorum(a Action, v ast.Node, kat pos) (Quorum, bool) {
	q := Quorum{Action: a}
	qp := quorumPos{at: kat}
	if _, ok := v.(*ast.MappingNode); !ok && y.supported(v) {
		y.broken(or(posOf(v), kat), "quorum of %s must be a mapping such as {approvals: 2, of: admin}, not %s", a, describe(v))
		return q, false
	}
	entries, ok := y.mapping(v, "a quorum")
	if !ok {
		return q, false
	}
	ok = true
	haveApprovals := false
	for _, mv := range entries {
		key, at, kok := y.key(mv)
		if !kok {
			ok = false
			continue
		}
		switch key {
		case "approvals":
			haveApprovals = true
			qp.approvals = or(posOf(mv.Value), at)
			n, problem := approvals(mv.Value)
			if problem != "" {
				y.broken(qp.approvals, "quorum of %s: %s", a, problem)
				ok = false
			}
			q.Approvals = n
		case "of":
			qp.of = or(posOf(mv.Value), at)
			q.Of, _ = y.text(mv.Value, `a quorum's "of"`)
		default:
			y.unknownKey(at, key, "a quorum", quorumKeys)
			ok = false
		}
	}
	if !haveApprovals {
		y.broken(kat, `quorum of %s: missing "approvals": a positive integer or "majority"`, a)
		ok = false
	}
	y.p.quorum[a] = qp
	return q, ok
}

// approvals reads a quorum's approvals: a positive integer, or "majority"
// for 0. If n is neither it returns what is wrong.
func approvals(n ast.Node) (int, string) {
	const want = `approvals must be "majority" or a whole number from 1 to 2147483647`
	switch n := n.(type) {
	case *ast.StringNode:
		if n.Value == majority {
			return 0, ""
		}
	case *ast.IntegerNode:
		switch v := n.Value.(type) {
		case int64:
			if v < 1 {
				return 0, fmt.Sprintf("approvals must be at least 1, not %d", v)
			}
			if v <= MaxApprovals {
				return int(v), ""
			}
		case uint64:
			if v < 1 {
				return 0, "approvals must be at least 1, not 0"
			}
			if v <= MaxApprovals {
				return int(v), ""
			}
		}
	}
	return 0, want + ", not " + describe(n)
}
