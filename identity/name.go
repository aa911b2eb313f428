package identity

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Display names are what members recognise each other by, so two names
// that look the same must be the same name, and a name must show all it
// holds. The rules follow the PRECIS Nickname profile (RFC 8266) in
// spirit, with emoji sequences allowed:
//
//   - normal form: NFKC (full-width letters, ligatures and other
//     compatibility forms folded: "Ｄａｖｅ" is "Dave"), spaces of every
//     kind made U+0020, none at either end, no two in a row;
//   - nothing invisible: no control or format characters (U+200B zero
//     width space, U+00AD soft hyphen, U+2060 word joiner, bidirectional
//     controls…), no unassigned or private-use code points, no other
//     default-ignorable ones (Hangul fillers, variation selectors but
//     after a symbol); U+200D zero width joiner only between two symbols,
//     as in emoji sequences;
//   - one script a word: a word may not mix, say, Latin with Cyrillic
//     ("Dаve" with a Cyrillic "а"), except the mixes that Unicode's
//     "highly restrictive" profile (UTS #39) allows: Latin with Han and
//     Japanese kana, with Han and Bopomofo, with Han and Hangul.
//
// Names that still look alike (Latin "l" and digit "1", "Dave" and
// "dave") are valid; Confusable says when two are, so that interfaces
// can warn.

// NormalizeName returns name in the form names are kept in (NFKC, spaces
// trimmed and collapsed), or an error wrapping ErrBadName if the result is
// not a valid name. Use it on what a person typed; ValidateName on what
// arrives.
func NormalizeName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: the name is not valid UTF-8", ErrBadName)
	}
	n := strings.Join(strings.FieldsFunc(norm.NFKC.String(name), isNameSpace), " ")
	return n, checkName(n)
}

// ValidateName reports whether name may be used as a display name as it
// is: non-empty, at most MaxNameLen bytes, valid UTF-8, in normal form
// (NormalizeName leaves it unchanged), nothing invisible and one script a
// word. A failure wraps ErrBadName and names the character at fault.
func ValidateName(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if !norm.NFKC.IsNormalString(name) {
		return fmt.Errorf("%w: the name is not in normal form (NFKC): it would be %q", ErrBadName, norm.NFKC.String(name))
	}
	if n := strings.Join(strings.FieldsFunc(name, isNameSpace), " "); n != name {
		return fmt.Errorf("%w: the name has spaces at an end, in a row, or of another kind than U+0020", ErrBadName)
	}
	return nil
}

// checkName checks everything but the normal form.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrBadName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: the name is %d bytes long, at most %d allowed", ErrBadName, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: the name is not valid UTF-8", ErrBadName)
	}
	rs := []rune(name)
	for i, r := range rs {
		var prev, next rune
		if i > 0 {
			prev = rs[i-1]
		}
		if i+1 < len(rs) {
			next = rs[i+1]
		}
		switch {
		case unicode.IsControl(r) || isBidiControl(r):
			return fmt.Errorf("%w: the name contains the control character %U", ErrBadName, r)
		case r == zwj && isSymbol(prev) && isSymbol(next):
		case (r == vs15 || r == vs16) && isSymbol(prev):
		case unicode.Is(unicode.Cf, r) || isDefaultIgnorable(r):
			return fmt.Errorf("%w: the name contains the invisible character %U", ErrBadName, r)
		case r == ' ':
		case unicode.In(r, unicode.Co, unicode.Cs) || !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S):
			return fmt.Errorf("%w: the name contains %U, which is unassigned, private or not a visible character", ErrBadName, r)
		}
	}
	for _, w := range strings.Fields(name) {
		if a, b, mixed := mixedScripts(w); mixed {
			return fmt.Errorf("%w: the word %q mixes %s and %s letters, as look-alike names do", ErrBadName, w, a, b)
		}
	}
	return nil
}

const (
	zwj  = '\u200d' // zero width joiner
	vs15 = '\ufe0e' // variation selector: text presentation
	vs16 = '\ufe0f' // variation selector: emoji presentation
)

// isNameSpace reports whether r separates words of a name: any space
// character, which NormalizeName makes U+0020.
func isNameSpace(r rune) bool { return unicode.Is(unicode.Zs, r) }

