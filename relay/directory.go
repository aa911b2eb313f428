package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/profile"
)

// Public profiles, the directory and join requests (docs/directory.md,
// docs/relay-protocol.md "Profiles, directory and knocks"). A relay keeps
// the signed profile records it is given, newest per profile key, in the
// directory topic of its own store, and an index of them in memory; it
// lists them only when its operator opted in (Config.Directory). It takes
// join requests ("knocks") for the live profiles it holds into the
// profile's knock topic, which only its knock endpoint writes: sealed
// boxes of one size, each with a proof of work, a few an hour per address.

// Limits of the directory and of knocks. A relay checks each.
const (
	MaxQuery            = 200 // bytes of a directory query
	MaxQueryWords       = 8
	MaxDirectoryResults = 50 // records in one directory answer
	DefaultDirResults   = 20
	MaxClaimResults     = 16 // records in one answer by pursuance
	// DefaultMaxProfiles bounds the profile keys a relay holds.
	DefaultMaxProfiles = 10_000
	// DefaultKnockWork is the proof of work (leading zero bits) a relay
	// asks of each knock: about 65,000 hashes, a few tens of ms.
	DefaultKnockWork = 16
	// DefaultKnocksPerHour bounds the knocks one client address sends.
	DefaultKnocksPerHour = 20
	// DefaultKnockQuota bounds the bytes of one profile's knock topic
	// (256 knocks); the intake role reads and answers them, and
	// retention drops old ones.
	DefaultKnockQuota = 256 * profile.KnockSize
	maxKnockAddrs     = 1 << 16 // addresses whose knock quota is tracked
)

// labelDirectoryTopic names the topic of a relay's store that keeps
// profile records. No topic key hashes to it (those hash under another
// label), so no append reaches it.
const labelDirectoryTopic = "pursuance/v1/directory-topic"

// DirectoryTopic is the topic of a relay's own store where it keeps the
// profile records it holds.
var DirectoryTopic = keys.Topic(sha256.Sum256([]byte(labelDirectoryTopic + "\x00")))

// directory is a relay's index of the profile records it holds.
type directory struct {
	mu     sync.Mutex
	loaded bool
	recs   map[identity.PublicKey]*profile.Record
	knocks map[netip.Addr]*quota // knocks per client address
}

// quota is an hourly allowance that refills continuously.
type quota struct {
	left float64
	at   time.Time
}

func (q *quota) take(now time.Time, perHour float64) bool {
	q.left = min(perHour, q.left+now.Sub(q.at).Hours()*perHour)
	q.at = now
	if q.left < 1 {
		return false
	}
	q.left--
	return true
}

// loadDirectory reads the directory topic into the index, once. The
// caller holds d.mu.
func (s *Server) loadDirectory(ctx context.Context) error {
	d := &s.dir
	if d.loaded {
		return nil
	}
	recs := map[identity.PublicKey]*profile.Record{}
	var after uint64
	for {
		page, err := s.st.Read(ctx, DirectoryTopic, after, MaxReadLimit, readPageBytes)
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			after = e.Cursor
			r, err := profile.Parse(e.Envelope)
			if err != nil {
				continue // kept by an older version, or damaged: not listed
			}
			if old := recs[r.Key]; old == nil || r.Supersedes(old) {
				recs[r.Key] = r
			}
		}
		if len(page.Entries) == 0 || after >= page.Last {
			break
		}
	}
	d.recs, d.loaded = recs, true
	return nil
}

// withDirectory runs fn with the index loaded and locked; on false it has
// answered.
func (s *Server) withDirectory(w http.ResponseWriter, r *http.Request, fn func(map[identity.PublicKey]*profile.Record)) bool {
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	if err := s.loadDirectory(r.Context()); err != nil {
		s.fail(w, r, http.StatusInternalServerError, "store", err)
		return false
	}
	fn(s.dir.recs)
	return true
}

// Records is the JSON answer of the directory and of a lookup by
// pursuance: signed records, which the client verifies itself.
type Records struct {
	Records [][]byte `json:"records"`
}

