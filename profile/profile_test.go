package profile

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
)

var update = flag.Bool("update", false, "rewrite testdata/profile vectors")

// fixed returns deterministic key material for tests and vectors.
func fixed(t testing.TB, b byte) (*identity.SigningKey, *identity.KEMPrivateKey) {
	t.Helper()
	sk, err := identity.SigningKeyFromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	kem, err := identity.KEMPrivateKeyFromBytes(bytes.Repeat([]byte{b + 1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return sk, kem
}

func testRecord(t testing.TB, sk *identity.SigningKey, kem *identity.KEMPrivateKey, version uint64) *Record {
	return &Record{Key: sk.Public(), Pursuance: event.ID{0xaa, 0xbb}, Version: version, Name: "Leak Desk",
		Mission: "We verify leaked documents.\nQuietly.", Seeking: "translators, lawyers", Intake: kem.Public(),
		Relays: []string{"https://relay.example.org"}}
}

func TestRecordSignParse(t *testing.T) {
	sk, kem := fixed(t, 1)
	r := testRecord(t, sk, kem, 7)
	wire, err := r.Sign(sk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(wire)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != r.Key || got.Pursuance != r.Pursuance || got.Version != 7 || got.Name != r.Name || got.Mission != r.Mission ||
		got.Seeking != r.Seeking || !got.Intake.Equal(r.Intake) || len(got.Relays) != 1 || !bytes.Equal(got.Bytes(), wire) {
		t.Errorf("Parse(Sign(r)) = %+v", got)
	}
	if w := got.Words(); !strings.Contains(strings.Join(w, " "), "leaked") || !strings.Contains(strings.Join(w, " "), "translators") {
		t.Errorf("Words = %q", w)
	}
}

// A forged record: every change of a byte, a record signed by another key
// than the one it names, or a key swapped in, does not parse.
func TestRecordForged(t *testing.T) {
	sk, kem := fixed(t, 1)
	other, _ := fixed(t, 9)
	wire, err := testRecord(t, sk, kem, 1).Sign(sk)
	if err != nil {
		t.Fatal(err)
	}
	for i := range wire {
		b := bytes.Clone(wire)
		b[i] ^= 0x01
		if _, err := Parse(b); err == nil {
			t.Fatalf("a record with byte %d changed parsed", i)
		}
	}
	r := testRecord(t, sk, kem, 1)
	if _, err := r.Sign(other); err == nil {
		t.Error("a record was signed by a key it does not name")
	}
	// A forger who names its own key can sign any claim; what it cannot do
	// is sign under the pursuance's key: its record has another key.
	forged := testRecord(t, other, kem, 99)
	fw, err := forged.Sign(other)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := Parse(fw)
	if f.Key == sk.Public() {
		t.Error("the forged record names the real key")
	}
	if _, err := Parse(append(bytes.Clone(wire), 0)); err == nil {
		t.Error("trailing bytes parsed")
	}
}

func TestRecordLimits(t *testing.T) {
	sk, kem := fixed(t, 1)
	for name, mod := range map[string]func(r *Record){
		"no name":            func(r *Record) { r.Name = " " },
		"long name":          func(r *Record) { r.Name = strings.Repeat("n", MaxName+1) },
		"a line in the name": func(r *Record) { r.Name = "a\nb" },
		"long mission":       func(r *Record) { r.Mission = strings.Repeat("m", MaxMission+1) },
		"too many relays":    func(r *Record) { r.Relays = slicesRepeat("https://r.example", MaxRelays+1) },
		"a bad relay":        func(r *Record) { r.Relays = []string{"ftp://r.example"} },
		"version 0":          func(r *Record) { r.Version = 0 },
		"no intake key":      func(r *Record) { r.Intake = identity.KEMPublicKey{} },
		"a withdrawal that says more": func(r *Record) {
			r.Withdrawn = true
		},
		"not UTF-8": func(r *Record) { r.Mission = "\xff" },
	} {
		r := testRecord(t, sk, kem, 1)
		mod(r)
		if _, err := r.Sign(sk); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: Sign = %v", name, err)
		}
	}
	big := testRecord(t, sk, kem, 1)
	big.Mission, big.Seeking = strings.Repeat("m", MaxMission), strings.Repeat("s", MaxSeeking)
	big.Relays = slicesRepeat("https://"+strings.Repeat("r", MaxRelayURL-8), MaxRelays)
	if _, err := big.Sign(sk); err == nil || !strings.Contains(err.Error(), "over the limit of 4096") {
		t.Errorf("a record over %d bytes: %v", MaxRecordSize, err)
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// Stale and withdrawn: a higher version supersedes; a withdrawal is final.
func TestRecordSupersedes(t *testing.T) {
	sk, kem := fixed(t, 1)
	parse := func(r *Record) *Record {
		w, err := r.Sign(sk)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := Parse(w)
		return p
	}
	v1, v2 := parse(testRecord(t, sk, kem, 1)), parse(testRecord(t, sk, kem, 2))
	if !v2.Supersedes(v1) || v1.Supersedes(v2) || v1.Supersedes(v1) {
		t.Error("versions do not order records")
	}
	v2b := testRecord(t, sk, kem, 2)
	v2b.Name = "Leak Desk West"
	v2b = parse(v2b)
	if v2.Supersedes(v2b) == v2b.Supersedes(v2) {
		t.Error("two records of one version do not resolve one way")
	}
	w := parse(&Record{Key: sk.Public(), Pursuance: v1.Pursuance, Version: 3, Withdrawn: true})
	if !w.Supersedes(v2) {
		t.Error("a withdrawal does not supersede")
	}
	if parse(testRecord(t, sk, kem, 1000)).Supersedes(w) {
		t.Error("a profile superseded a withdrawal")
	}
}

func testKnock(t testing.TB, member *identity.SigningKey, kem *identity.KEMPrivateKey, profile identity.PublicKey) *Knock {
	return &Knock{Pursuance: event.ID{0xaa, 0xbb}, Profile: profile, Member: member.Public(), Name: "Dana", KEM: kem.Public(),
		Message: "I translate Farsi; Erin knows me.", ReplySeed: [32]byte{0x72}, Relays: []string{"http://127.0.0.1:1"}, Time: 1_700_000_000_000}
}

func TestKnockSealOpen(t *testing.T) {
	psk, intake := fixed(t, 1)
	msk, mkem := fixed(t, 3)
	k := testKnock(t, msk, mkem, psk.Public())
	box, id, err := k.Seal(msk, intake.Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(box) != KnockSize || id != KnockID(box) {
		t.Fatalf("sealed %d bytes, ID %s", len(box), id)
	}
	// Nothing of it is in the clear.
	for _, s := range [][]byte{[]byte("Dana"), []byte("Farsi"), pkBytes(msk.Public()), mkem.Public().Bytes()[:32], k.Pursuance[:8], []byte("127.0.0.1")} {
		if bytes.Contains(box, s) {
			t.Errorf("the sealed request shows %q", s)
		}
	}
	got, err := OpenKnock(intake, psk.Public(), box)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Dana" || got.Member != msk.Public() || got.Message != k.Message || got.ReplySeed != k.ReplySeed || !got.KEM.Equal(mkem.Public()) || got.Time != k.Time {
		t.Errorf("OpenKnock = %+v", got)
	}
	// Another intake key opens nothing; a request opened as another
	// profile's is refused (the purpose binds the profile key).
	_, otherIntake := fixed(t, 5)
	if _, err := OpenKnock(otherIntake, psk.Public(), box); err == nil {
		t.Error("another intake key opened the request")
	}
	if _, err := OpenKnock(intake, msk.Public(), box); err == nil {
		t.Error("the request opened as another profile's")
	}
	b := bytes.Clone(box)
	b[2000] ^= 1
	if _, err := OpenKnock(intake, psk.Public(), b); err == nil {
		t.Error("an altered request opened")
	}
	// A request that names another member than its signer is refused at
	// sealing, and would not verify if sealed by hand.
	bad := testKnock(t, msk, mkem, psk.Public())
	other, _ := fixed(t, 7)
	bad.Member = other.Public()
	if _, _, err := bad.Seal(msk, intake.Public()); err == nil {
		t.Error("a request naming another member was sealed")
	}
	long := testKnock(t, msk, mkem, psk.Public())
	long.Message = strings.Repeat("x", MaxMessage+1)
	if _, _, err := long.Seal(msk, intake.Public()); !errors.Is(err, ErrBadKnock) {
		t.Errorf("an over-long message: %v", err)
	}
	if _, err := OpenKnock(intake, psk.Public(), box[:KnockSize-1]); err == nil {
		t.Error("a short request opened")
	}
}

// An answer opens with the requester's key only: not with the intake key
// that opened the request, nor as an answer to another request.
func TestAnswerOnlyTheRequesterOpens(t *testing.T) {
	_, intake := fixed(t, 1)
	_, mkem := fixed(t, 3)
	req := event.ID{0x42}
	a := &Answer{Request: req, Pursuance: event.ID{0xaa}, Status: Invited, Code: "pi1abc", Message: "Welcome.", From: "Erin"}
	box, err := a.Seal(mkem.Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(box) != AnswerSize || bytes.Contains(box, []byte("pi1abc")) || bytes.Contains(box, []byte("Erin")) {
		t.Fatal("the answer is not sealed to size")
	}
	got, err := OpenAnswer(mkem, req, box)
	if err != nil || got.Code != "pi1abc" || got.Status != Invited || got.From != "Erin" {
		t.Fatalf("OpenAnswer = %+v, %v", got, err)
	}
	if _, err := OpenAnswer(intake, req, box); err == nil {
		t.Error("the intake key opened the answer")
	}
	if _, err := OpenAnswer(mkem, event.ID{0x43}, box); err == nil {
		t.Error("the answer opened as another request's")
	}
	for _, bad := range []*Answer{
		{Request: req, Pursuance: event.ID{1}, Status: Invited},
		{Request: req, Pursuance: event.ID{1}, Status: Refused, Code: "pi1"},
		{Request: req, Pursuance: event.ID{1}, Status: 3},
	} {
		if _, err := bad.Seal(mkem.Public()); err == nil {
			t.Errorf("answer %+v was sealed", bad)
		}
	}
}

func TestStamp(t *testing.T) {
	psk, _ := fixed(t, 1)
	box := bytes.Repeat([]byte{7}, KnockSize)
	st, err := Stamp(context.Background(), psk.Public(), box, 12)
	if err != nil {
		t.Fatal(err)
	}
	if !CheckStamp(psk.Public(), box, st, 12) {
		t.Error("the stamp does not check")
	}
	// Bound to the request and the profile: another box or key fails (at
	// 12 bits, by chance once in 4096).
	other := bytes.Repeat([]byte{8}, KnockSize)
	if CheckStamp(psk.Public(), other, st, 12) && CheckStamp(psk.Public(), bytes.Repeat([]byte{9}, KnockSize), st, 12) {
		t.Error("the stamp checks for other requests")
	}
	if !CheckStamp(psk.Public(), box, make([]byte, StampSize), 0) || CheckStamp(psk.Public(), box, nil, 0) {
		t.Error("no work needed: any 8-byte stamp checks, a missing one does not")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Stamp(ctx, psk.Public(), box, MaxStampBits); err == nil {
		t.Error("a cancelled stamp returned")
	}
	if _, err := Stamp(context.Background(), psk.Public(), box, MaxStampBits+1); err == nil {
		t.Error("a stamp over the maximum was made")
	}
}

// vector is one golden case of testdata/profile/vectors.json.
type vector struct {
	Name string `json:"name"`
	// A record: the profile key's seed and the record's wire form.
	KeySeed string `json:"key_seed,omitempty"`
	Record  string `json:"record,omitempty"`
	Valid   bool   `json:"valid"`
	// A sealed request or answer, with the KEM seed that opens it and
	// what it must open to.
	KEMSeed string `json:"kem_seed,omitempty"`
	Profile string `json:"profile_key,omitempty"`
	Request string `json:"request,omitempty"`
	Sealed  string `json:"sealed,omitempty"`
	Opens   string `json:"opens_to,omitempty"` // JSON of the opened fields
}

func TestVectors(t *testing.T) {
	path := filepath.Join("..", "testdata", "profile", "vectors.json")
	if *update {
		writeVectors(t, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			switch {
			case v.Record != "":
				wire, _ := hex.DecodeString(v.Record)
				r, err := Parse(wire)
				if (err == nil) != v.Valid {
					t.Fatalf("Parse: %v, want valid %v", err, v.Valid)
				}
				if v.Valid {
					// Signing again gives the same bytes (Ed25519 is deterministic).
					seed, _ := hex.DecodeString(v.KeySeed)
					sk, _ := identity.SigningKeyFromSeed(seed)
					r2 := *r
					again, err := r2.Sign(sk)
					if err != nil || !bytes.Equal(again, wire) {
						t.Fatalf("signing again gave other bytes: %v", err)
					}
				}
			case v.Request != "":
				seed, _ := hex.DecodeString(v.KEMSeed)
				priv, _ := identity.KEMPrivateKeyFromBytes(seed)
				sealed, _ := hex.DecodeString(v.Sealed)
				id, _ := event.ParseID(v.Request)
				a, err := OpenAnswer(priv, id, sealed)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := json.Marshal(a)
				if string(got) != v.Opens {
					t.Fatalf("opens to %s, want %s", got, v.Opens)
				}
			default:
				seed, _ := hex.DecodeString(v.KEMSeed)
				priv, _ := identity.KEMPrivateKeyFromBytes(seed)
				pk, _ := ParseProfileKey(v.Profile)
				sealed, _ := hex.DecodeString(v.Sealed)
				k, err := OpenKnock(priv, pk, sealed)
				if (err == nil) != v.Valid {
					t.Fatalf("OpenKnock: %v, want valid %v", err, v.Valid)
				}
				if v.Valid {
					got, _ := json.Marshal(k)
					if string(got) != v.Opens {
						t.Fatalf("opens to %s, want %s", got, v.Opens)
					}
					if id := KnockID(sealed); id.String() == "" {
						t.Fatal("no ID")
					}
				}
			}
		})
	}
}

func writeVectors(t *testing.T, path string) {
	sk, kem := fixed(t, 1)
	var vs []vector
	rec := func(name string, r *Record, valid bool, mod func([]byte) []byte) {
		w, err := r.Sign(sk)
		if err != nil {
			t.Fatal(err)
		}
		if mod != nil {
			w = mod(w)
		}
		vs = append(vs, vector{Name: name, KeySeed: hex.EncodeToString(bytes.Repeat([]byte{1}, 32)), Record: hex.EncodeToString(w), Valid: valid})
	}
	rec("a profile", testRecord(t, sk, kem, 7), true, nil)
	rec("a withdrawal", &Record{Key: sk.Public(), Pursuance: event.ID{0xaa, 0xbb}, Version: 8, Withdrawn: true}, true, nil)
	rec("a profile whose name was altered after signing", testRecord(t, sk, kem, 7), false, func(b []byte) []byte {
		return bytes.Replace(b, []byte("Leak Desk"), []byte("Leak Dusk"), 1)
	})
	msk, mkem := fixed(t, 3)
	box, _, err := testKnock(t, msk, mkem, sk.Public()).Seal(msk, kem.Public())
	if err != nil {
		t.Fatal(err)
	}
	k, _ := OpenKnock(kem, sk.Public(), box)
	opens, _ := json.Marshal(k)
	vs = append(vs, vector{Name: "a join request, opened with the intake key (seed 0x02)", KEMSeed: hex.EncodeToString(bytes.Repeat([]byte{2}, 32)),
		Profile: hex.EncodeToString(pkBytes(sk.Public())), Sealed: hex.EncodeToString(box), Valid: true, Opens: string(opens)})
	box[100] ^= 1
	vs = append(vs, vector{Name: "a join request altered in transit", KEMSeed: hex.EncodeToString(bytes.Repeat([]byte{2}, 32)),
		Profile: hex.EncodeToString(pkBytes(sk.Public())), Sealed: hex.EncodeToString(box), Valid: false})
	req := KnockID(box)
	a := &Answer{Request: req, Pursuance: event.ID{0xaa, 0xbb}, Status: Refused, Message: "Not now.", From: "Erin"}
	ab, err := a.Seal(mkem.Public())
	if err != nil {
		t.Fatal(err)
	}
	aj, _ := json.Marshal(a)
	vs = append(vs, vector{Name: "an answer, opened with the requester's KEM key (seed 0x04)", KEMSeed: hex.EncodeToString(bytes.Repeat([]byte{4}, 32)),
		Request: req.String(), Sealed: hex.EncodeToString(ab), Valid: true, Opens: string(aj)})
	out, _ := json.MarshalIndent(vs, "", "  ")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

var _ = keys.KnockTopic

func pkBytes(k identity.PublicKey) []byte { return k[:] }
