package charter

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// YAML returns c in its canonical YAML form: the schema's keys in a fixed
// order, grants and quorums in the order of Actions, strings quoted only
// where they must be, no comments. For a valid c, Parse(c.YAML()) returns a
// Charter equal to c.
func (c *Charter) YAML() []byte {
	var b bytes.Buffer
	b.WriteString("name: ")
	b.WriteString(scalar(c.Name, false))
	b.WriteByte('\n')
	if c.Mission != "" {
		b.WriteString("mission: ")
		writeText(&b, c.Mission, "  ")
	}
	if len(c.Roles) == 0 {
		b.WriteString("roles: []\n")
	} else {
		b.WriteString("roles:\n")
	}
	for i := range c.Roles {
		r := &c.Roles[i]
		b.WriteString("  - name: ")
		b.WriteString(scalar(r.Name, false))
		b.WriteByte('\n')
		if r.Description != "" {
			b.WriteString("    description: ")
			writeText(&b, r.Description, "      ")
		}
		if len(r.Grants) > 0 {
			b.WriteString("    can:\n")
		}
		for _, g := range inActionOrder(r.Grants, func(g Grant) Action { return g.Action }) {
			b.WriteString("      ")
			b.WriteString(scalar(string(g.Action), false))
			b.WriteString(": ")
			switch {
			case len(g.Roles) > 0:
				b.WriteString(flowList(g.Roles))
			case len(g.Tasks) > 0:
				b.WriteString(flowList(g.Tasks))
			default:
				b.WriteString("true")
			}
			b.WriteByte('\n')
		}
		if len(r.TaskVisibility) > 0 {
			b.WriteString("    task-visibility: ")
			b.WriteString(flowList(r.TaskVisibility))
			b.WriteByte('\n')
		}
	}
	if len(c.Quorums) > 0 {
		b.WriteString("quorum:\n")
	}
	for _, q := range inActionOrder(c.Quorums, func(q Quorum) Action { return q.Action }) {
		b.WriteString("  ")
		b.WriteString(scalar(string(q.Action), false))
		b.WriteString(": {approvals: ")
		if q.Approvals == 0 {
			b.WriteString(majority)
		} else {
			b.WriteString(strconv.Itoa(q.Approvals))
		}
		b.WriteString(", of: ")
		b.WriteString(scalar(q.Of, true))
		b.WriteString("}\n")
	}
	if c.Keys != (Keys{}) {
		b.WriteString("keys:\n")
		if c.Keys.History != HistoryChained {
			b.WriteString("  history: " + c.Keys.History + "\n")
		}
		if c.Keys.RotateEvery != 0 {
			b.WriteString("  rotate-every: " + FormatPeriod(c.Keys.RotateEvery) + "\n")
		}
	}
	if k := c.Continuity; k != (Continuity{}) {
		b.WriteString("continuity:\n")
		if k.InactiveAfter != 0 {
			b.WriteString("  inactive-after: " + FormatPeriod(k.InactiveAfter) + "\n")
		}
		if k.Witnesses != 0 {
			b.WriteString("  witnesses: " + strconv.FormatUint(k.Witnesses, 10) + "\n")
		}
		if k.Waiting != 0 {
			b.WriteString("  waiting: " + FormatPeriod(k.Waiting) + "\n")
		}
		if k.ProposalsExpire != 0 {
			b.WriteString("  proposals-expire: " + FormatPeriod(k.ProposalsExpire) + "\n")
		}
	}
	return b.Bytes()
}

// inActionOrder returns the items in the order of Actions, followed by any
// with an unknown action in their original order.
func inActionOrder[T any](items []T, action func(T) Action) []T {
	out := make([]T, 0, len(items))
	for _, a := range Actions() {
		for _, it := range items {
			if action(it) == a {
				out = append(out, it)
			}
		}
	}
	for _, it := range items {
		if action(it).kind() == unknownAction {
			out = append(out, it)
		}
	}
	return out
}

// flowList writes one name as a scalar, several as a flow sequence.
func flowList(names []string) string {
	if len(names) == 1 {
		return scalar(names[0], true)
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = scalar(n, true)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// writeText writes s as the value of a key followed by a newline: as a
// literal block indented by indent if it is several lines that a literal
// block carries exactly, else as a scalar.
func writeText(b *bytes.Buffer, s, indent string) {
	if !literalOK(s) {
		b.WriteString(scalar(s, false))
		b.WriteByte('\n')
		return
	}
	body, chomp := s, "-"
	if strings.HasSuffix(s, "\n") {
		body, chomp = s[:len(s)-1], ""
	}
	b.WriteString("|" + chomp + "\n")
	for _, line := range strings.Split(body, "\n") {
		if line != "" {
			b.WriteString(indent)
			b.WriteString(line)
		}
		b.WriteByte('\n')
	}
}

// literalOK reports whether s is best written as a literal block, and can
// be: several lines of printable text, none starting or ending with a
// space, at most one newline at the end and none at the start.
func literalOK(s string) bool {
	if !strings.Contains(strings.TrimSuffix(s, "\n"), "\n") || strings.HasPrefix(s, "\n") || strings.HasSuffix(s, "\n\n") {
		return false
	}
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if strings.TrimSpace(line) != line {
			return false
		}
		for _, r := range line {
			if !unicode.IsPrint(r) || r == utf8.RuneError {
				return false
			}
		}
	}
	return true
}

// scalar returns s as a YAML scalar: plain when that is unambiguous, else
// double-quoted. In a flow collection (flow), commas and brackets need
// quotes too.
func scalar(s string, flow bool) string {
	if plainOK(s, flow) {
		return s
	}
	return strconv.Quote(s)
}

// plainOK reports whether s reads back as the same string when written
// plain: it starts with a letter, holds only letters, digits, spaces and
// harmless punctuation, does not start or end with a space, and is not a
// word YAML reads as a boolean or null.
func plainOK(s string, flow bool) bool {
	if s == "" || strings.TrimSpace(s) != s {
		return false
	}
	if r, _ := utf8.DecodeRuneInString(s); !unicode.IsLetter(r) {
		return false
	}
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null":
		return false
	}
	for i, r := range s {
		switch {
		case r == ' ':
			if strings.HasPrefix(s[i+1:], " ") {
				return false // keep runs of spaces exact
			}
		case unicode.IsLetter(r) || unicode.IsDigit(r):
		case strings.ContainsRune("-_.'()!?/&+;@%=~", r):
		case r == ',' && !flow:
		default:
			return false
		}
	}
	return true
}