func (s *Server) putProfile(w http.ResponseWriter, r *http.Request) {
	key, err := profile.ParseProfileKey(r.PathValue("key"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "profile", err)
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, profile.MaxRecordSize+1))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "profile", errors.New("the record did not arrive whole; retry"))
		return
	}
	rec, err := profile.Parse(b)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "profile", err)
		return
	}
	if rec.Key != key {
		s.fail(w, r, http.StatusBadRequest, "profile", errors.New("the record is signed by another key than the path names"))
		return
	}
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	if err := s.loadDirectory(r.Context()); err != nil {
		s.fail(w, r, http.StatusInternalServerError, "store", err)
		return
	}
	old := s.dir.recs[key]
	switch {
	case old != nil && bytes.Equal(old.Bytes(), b):
		writeJSON(w, http.StatusOK, struct {
			Stored bool `json:"stored"`
		}{false})
		return
	case old != nil && !rec.Supersedes(old):
		what := fmt.Sprintf("version %d", old.Version)
		if old.Withdrawn {
			what = "its withdrawal, which is final"
		}
		s.fail(w, r, http.StatusConflict, "profile_stale", fmt.Errorf("this relay holds a newer record under this key (%s): publish a higher version", what))
		return
	case old == nil && len(s.dir.recs) >= s.cfg.MaxProfiles:
		s.fail(w, r, http.StatusInsufficientStorage, "profiles_full", fmt.Errorf("this relay holds %d profiles, its operator's limit: publish on another relay", s.cfg.MaxProfiles))
		return
	}
	if old == nil {
		if a, known := s.requestAddr(r); known {
			if ok, wait := s.clients.newTopic(a, s.now()); !ok {
				secs := int(wait/time.Second) + 1
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				s.fail(w, r, http.StatusTooManyRequests, "new_topics", fmt.Errorf("over %g new topics or profiles an hour from your address; retry in %d s", s.cfg.NewTopicsPerHour, secs))
				return
			}
		}
	}
	if _, err := s.st.Append(r.Context(), DirectoryTopic, [][]byte{b}); err != nil {
		s.fail(w, r, http.StatusInternalServerError, "store", err)
		return
	}
	s.dir.recs[key] = rec
	writeJSON(w, http.StatusOK, struct {
		Stored bool `json:"stored"`
	}{true})
}

func (s *Server) getProfile(w http.ResponseWriter, r *http.Request) {
	key, err := profile.ParseProfileKey(r.PathValue("key"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "profile", err)
		return
	}
	var rec *profile.Record
	if !s.withDirectory(w, r, func(m map[identity.PublicKey]*profile.Record) { rec = m[key] }) {
		return
	}
	if rec == nil {
		s.fail(w, r, http.StatusNotFound, "no_profile", errors.New("this relay holds no profile under this key"))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(rec.Bytes())
}

// profilesOf answers the records that claim a pursuance: live ones first,
// then withdrawals, at most MaxClaimResults. A claim is only a claim: the
// pursuance's own log says which key is its (docs/directory.md).
func (s *Server) profilesOf(w http.ResponseWriter, r *http.Request) {
	p, err := event.ParseID(r.URL.Query().Get("pursuance"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "params", errors.New("name the pursuance: ?pursuance=ID (64 hex digits)"))
		return
	}
	var found []*profile.Record
	if !s.withDirectory(w, r, func(m map[identity.PublicKey]*profile.Record) {
		for _, rec := range m {
			if rec.Pursuance == p {
				found = append(found, rec)
			}
		}
	}) {
		return
	}
	writeJSON(w, http.StatusOK, recordsOf(found, MaxClaimResults))
}

// recordsOf orders records (live first, then by name and key) and keeps
// the first n.
func recordsOf(recs []*profile.Record, n int) Records {
	slices.SortFunc(recs, func(a, b *profile.Record) int {
		if a.Withdrawn != b.Withdrawn {
			if a.Withdrawn {
				return 1
			}
			return -1
		}
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return bytes.Compare(a.Key[:], b.Key[:])
	})
	out := Records{Records: [][]byte{}}
	for _, rec := range recs[:min(n, len(recs))] {
		out.Records = append(out.Records, rec.Bytes())
	}
	return out
}

// ParseQuery checks a directory query and returns its words.
func ParseQuery(q string) ([]string, error) {
	if len(q) > MaxQuery {
		return nil, fmt.Errorf("a query of %d bytes, over the limit of %d: use fewer words", len(q), MaxQuery)
	}
	words := profile.Words(q)
	if len(words) > MaxQueryWords {
		return nil, fmt.Errorf("a query of %d words, over the limit of %d", len(words), MaxQueryWords)
	}
	return words, nil
}

// matches reports whether every query word begins a word of the record.
func matches(rec []string, query []string) bool {
	for _, q := range query {
		if !slices.ContainsFunc(rec, func(w string) bool { return strings.HasPrefix(w, q) }) {
			return false
		}
	}
	return true
}

func (s *Server) directoryHandler(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.Directory {
		s.fail(w, r, http.StatusNotFound, "no_directory", errors.New("this relay offers no directory (its operator has not enabled it)"))
		return
	}
	words, err := ParseQuery(r.URL.Query().Get("q"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "params", err)
		return
	}
	limit := DefaultDirResults
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > MaxDirectoryResults {
			s.fail(w, r, http.StatusBadRequest, "params", fmt.Errorf("limit must be 1 to %d", MaxDirectoryResults))
			return
		}
	}
	var found []*profile.Record
	if !s.withDirectory(w, r, func(m map[identity.PublicKey]*profile.Record) {
		for _, rec := range m {
			if !rec.Withdrawn && matches(rec.Words(), words) {
				found = append(found, rec)
			}
		}
	}) {
		return
	}
	writeJSON(w, http.StatusOK, recordsOf(found, limit))
}

