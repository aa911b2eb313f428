package event

import (
	"errors"
	"testing"
)

// TestHeadShortest checks every width boundary of an item head: the
// writer uses the shortest form, the reader accepts exactly that form and
// rejects each longer one as non-canonical.
func TestHeadShortest(t *testing.T) {
	for _, n := range []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1} {
		for _, major := range []byte{majorUint, majorBytes, majorArray, majorMap} {
			b := appendHead(nil, major, n)
			r := reader{b: b}
			m, got, err := r.head()
			if err != nil || m != major || got != n || r.off != len(b) {
				t.Fatalf("head(%x) = %d, %d, %v", b, m, got, err)
			}
			// Every longer form of the same argument.
			for ai, size := range map[byte]int{24: 1, 25: 2, 26: 4, 27: 8} {
				if size <= len(b)-1 || (size < 8 && n>>(8*size) != 0) {
					continue
				}
				long := []byte{major<<5 | ai}
				for i := size - 1; i >= 0; i-- {
					long = append(long, byte(n>>(8*i)))
				}
				r := reader{b: long}
				if _, _, err := r.head(); !errors.Is(err, ErrNonCanonical) {
					t.Errorf("head(%x) = %v, want ErrNonCanonical", long, err)
				}
			}
		}
	}
}

// TestHeadReject checks the initial bytes the reader refuses outright.
func TestHeadReject(t *testing.T) {
	tests := []struct {
		b    []byte
		want error
	}{
		{nil, ErrMalformed},
		{[]byte{0x18}, ErrMalformed},       // argument missing
		{[]byte{0x19, 0x01}, ErrMalformed}, // argument short
		{[]byte{0x1c}, ErrMalformed},       // reserved additional information
		{[]byte{0x1d}, ErrMalformed},
		{[]byte{0x1e}, ErrMalformed},
		{[]byte{0x1f}, ErrMalformed}, // indefinite unsigned integer: ill-formed
		{[]byte{0x3f}, ErrMalformed}, // indefinite negative integer: ill-formed
		{[]byte{0xdf}, ErrMalformed}, // indefinite tag: ill-formed
		{[]byte{0xff}, ErrMalformed}, // break outside an indefinite item
		{[]byte{0x5f}, ErrNonCanonical},
		{[]byte{0x7f}, ErrNonCanonical},
		{[]byte{0x9f}, ErrNonCanonical},
		{[]byte{0xbf}, ErrNonCanonical},
		{[]byte{0xf8, 0x20}, ErrMalformed},                   // simple value
		{[]byte{0xf9, 0x3c, 0x00}, ErrMalformed},             // half float
		{[]byte{0xfa, 0, 0, 0, 0}, ErrMalformed},             // single float
		{[]byte{0xfb, 0, 0, 0, 0, 0, 0, 0, 0}, ErrMalformed}, // double float
	}
	for _, tt := range tests {
		r := reader{b: tt.b}
		if _, _, err := r.head(); !errors.Is(err, tt.want) {
			t.Errorf("head(%x) = %v, want %v", tt.b, err, tt.want)
		}
	}
}

// TestFixed checks that a fixed-size field of the wrong size is malformed
// whether it is shorter or longer, and that a truncated one is too.
func TestFixed(t *testing.T) {
	var dst [4]byte
	for _, b := range [][]byte{
		{0x43, 1, 2, 3},
		{0x45, 1, 2, 3, 4, 5},
		{0x58, 0xff},
		{0x44, 1, 2, 3},
		{0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		r := reader{b: b}
		if err := r.fixed("x", dst[:]); !errors.Is(err, ErrMalformed) {
			t.Errorf("fixed(%x) = %v, want ErrMalformed", b, err)
		}
	}
	r := reader{b: []byte{0x44, 1, 2, 3, 4}}
	if err := r.fixed("x", dst[:]); err != nil || dst != [4]byte{1, 2, 3, 4} || r.off != 5 {
		t.Errorf("fixed: %v, %x, off %d", err, dst, r.off)
	}
}
