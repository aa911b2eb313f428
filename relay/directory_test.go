package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/profile"
)

// testProfile signs a profile record of pursuance p under the key of seed
// b (a withdrawal when name is "").
func testProfile(t testing.TB, b byte, p event.ID, version uint64, name, mission string) (*identity.SigningKey, *identity.KEMPrivateKey, []byte) {
	t.Helper()
	sk, err := identity.SigningKeyFromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	kem, err := identity.KEMPrivateKeyFromBytes(bytes.Repeat([]byte{b + 1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	r := &profile.Record{Key: sk.Public(), Pursuance: p, Version: version, Withdrawn: name == ""}
	if name != "" {
		r.Name, r.Mission, r.Intake = name, mission, kem.Public()
	}
	raw, err := r.Sign(sk)
	if err != nil {
		t.Fatal(err)
	}
	return sk, kem, raw
}

func httpStatus(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// TestDirectory: records are verified before they are kept, the newest
// per key is listed, a query matches word prefixes, a withdrawal takes a
// profile out of the listing for good, and a relay that did not opt in
// lists nothing.
func TestDirectory(t *testing.T) { forEachStore(t, testDirectory) }

func testDirectory(t *testing.T, be backend) {
	ctx := context.Background()
	r := newTestRelay(t, be, Config{Directory: true})
	pa, pb := event.ID{1}, event.ID{2}
	_, _, a1 := testProfile(t, 1, pa, 1, "Night Desk", "We verify leaked documents.")
	_, _, a2 := testProfile(t, 1, pa, 2, "Night Desk", "We verify leaked documents and court filings.")
	_, _, b1 := testProfile(t, 3, pb, 1, "Harbour Watch", "Shipping records, sanctions.")
	for _, rec := range [][]byte{a1, a2, b1} {
		if _, err := r.c.PutProfile(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.c.PutProfile(ctx, a1); httpStatus(err) != http.StatusConflict {
		t.Errorf("an older version: %v, want 409", err)
	}
	// A forged record (a flipped byte of its signature) is refused.
	forged := bytes.Clone(b1)
	forged[len(forged)-1] ^= 1
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, r.ts.URL+"/v1/profiles/"+strings.Repeat("03", 32), bytes.NewReader(forged))
	if resp, err := r.ts.Client().Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a forged record: %v %v, want 400", resp, err)
	}

	got, bad, err := r.c.Directory(ctx, "court LEAK", 0)
	if err != nil || bad != 0 || len(got) != 1 || got[0].Version != 2 || got[0].Pursuance != pa {
		t.Fatalf("Directory(court leak) = %v, %d, %v", got, bad, err)
	}
	if got, _, _ := r.c.Directory(ctx, "", 0); len(got) != 2 || got[0].Name != "Harbour Watch" {
		t.Errorf("Directory() = %d records", len(got))
	}
	if got, _, _ := r.c.Directory(ctx, "sanctions court", 0); len(got) != 0 {
		t.Errorf("every word must match: %d records", len(got))
	}
	if _, _, err := r.c.Directory(ctx, "a b c d e f g h i j k", 0); err == nil {
		t.Error("a query of too many words was sent")
	}
	resp, err := r.ts.Client().Get(r.ts.URL + "/directory?q=" + strings.Repeat("x", MaxQuery+1))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an oversized query: %v %v, want 400", resp, err)
	}

	// Withdrawn: gone from the listing, kept under its key (final).
	sk, _, _ := testProfile(t, 1, pa, 1, "x", "")
	_, _, w := testProfile(t, 1, pa, 3, "", "")
	if _, err := r.c.PutProfile(ctx, w); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := r.c.Directory(ctx, "night", 0); len(got) != 0 {
		t.Errorf("a withdrawn profile is listed: %v", got)
	}
	// The relay itself lists it no more (not only the client's filter).
	if resp, err := r.ts.Client().Get(r.ts.URL + "/directory"); err != nil {
		t.Fatal(err)
	} else {
		var res Records
		err := json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil || len(res.Records) != 1 {
			t.Errorf("the relay lists %d records, want Harbour Watch's alone (%v)", len(res.Records), err)
		}
	}
	_, _, a9 := testProfile(t, 1, pa, 9, "Night Desk", "back")
	if _, err := r.c.PutProfile(ctx, a9); httpStatus(err) != http.StatusConflict {
		t.Errorf("a profile after its withdrawal: %v, want 409", err)
	}
	if rec, err := r.c.Profile(ctx, sk.Public()); err != nil || !rec.Withdrawn {
		t.Errorf("Profile = %v, %v", rec, err)
	}
	recs, _, err := r.c.ProfilesOf(ctx, pb)
	if err != nil || len(recs) != 1 || recs[0].Name != "Harbour Watch" {
		t.Errorf("ProfilesOf = %v, %v", recs, err)
	}

	// The index survives a restart: it is kept in the relay's store.
	r2 := NewServer(r.st, Config{Directory: true, Logger: r.srv.log})
	r2.dir.mu.Lock()
	err = r2.loadDirectory(ctx)
	n, withdrawn := len(r2.dir.recs), r2.dir.recs[sk.Public()].Withdrawn
	r2.dir.mu.Unlock()
	if err != nil || n != 2 || !withdrawn {
		t.Errorf("reloaded %d records (withdrawn %v), %v", n, withdrawn, err)
	}

	// No opt-in, no listing (records and knocks are still taken).
	off := newTestRelay(t, be, Config{})
	if _, err := off.c.PutProfile(ctx, b1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := off.c.Directory(ctx, "harbour", 0); httpStatus(err) != http.StatusNotFound {
		t.Errorf("a relay without a directory answered %v, want 404", err)
	}
}

// TestKnockLimits: a knock reaches only a live profile, needs its proof of
// work, is one size, and an address sends a few an hour; what the relay
// stores is the sealed box alone, in the profile's knock topic.
func TestKnockLimits(t *testing.T) { forEachStore(t, testKnockLimits) }

func testKnockLimits(t *testing.T, be backend) {
	ctx := context.Background()
	r := newTestRelay(t, be, Config{KnockWork: 8, KnocksPerHour: 2})
	psk, intake, rec := testProfile(t, 1, event.ID{1}, 1, "Night Desk", "")
	msk, err := identity.SigningKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	mkem, _ := identity.KEMPrivateKeyFromBytes(bytes.Repeat([]byte{8}, 32))
	k := &profile.Knock{Pursuance: event.ID{1}, Profile: psk.Public(), Member: msk.Public(), Name: "Dana", KEM: mkem.Public(), Message: "I translate Farsi."}
	box, _, err := k.Seal(msk, intake.Public())
	if err != nil {
		t.Fatal(err)
	}
	stamp, err := profile.Stamp(ctx, psk.Public(), box, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.c.Knock(ctx, psk.Public(), stamp, box); httpStatus(err) != http.StatusNotFound {
		t.Errorf("a knock on an unknown profile: %v, want 404", err)
	}
	if _, err := r.c.PutProfile(ctx, rec); err != nil {
		t.Fatal(err)
	}
	var weak []byte
	for n := uint64(0); ; n++ {
		weak = []byte{0, 0, 0, 0, 0, 0, byte(n >> 8), byte(n)}
		if !profile.CheckStamp(psk.Public(), box, weak, 8) {
			break
		}
	}
	if err := r.c.Knock(ctx, psk.Public(), weak, box); httpStatus(err) != http.StatusForbidden {
		t.Errorf("a knock without its work: %v, want 403", err)
	}
	if err := r.c.Knock(ctx, psk.Public(), stamp, box); err != nil {
		t.Fatal(err)
	}
	res, err := r.c.Read(ctx, keys.KnockTopic(psk.Public()), 0, 10)
	if err != nil || len(res.Entries) != 1 || !bytes.Equal(res.Entries[0].Envelope, box) {
		t.Fatalf("the knock topic holds %v, %v", res.Entries, err)
	}
	pub := msk.Public()
	for _, s := range [][]byte{[]byte("Dana"), []byte("Farsi"), pub[:]} {
		if bytes.Contains(res.Entries[0].Envelope, s) {
			t.Errorf("the relay holds %q in the clear", s)
		}
	}
	// The second knock of the hour passes, the third is refused.
	if err := r.c.Knock(ctx, psk.Public(), stamp, box); err != nil {
		t.Fatal(err)
	}
	if err := r.c.Knock(ctx, psk.Public(), stamp, box); httpStatus(err) != http.StatusTooManyRequests {
		t.Errorf("a third knock in the hour: %v, want 429", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.ts.URL+"/v1/knocks/"+ProfileKeyHex(psk.Public()), bytes.NewReader(append(stamp, box[:100]...)))
	if resp, err := r.ts.Client().Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a short knock: %v %v, want 400", resp, err)
	}
	// Withdrawn: no more knocks.
	_, _, w := testProfile(t, 1, event.ID{1}, 2, "", "")
	if _, err := r.c.PutProfile(ctx, w); err != nil {
		t.Fatal(err)
	}
	r.srv.dir.knocks = nil // a fresh hour
	if err := r.c.Knock(ctx, psk.Public(), stamp, box); httpStatus(err) != http.StatusNotFound {
		t.Errorf("a knock on a withdrawn profile: %v, want 404", err)
	}
}

// TestDirectoryClientVerifies: a relay that answers forged records, a
// withdrawal in a listing, or a record of another pursuance than asked
// gets them dropped by the client, which lists only what verifies.
func TestDirectoryClientVerifies(t *testing.T) {
	ctx := context.Background()
	p := event.ID{1}
	_, _, good := testProfile(t, 1, p, 1, "Night Desk", "leaks")
	_, _, withdrawn := testProfile(t, 3, p, 2, "", "")
	_, _, other := testProfile(t, 5, event.ID{2}, 1, "Other", "leaks")
	forged := bytes.Clone(good)
	forged[len(forged)-1] ^= 1
	answer := Records{Records: [][]byte{forged, good, withdrawn, other, []byte("junk")}}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, answer)
	}))
	defer ts.Close()
	c := NewClient(ts.URL, ts.Client())
	recs, bad, err := c.Directory(ctx, "leaks", 0)
	if err != nil || len(recs) != 2 || bad != 3 || !bytes.Equal(recs[0].Bytes(), good) {
		t.Errorf("Directory = %d records, %d bad, %v; want the good one and the other pursuance's", len(recs), bad, err)
	}
	recs, bad, err = c.ProfilesOf(ctx, p)
	if err != nil || len(recs) != 2 || bad != 3 || recs[1].Withdrawn != true {
		t.Errorf("ProfilesOf = %d records, %d bad, %v; want the good one and the withdrawal", len(recs), bad, err)
	}
	answer.Records = make([][]byte, MaxDirectoryResults+1)
	for i := range answer.Records {
		answer.Records[i] = good
	}
	if _, _, err := c.Directory(ctx, "", 0); err == nil {
		t.Error("an answer over the limit was taken")
	}
}