// knockHandler takes a join request for a live profile this relay holds:
// a proof of work (profile.StampSize) and the sealed request
// (profile.KnockSize), stored in the profile's knock topic.
func (s *Server) knockHandler(w http.ResponseWriter, r *http.Request) {
	key, err := profile.ParseProfileKey(r.PathValue("key"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "knock", err)
		return
	}
	const size = profile.StampSize + profile.KnockSize
	b, err := io.ReadAll(io.LimitReader(r.Body, size+1))
	if err != nil || len(b) != size {
		s.fail(w, r, http.StatusBadRequest, "knock", fmt.Errorf("a knock is %d bytes (a %d-byte stamp and a %d-byte sealed request)", size, profile.StampSize, profile.KnockSize))
		return
	}
	stamp, box := b[:profile.StampSize], b[profile.StampSize:]
	var live bool
	if !s.withDirectory(w, r, func(m map[identity.PublicKey]*profile.Record) {
		live = m[key] != nil && !m[key].Withdrawn
	}) {
		return
	}
	if !live {
		s.fail(w, r, http.StatusNotFound, "no_profile", errors.New("this relay holds no live profile under this key (withdrawn, or never published here)"))
		return
	}
	if !profile.CheckStamp(key, box, stamp, s.cfg.KnockWork) {
		s.fail(w, r, http.StatusForbidden, "knock_work", fmt.Errorf("the knock's proof of work is short of %d bits", s.cfg.KnockWork))
		return
	}
	if a, known := s.requestAddr(r); known && !s.takeKnock(a) {
		w.Header().Set("Retry-After", "3600")
		s.fail(w, r, http.StatusTooManyRequests, "knocks_per_addr", fmt.Errorf("over %g knocks an hour from your address; retry later", s.cfg.KnocksPerHour))
		return
	}
	topic := keys.KnockTopic(key)
	u, err := s.st.Usage(r.Context(), topic)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "store", err)
		return
	}
	if u.TopicBytes+profile.KnockSize > s.cfg.KnockQuota {
		s.fail(w, r, http.StatusInsufficientStorage, "knock_quota", fmt.Errorf("this profile's mailbox is full (%d bytes, this relay's limit); try later or another of its relays", s.cfg.KnockQuota))
		return
	}
	if !s.checkQuotas(w, r, topic, [][]byte{box}) {
		return
	}
	res, err := s.st.Append(r.Context(), topic, [][]byte{box})
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "store", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// takeKnock takes one of address a's knocks for this hour.
func (s *Server) takeKnock(a netip.Addr) bool {
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	now := s.now()
	k := clientKey(a)
	if s.dir.knocks == nil || len(s.dir.knocks) >= maxKnockAddrs {
		// Bounded memory: forgetting every quota at once lets each address
		// send one hour's worth again, no more.
		s.dir.knocks = map[netip.Addr]*quota{}
	}
	q := s.dir.knocks[k]
	if q == nil {
		q = &quota{left: s.cfg.KnocksPerHour, at: now}
		s.dir.knocks[k] = q
	}
	return q.take(now, s.cfg.KnocksPerHour)
}

// ProfileKeyHex is a profile key's hex form, as in URLs.
func ProfileKeyHex(k identity.PublicKey) string { return hex.EncodeToString(k[:]) }
