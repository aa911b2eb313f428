package charter

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns
// wraps ErrInvalid and points at a line, and that whatever it accepts
// survives YAML and the wire form unchanged.
func FuzzParse(f *testing.F) {
	for _, name := range TemplateNames() {
		src, err := TemplateYAML(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, tc := range brokenCharters {
		f.Add([]byte(tc.src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %v", err)
			}
			for _, e := range list {
				if e.Line < 1 {
					t.Fatalf("error without a line: %q", e.Msg)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
		c2, err := Parse(c.YAML())
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("YAML round trip: %v\n%s", err, c.YAML())
		}
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		c3, err := Unmarshal(b)
		if err != nil || !reflect.DeepEqual(c, c3) {
			t.Fatalf("wire round trip: %v", err)
		}
		// Exercise the permission checks on whatever the fuzzer built.
		roles := c.RoleNames()
		for _, a := range Actions() {
			_ = c.Allows(roles, a, roles, &TaskFacts{VisibleTo: roles})
			_ = c.Allows(roles[:1], a, nil, nil)
		}
		_ = c.NewTaskVisibility(roles)
	})
}

// FuzzUnmarshal checks that Unmarshal never panics and accepts only bytes
// that MarshalBinary reproduces exactly.
func FuzzUnmarshal(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "desk.cbor"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	for _, name := range TemplateNames() {
		c, err := Template(name)
		if err != nil {
			f.Fatal(err)
		}
		b, err := c.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		b2, err := c.MarshalBinary()
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("accepted bytes that do not re-encode identically: %v", err)
		}
		if _, err := Parse(c.YAML()); err != nil {
			t.Fatalf("decoded charter does not survive YAML: %v\n%s", err, c.YAML())
		}
	})
}

// FuzzYAMLText checks that YAML writes any valid free text so that Parse
// reads it back unchanged.
func FuzzYAMLText(f *testing.F) {
	for _, s := range []string{"Night Desk", "a: b", "one\ntwo\n", "  x\ny", "\u2028", "é", "true", "#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := &Charter{Name: "n", Mission: s, Roles: []Role{{Name: "a", Description: s}}}
		if len(s) > MaxDescriptionLen || c.Validate() != nil {
			return
		}
		c2, err := Parse(c.YAML())
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("%q: %v\n%s", s, err, c.YAML())
		}
		c.Mission, c.Roles[0].Description, c.Name = "", "", s
		if c.Validate() != nil {
			return
		}
		c2, err = Parse(c.YAML())
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("name %q: %v\n%s", s, err, c.YAML())
		}
	})
}
