package charter

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// cborText returns the CBOR encoding of a short text string.
func cborText(s string) []byte {
	return append([]byte{0x60 + byte(len(s))}, s...)
}

// wireRoles returns the encoding of a valid roles array: one role "a".
func wireRoles(t *testing.T) []byte {
	t.Helper()
	em, err := encMode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := em.Marshal([]Role{{Name: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestUnmarshalMinimal(t *testing.T) {
	b := cat([]byte{0xa2, 0x01}, cborText("x"), []byte{0x03}, wireRoles(t))
	c, err := Unmarshal(b)
	if err != nil {
		t.Fatalf("Unmarshal(%x): %v", b, err)
	}
	if c.Name != "x" || len(c.Roles) != 1 || c.Roles[0].Name != "a" {
		t.Fatalf("got %#v", c)
	}
	if b2, _ := c.MarshalBinary(); !bytes.Equal(b, b2) {
		t.Fatalf("re-encoded %x, want %x", b2, b)
	}
}

func TestUnmarshalStrict(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "desk.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	roles := wireRoles(t)
	deep := bytes.Repeat([]byte{0x81}, 10) // ten nested one-element arrays
	deep = append(deep, 0x80)
	for _, tc := range []struct {
		name string
		b    []byte
		msg  string
	}{
		{"empty", nil, "wire form"},
		{"not a map", []byte{0x80}, "wire form"},
		{"null", []byte{0xf6}, `"name" is missing`},
		{"duplicate key", cat([]byte{0xa3, 0x01}, cborText("x"), []byte{0x01}, cborText("y"), []byte{0x03}, roles), "duplicate map key"},
		{"unknown field", cat([]byte{0xa3, 0x01}, cborText("x"), []byte{0x03}, roles, []byte{0x09, 0x01}), "unknown field"},
		{"unknown field in a role", cat([]byte{0xa2, 0x01}, cborText("x"), []byte{0x03, 0x81, 0xa2, 0x01}, cborText("a"), []byte{0x07, 0xf5}), "unknown field"},
		{"string key", cat([]byte{0xa2}, cborText("1"), cborText("x"), []byte{0x03}, roles), "wire form"},
		{"trailing bytes", append(bytes.Clone(golden), 0x00), "extraneous data"},
		{"oversize", append(bytes.Clone(golden), make([]byte, MaxWireSize)...), "at most 65536"},
		{"indefinite map", cat([]byte{0xbf, 0x01}, cborText("x"), []byte{0x03}, roles, []byte{0xff}), "indefinite-length"},
		{"indefinite string", cat([]byte{0xa2, 0x01, 0x7f}, cborText("x"), []byte{0xff, 0x03}, roles), "indefinite-length"},
		{"tag", cat([]byte{0xc0, 0xa2, 0x01}, cborText("x"), []byte{0x03}, roles), "wire form"},
		{"too deep", cat([]byte{0xa3, 0x01}, cborText("x"), []byte{0x03}, roles, []byte{0x05}, deep), "exceeded max nested level"},
		{"long length form", cat([]byte{0xa2, 0x01, 0x78, 0x01, 'x', 0x03}, roles), "not the canonical encoding"},
		{"keys out of order", cat([]byte{0xa2, 0x03}, roles, []byte{0x01}, cborText("x")), "not the canonical encoding"},
		{"empty list present", cat([]byte{0xa3, 0x01}, cborText("x"), []byte{0x03}, roles, []byte{0x04, 0x80}), "not the canonical encoding"},
		{"invalid UTF-8", cat([]byte{0xa2, 0x01, 0x61, 0xff, 0x03}, roles), "invalid UTF-8"},
		{"invalid charter", cat([]byte{0xa2, 0x01}, cborText("x"), []byte{0x03, 0x81, 0xa2, 0x01}, cborText("a"), []byte{0x04, 0x81}, cborText("zz")), `unknown role "zz" in task-visibility`},
		{"negative approvals", nil, "approvals must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			if tc.name == "negative approvals" {
				c := mustTemplate(t, "collective")
				c.Quorums[0].Approvals = -3
				var err error
				if b, err = c.encode(); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Unmarshal(b)
			if err == nil {
				t.Fatalf("Unmarshal(%x) succeeded: %#v", b, c)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
		})
	}
}

// TestWireKeys pins the integer keys of the wire form (docs/charter.md).
func TestWireKeys(t *testing.T) {
	c := &Charter{
		Name: "n", Mission: "m",
		Roles: []Role{{
			Name: "a", Description: "d",
			Grants:         []Grant{{Action: Comment, Tasks: []string{"own"}}, {Action: Invite, Roles: []string{"a"}}},
			TaskVisibility: []string{"a"},
		}},
		Quorums: []Quorum{{Action: Invite, Approvals: 2, Of: "a"}},
	}
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var generic map[uint64]any
	if err := cbor.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]any{
		1: "n", 2: "m",
		3: []any{map[any]any{
			uint64(1): "a", uint64(2): "d",
			uint64(3): []any{
				map[any]any{uint64(1): "comment", uint64(3): []any{"own"}},
				map[any]any{uint64(1): "invite", uint64(2): []any{"a"}},
			},
			uint64(4): []any{"a"},
		}},
		4: []any{map[any]any{uint64(1): "invite", uint64(2): uint64(2), uint64(3): "a"}},
	}
	if got, wantS := sprint(generic), sprint(want); got != wantS {
		t.Fatalf("wire form\n got %s\nwant %s", got, wantS)
	}
}

func sprint(v any) string {
	d, _ := cbor.CoreDetEncOptions().EncMode()
	b, _ := d.Marshal(v)
	return string(b)
}

// TestWireDocExample checks the worked example of docs/charter.md §5.
func TestWireDocExample(t *testing.T) {
	c, err := Parse([]byte(`name: Desk
roles:
  - name: editor
    can: {invite: "*", comment: [assigned, own]}
quorum:
  invite: {approvals: 2, of: editor}
`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	const want = "a301644465736b0381a20166656469746f720382a20167636f6d6d656e74038268" +
		"61737369676e6564636f776ea20166696e766974650281612a0481a30166696e76" +
		"69746502020366656469746f72"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("wire form\n got %s\nwant %s", got, want)
	}
}
