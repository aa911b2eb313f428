package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/profile"
	"github.com/pursuance/pursuance/relay"
)

// tapRelay is a test relay with a directory whose every request body is
// kept: what left the members' machines for it.
func tapRelay(t *testing.T) (url string, bodies func() [][]byte) {
	t.Helper()
	st, err := relay.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	h := relay.NewServer(st, relay.Config{Directory: true, KnockWork: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler()
	var mu sync.Mutex
	var seen [][]byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, []byte(r.URL.String()), b)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ts.Close()
		st.Close()
	})
	return ts.URL, func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// TestKnockWireRevealsNothing: Erin publishes Cell's profile; Gus finds it
// in the relay's directory, knocks (refusing to choose between Cell's
// profile and a forger's claiming Cell), Erin invites him and he joins.
// Nothing the relay received shows Gus's name, member ID or KEM key, his
// message, the invite code or the answer's message.
func TestKnockWireRevealsNothing(t *testing.T) {
	ctx := context.Background()
	url, bodies := tapRelay(t)
	erin, gus := newMember(t, "Erin"), newMember(t, "Gustavo Tarantino")
	c, _ := charter.Template("desk")
	c.Name = "Cell"
	b, err := erin.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := erin.SetRelays(ctx, b, []string{url}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	v, res, err := erin.ProfilePublish(ctx, b, ProfileDraft{Mission: "We verify leaked documents.", IntakeRole: "editor"}, DoOptions{})
	if err != nil || !res.Accepted || res.SyncErr != nil || v.Version != 1 {
		t.Fatalf("publish: %+v %+v %v", v, res, err)
	}
	mustSync(t, erin, b)
	found, err := gus.Discover(ctx, url, "leak")
	if err != nil || len(found) != 1 || found[0].Pursuance != b || found[0].Key != v.Key {
		t.Fatalf("Discover = %+v, %v", found, err)
	}

	// A forger claims Cell under its own key: Gus is told to choose.
	fsk, _ := identity.NewSigningKey(rand.Reader)
	fkem, _ := identity.NewKEMPrivateKey(rand.Reader)
	forged := &profile.Record{Key: fsk.Public(), Pursuance: b, Version: 1, Name: "Cell", Mission: "Send us your secrets.", Intake: fkem.Public()}
	raw, err := forged.Sign(fsk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := relay.NewClient(url, nil).PutProfile(ctx, raw); err != nil {
		t.Fatal(err)
	}
	const msg = "I translate Farsi; Dana sent me."
	if _, err := gus.Knock(ctx, b, url, msg, KnockOptions{}); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("a knock with two claims: %v, want ErrAmbiguous", err)
	}
	kv, err := gus.Knock(ctx, b, url, msg, KnockOptions{Profile: v.Key})
	if err != nil {
		t.Fatal(err)
	}
	if as, err := gus.Answers(ctx, false); err != nil || len(as) != 1 || as[0].Status != StatusWaiting {
		t.Fatalf("Answers before = %+v, %v", as, err)
	}

	reqs, err := erin.Requests(ctx, b)
	if err != nil || len(reqs) != 1 || reqs[0].Request != kv.Request || reqs[0].Name != "Gustavo Tarantino" || reqs[0].Message != msg || reqs[0].Member != gus.id.ID() {
		t.Fatalf("Requests = %+v, %v", reqs, err)
	}
	ans, err := erin.RequestAnswer(ctx, b, kv.Request.String()[:8], AnswerDraft{Invite: true, Role: "researcher", Message: "Welcome aboard, translator."}, DoOptions{})
	if err != nil || ans.Status != StatusInvited {
		t.Fatalf("answer: %+v %v", ans, err)
	}
	mustSync(t, erin, b)
	as, err := gus.Answers(ctx, false)
	if err != nil || len(as) != 1 || as[0].Status != StatusInvited || as[0].Code != ans.Code {
		t.Fatalf("Answers after = %+v, %v", as, err)
	}
	code, err := ParseInviteCode(as[0].Code)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gus.Join(ctx, code, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, erin, b)
	s, err := erin.State(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := s.Member(gus.id.ID()); !ok || m.Roles[0] != "researcher" {
		t.Fatalf("Gus is not a researcher of Cell: %+v", m)
	}

	id := gus.id.ID()
	secrets := map[string][]byte{
		"the requester's name":    []byte("Gustavo"),
		"the message":             []byte("Farsi"),
		"the requester's ID":      id[:],
		"the requester's KEM key": gus.pub.KEM.Bytes()[:64],
		"the invite code":         []byte(ans.Code[:40]),
		"the invite's secret":     code.Key.Seed(),
		"the answer's message":    []byte("translator"),
	}
	for _, body := range bodies() {
		for what, s := range secrets {
			if bytes.Contains(body, s) || bytes.Contains([]byte(strings.ToLower(string(body))), bytes.ToLower(s)) {
				t.Errorf("the relay received %s", what)
			}
		}
	}
}

// TestKnockThroughDial: directory queries and knocks go through the
// node's Dial (so --tor covers them), with the relay's host name as the
// URL has it, under isolation strings apart from every pursuance's.
func TestKnockThroughDial(t *testing.T) {
	noLocalDNS(t)
	ctx := context.Background()
	url, _ := tapRelay(t)
	const name = "relay-k.pursuance.test"
	d := &namedDialer{names: map[string]string{name + ":80": strings.TrimPrefix(url, "http://")}}
	erin, gus := newMember(t, "Erin"), newMember(t, "Gus")
	erin.opts.Dial, gus.opts.Dial = d.dial, d.dial
	c, _ := charter.Template("desk")
	b, err := erin.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := erin.SetRelays(ctx, b, []string{"http://" + name}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, res, err := erin.ProfilePublish(ctx, b, ProfileDraft{Mission: "leaks", IntakeRole: "editor"}, DoOptions{}); err != nil || res.SyncErr != nil {
		t.Fatalf("publish: %v %v", err, res.SyncErr)
	}
	if found, err := gus.Discover(ctx, "http://"+name, "leaks"); err != nil || len(found) != 1 {
		t.Fatalf("Discover = %v, %v", found, err)
	}
	if _, err := gus.Knock(ctx, b, "http://"+name, "hello", KnockOptions{}); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	for _, c := range d.calls {
		if c.addr != name+":80" {
			t.Errorf("a connection to %q, not the URL's host name", c.addr)
		}
	}
	d.mu.Unlock()
	isos := d.isolations(name + ":80")
	dir, knock := gus.outsideIsolation("directory", []byte("http://"+name)), gus.outsideIsolation("knock", b[:])
	if isos[dir] == 0 || isos[knock] == 0 || dir == knock || knock == gus.isolation(b) || isos[erin.isolation(b)] == 0 {
		t.Errorf("isolation strings used %v; want the directory's (%s), the knock's (%s) and erin's pursuance's, all different", isos, dir, knock)
	}
}

// TestAnswerOnlyOnOwnRelays: a request that names relays of its own
// choosing gets no answer there: the intake member's node never connects
// where a request alone says.
func TestAnswerOnlyOnOwnRelays(t *testing.T) {
	ctx := context.Background()
	url, _ := tapRelay(t)
	erin, gus := newMember(t, "Erin"), newMember(t, "Gus")
	c, _ := charter.Template("desk")
	b, err := erin.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := erin.SetRelays(ctx, b, []string{url}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := erin.ProfilePublish(ctx, b, ProfileDraft{Mission: "leaks", IntakeRole: "editor"}, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := erin.State(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := s.Profile()
	// Gus's request names a listener of his as where to answer.
	var hits sync.Map
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Store(r.URL.Path, true) }))
	defer elsewhere.Close()
	k := &profile.Knock{Pursuance: b, Profile: in.Key, Member: gus.id.ID(), Name: "Gus", KEM: gus.pub.KEM, Message: "hi", Relays: []string{elsewhere.URL}}
	box, id, err := k.Seal(gus.id.SigningKey(), in.Record.Intake)
	if err != nil {
		t.Fatal(err)
	}
	stamp, _ := profile.Stamp(ctx, in.Key, box, 4)
	if err := relay.NewClient(url, nil).Knock(ctx, in.Key, stamp, box); err != nil {
		t.Fatal(err)
	}
	_, err = erin.RequestAnswer(ctx, b, id.String(), AnswerDraft{}, DoOptions{})
	if err == nil || !strings.Contains(err.Error(), "names no relay") {
		t.Errorf("answering on the requester's relay: %v", err)
	}
	hits.Range(func(k, _ any) bool {
		t.Errorf("erin's node connected to the request's relay: %v", k)
		return true
	})
}

// TestProfileUnderQuorum: where the charter puts publish-profile under a
// majority, the profile is proposed and reaches no relay; the approval
// that carries it gives the relays its record.
func TestProfileUnderQuorum(t *testing.T) {
	ctx := context.Background()
	url, _ := tapRelay(t)
	alice, bob, gus := newMember(t, "Alice"), newMember(t, "Bob"), newMember(t, "Gus")
	c, err := charter.Parse([]byte(`name: Profile quorum
roles:
  - name: member
    can:
      invite: [member]
      comment: any
      rotate-keys: true
      manage-relays: true
      publish-profile: true
quorum:
  publish-profile: {approvals: majority, of: member}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := alice.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SetRelays(ctx, p, []string{url}, nil, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	inv, _, err := alice.Invite(ctx, p, "member", 0, 1, DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	if _, err := bob.Join(ctx, inv, DoOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, alice, p)
	_, res, err := alice.ProfilePublish(ctx, p, ProfileDraft{Mission: "mutual aid", IntakeRole: "member"}, DoOptions{})
	if err != nil || !res.Proposed {
		t.Fatalf("publish under a quorum: %+v %v", res, err)
	}
	mustSync(t, alice, p)
	if found, err := gus.Discover(ctx, url, "mutual"); err != nil || len(found) != 0 {
		t.Fatalf("a proposed profile is listed: %v %v", found, err)
	}
	mustSync(t, bob, p)
	if _, _, err := bob.Approve(ctx, p, res.Event.ID(), DoOptions{}); err != nil {
		t.Fatal(err)
	}
	if found, err := gus.Discover(ctx, url, "mutual"); err != nil || len(found) != 1 || found[0].Pursuance != p {
		t.Fatalf("the carried profile is not listed: %v %v", found, err)
	}
}