// isSymbol reports whether r is a symbol (an emoji, most often), or an
// emoji modifier, around which joiners and variation selectors are shown.
func isSymbol(r rune) bool { return unicode.Is(unicode.S, r) }

// isBidiControl reports whether r is one of the invisible characters that
// change the direction in which text is displayed.
func isBidiControl(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// isDefaultIgnorable reports whether r is one of Unicode's default
// ignorable code points that are not format characters: shown as nothing.
func isDefaultIgnorable(r rune) bool {
	switch {
	case r == 0x034F, r == 0x115F, r == 0x1160, r == 0x17B4, r == 0x17B5, r == 0x3164, r == 0xFFA0:
		return true
	case r >= 0x180B && r <= 0x180F, r >= 0xFE00 && r <= 0xFE0F, r >= 0xE0100 && r <= 0xE01EF:
		return true // variation selectors (but after a symbol: checked first)
	case r >= 0x2060 && r <= 0x206F, r >= 0xFFF0 && r <= 0xFFF8, r >= 0xE0000 && r <= 0xE0FFF:
		return true
	}
	return false
}

// nameScripts are the scripts a word's letters are classified by: every
// script of unicode.Scripts but Common and Inherited.
var nameScripts = func() []string {
	var out []string
	for name := range unicode.Scripts {
		if name != "Common" && name != "Inherited" {
			out = append(out, name)
		}
	}
	return out
}()

// scriptOf returns r's script, or "" for Common and Inherited characters
// (digits, punctuation, marks), which go with any script. (Scripts are
// disjoint, so the order of nameScripts does not matter.)
func scriptOf(r rune) string {
	if r < 0x80 {
		if unicode.IsLetter(r) {
			return "Latin"
		}
		return ""
	}
	for _, name := range nameScripts {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	return ""
}

// allowedMixes are the sets of scripts one word may mix (UTS #39, highly
// restrictive).
var allowedMixes = []map[string]bool{
	{"Latin": true, "Han": true, "Hiragana": true, "Katakana": true},
	{"Latin": true, "Han": true, "Bopomofo": true},
	{"Latin": true, "Han": true, "Hangul": true},
}

// mixedScripts reports whether word mixes scripts that no allowed mix
// covers, and names two of them.
func mixedScripts(word string) (string, string, bool) {
	seen := map[string]bool{}
	var order []string
	for _, r := range word {
		if s := scriptOf(r); s != "" && !seen[s] {
			seen[s] = true
			order = append(order, s)
		}
	}
	if len(order) < 2 {
		return "", "", false
	}
	for _, mix := range allowedMixes {
		ok := true
		for s := range seen {
			ok = ok && mix[s]
		}
		if ok {
			return "", "", false
		}
	}
	return order[0], order[1], true
}

// Confusable reports whether two valid names look alike enough that a
// person could take one for the other: the same after folding case,
// accents, spaces and look-alike letters and digits (Cyrillic "а" and
// Latin "a", "l" and "1", "O" and "0"…). Equal names are confusable.
func Confusable(a, b string) bool { return skeleton(a) == skeleton(b) }

// skeleton is what Confusable compares: the name in lower case,
// decomposed, without marks or spaces, each look-alike mapped to one
// representative.
func skeleton(name string) string {
	var sb strings.Builder
	for _, r := range norm.NFKD.String(strings.ToLower(name)) {
		if unicode.Is(unicode.Mn, r) || unicode.IsSpace(r) || r == zwj || r == vs15 || r == vs16 {
			continue
		}
		if m, ok := lookAlike[r]; ok {
			r = m
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// lookAlike maps characters (in lower case) to the Latin letter or digit
// they are most often mistaken for.
var lookAlike = map[rune]rune{
	// Digits and Latin letters among themselves.
	'0': 'o', '1': 'l', 'i': 'l', '|': 'l', '5': 's', '8': 'b', 'ı': 'l',
	// Cyrillic.
	'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c',
	'т': 't', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'l', 'ї': 'l', 'ј': 'j', 'ԁ': 'd', 'һ': 'h', 'ԛ': 'q',
	'ԝ': 'w', 'ɡ': 'g', 'ӏ': 'l', 'ь': 'b',
	// Greek.
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'l', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't',
	'υ': 'u', 'χ': 'x', 'ω': 'w', 'ζ': 'z',
}
