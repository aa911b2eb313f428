package charter

import (
	"fmt"
	"slices"

	"github.com/goccy/go-yaml/ast"
)

// The YAML reader's primitives: positions, errors, and the node shapes a
// charter is made of.

// yamlReader builds a Charter and its positions from a YAML AST, collecting
// the structural problems; check finds the rest.
type yamlReader struct {
	c    *Charter
	p    *positions
	errs ErrorList
	// incomplete is set when a part of the charter was left out because it
	// was malformed; the checks that need the whole charter are skipped.
	incomplete bool
}

func (y *yamlReader) errorf(at pos, format string, args ...any) {
	y.errs = append(y.errs, &Error{Line: at.line, Column: at.col, Msg: fmt.Sprintf(format, args...)})
}

// broken records a malformed part, which was left out.
func (y *yamlReader) broken(at pos, format string, args ...any) {
	y.incomplete = true
	y.errorf(at, format, args...)
}

// posOf returns where n starts: its first key for a mapping (whose token is
// the first ':'), else its token.
func posOf(n ast.Node) pos {
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		return posOf(m.Values[0].Key)
	}
	if mv, ok := n.(*ast.MappingValueNode); ok {
		return posOf(mv.Key)
	}
	if n == nil {
		return pos{}
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return pos{tk.Position.Line, tk.Position.Column}
	}
	return pos{}
}

// describe names the kind of a node for messages.
func describe(n ast.Node) string {
	switch n := n.(type) {
	case nil, *ast.NullNode:
		return "nothing"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.BoolNode:
		return fmt.Sprint(n.Value)
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value
	case *ast.StringNode:
		if r := []rune(n.Value); len(r) > 40 {
			return fmt.Sprintf("%q…", string(r[:40]))
		}
		return fmt.Sprintf("%q", n.Value)
	case *ast.LiteralNode:
		return "a block of text"
	case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode:
		return "an anchor, alias or tag"
	}
	return "something else"
}

// supported reports whether n may appear in a charter, reporting anchors,
// aliases and tags, which may not.
func (y *yamlReader) supported(n ast.Node) bool {
	switch n.(type) {
	case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode, *ast.MergeKeyNode:
		y.broken(posOf(n), "anchors, aliases, merge keys and tags are not supported in a charter")
		return false
	}
	return true
}

// mapping returns the entries of n if it is a mapping; a null is an empty
// mapping. Otherwise it reports what was expected.
func (y *yamlReader) mapping(n ast.Node, what string) ([]*ast.MappingValueNode, bool) {
	if !y.supported(n) {
		return nil, false
	}
	switch n := n.(type) {
	case nil, *ast.NullNode:
		return nil, true
	case *ast.MappingNode:
		return n.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}, true
	}
	y.broken(posOf(n), "%s must be a mapping, not %s", what, describe(n))
	return nil, false
}

// key returns the text of an entry's key and where it is.
func (y *yamlReader) key(mv *ast.MappingValueNode) (string, pos, bool) {
	at := posOf(mv.Key)
	switch k := mv.Key.(type) {
	case *ast.StringNode:
		return k.Value, at, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode:
		return k.GetToken().Value, at, true
	}
	y.broken(at, "keys must be plain text, not %s", describe(mv.Key))
	return "", at, false
}

// unknownKey reports a key that is not in keys.
func (y *yamlReader) unknownKey(at pos, key, where, keys string) {
	y.broken(at, "unknown key %q in %s (keys are: %s)", key, where, keys)
}

// text returns the text of a scalar. Numbers and booleans count as their
// source text; a null is "".
func (y *yamlReader) text(n ast.Node, what string) (string, bool) {
	if !y.supported(n) {
		return "", false
	}
	switch n := n.(type) {
	case nil, *ast.NullNode:
		return "", true
	case *ast.StringNode:
		return n.Value, true
	case *ast.LiteralNode:
		return n.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	}
	y.broken(posOf(n), "%s must be text, not %s", what, describe(n))
	return "", false
}

// list returns the strings of a string or a list of strings, sorted and
// without repeats, each with where it was first written. It reports a value
// of another kind as "<what> takes <takes>, not ...", and an item that is not
// a string as "<what>: expected <item>, not ...".
func (y *yamlReader) list(n ast.Node, what, takes, item string) ([]string, map[string]pos, bool) {
	if !y.supported(n) {
		return nil, nil, false
	}
	var nodes []ast.Node
	switch n := n.(type) {
	case *ast.StringNode:
		nodes = []ast.Node{n}
	case *ast.SequenceNode:
		nodes = n.Values
	default:
		y.broken(posOf(n), "%s takes %s, not %s", what, takes, describe(n))
		return nil, nil, false
	}
	var names []string
	at := make(map[string]pos)
	ok := true
	for _, e := range nodes {
		if !y.supported(e) {
			ok = false
			continue
		}
		s, isString := e.(*ast.StringNode)
		if !isString {
			y.broken(posOf(e), "%s: expected %s, not %s", what, item, describe(e))
			ok = false
			continue
		}
		if _, seen := at[s.Value]; !seen {
			at[s.Value] = posOf(e)
		}
		names = append(names, s.Value)
	}
	slices.Sort(names)
	return nilIfEmpty(slices.Compact(names)), at, ok
}
