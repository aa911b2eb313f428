// Package relaytest holds an adversarial relay for tests: a real relay
// behind a wrapper that lies on command, the way a hostile or broken
// relay operator could, and whose data can be wiped or restored from a
// backup while it keeps its URL.
package relaytest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"github.com/pursuance/pursuance/relay"
)

// Mode is a lie the adversary tells.
type Mode int

// The lies. Do NOT reorder: tests name them by value in messages.
const (
	Honest Mode = iota
	// Tamper flips a bit in every envelope it serves.
	Tamper
	// Forge adds an envelope of random bytes after every entry it serves.
	Forge
	// Replay serves every entry twice, the copy under a new cursor.
	Replay
	// Withhold leaves out the entries Hide matches.
	Withhold
	// DropAppends acknowledges appends and stores nothing. Its answer is
	// a convincing one: the cursors the envelopes would have had.
	DropAppends
	// Reorder serves each page's entries in reverse order.
	Reorder
	// Relabel serves each entry under the cursor of the one before it in
	// the page (the first under the last's): every envelope is real, at
	// the wrong cursor.
	Relabel
	// Jump serves every cursor (and Last and First) JumpBy higher than it
	// is, as a relay that skipped numbers would.
	Jump
	// AlwaysMore answers every read with a full page: the real entries,
	// then random ones, with a Last always one page further on.
	AlwaysMore
	// Hang accepts requests and never answers, until the mode changes or
	// the client gives up.
	Hang
)

// JumpBy is how far Jump moves cursors.
const JumpBy = 1000

// Adversary wraps a relay handler. Set Mode (and Hide) at any time.
type Adversary struct {
	mu     sync.Mutex
	next   http.Handler
	mode   Mode
	hide   func(relay.Entry) bool
	change chan struct{} // closed when the mode changes (ends hangs)
}

// New wraps next.
func New(next http.Handler) *Adversary {
	return &Adversary{next: next, change: make(chan struct{})}
}

// Set changes the lie; hide chooses what Withhold leaves out.
func (a *Adversary) Set(m Mode, hide func(relay.Entry) bool) {
	a.mu.Lock()
	a.mode, a.hide = m, hide
	close(a.change)
	a.change = make(chan struct{})
	a.mu.Unlock()
}

// swap serves another relay from now on.
func (a *Adversary) swap(next http.Handler) {
	a.mu.Lock()
	a.next = next
	a.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (a *Adversary) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	mode, hide, next, change := a.mode, a.hide, a.next, a.change
	a.mu.Unlock()
	read := r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/topics/") && !strings.HasSuffix(r.URL.Path, "/live")
	switch {
	case mode == Hang:
		select {
		case <-r.Context().Done():
		case <-change:
		}
		return
	case mode == DropAppends && r.Method == http.MethodPost:
		dropAppend(w, r, next)
		return
	case mode == Honest || !read:
		next.ServeHTTP(w, r)
		return
	}
	// Forge and Replay invent entries; to keep cursors rising they serve
	// real entry c as 2c and an invented one after it as 2c+1. Jump serves
	// c as c+JumpBy.
	q := r.URL.Query()
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 {
		limit = relay.DefaultLimit
	}
	remap := mode == Forge || mode == Replay
	if v := q.Get("after"); v != "" && (remap || mode == Jump) {
		switch {
		case remap:
			q.Set("after", strconv.FormatUint(after/2, 10))
		case after >= JumpBy:
			q.Set("after", strconv.FormatUint(after-JumpBy, 10))
		default:
			q.Set("after", "0")
		}
		r = r.Clone(r.Context())
		r.URL.RawQuery = q.Encode()
	}
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	for _, h := range []string{relay.HeaderLast, relay.HeaderFirst} {
		v, _ := strconv.ParseUint(rec.Header().Get(h), 10, 64)
		switch {
		case remap:
			v = 2*v + 1
		case mode == Jump:
			v += JumpBy
		}
		rec.Header().Set(h, strconv.FormatUint(v, 10))
	}
	if rec.Code != http.StatusOK {
		copyResponse(w, rec, rec.Body.Bytes())
		return
	}
	es, err := relay.DecodeEntries(rec.Body.Bytes())
	if err != nil {
		copyResponse(w, rec, rec.Body.Bytes())
		return
	}
	var out []relay.Entry
	for i, e := range es {
		env := bytes.Clone(e.Envelope)
		switch mode {
		case Tamper:
			env[len(env)/2] ^= 0x20
			out = append(out, relay.Entry{Cursor: e.Cursor, Envelope: env})
		case Forge:
			fake := make([]byte, len(env))
			rand.Read(fake)
			out = append(out, relay.Entry{Cursor: 2 * e.Cursor, Envelope: env}, relay.Entry{Cursor: 2*e.Cursor + 1, Envelope: fake})
		case Replay:
			out = append(out, relay.Entry{Cursor: 2 * e.Cursor, Envelope: env}, relay.Entry{Cursor: 2*e.Cursor + 1, Envelope: env})
		case Withhold:
			if hide == nil || !hide(e) {
				out = append(out, e)
			}
		case Reorder:
			out = append([]relay.Entry{e}, out...)
		case Relabel:
			at := es[(i+len(es)-1)%len(es)].Cursor
			out = append(out, relay.Entry{Cursor: at, Envelope: env})
		case Jump:
			out = append(out, relay.Entry{Cursor: e.Cursor + JumpBy, Envelope: env})
		default:
			out = append(out, e)
		}
	}
	if mode == Relabel && len(out) > 1 {
		// Keep cursors rising: the first, relabelled with the last's
		// cursor, goes to the end.
		out = append(out[1:], out[0])
	}
	if mode == AlwaysMore {
		c := after
		if len(out) > 0 {
			c = out[len(out)-1].Cursor
		}
		for len(out) < limit {
			c++
			fake := make([]byte, 1024)
			rand.Read(fake)
			out = append(out, relay.Entry{Cursor: c, Envelope: fake})
		}
		rec.Header().Set(relay.HeaderLast, strconv.FormatUint(c+uint64(limit), 10))
	}
	var body []byte
	for _, e := range out {
		body = relay.AppendEntry(body, e)
	}
	copyResponse(w, rec, body)
}

// dropAppend answers an append as the relay would have, storing nothing:
// the cursors after the topic's last one.
func dropAppend(w http.ResponseWriter, r *http.Request, next http.Handler) {
	body, _ := io.ReadAll(r.Body)
	topic, err := relay.ParseTopic(strings.TrimPrefix(r.URL.Path, "/v1/topics/"))
	envs, derr := relay.DecodeAppend(topic, body)
	if err != nil || derr != nil {
		// Not worth lying about: let the relay refuse it.
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r2)
		return
	}
	probe := httptest.NewRequest(http.MethodGet, "/v1/topics/"+relay.TopicHex(topic)+"?limit=1", nil)
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, probe)
	last, _ := strconv.ParseUint(rec.Header().Get(relay.HeaderLast), 10, 64)
	res := relay.AppendResult{Stored: len(envs)}
	for range envs {
		last++
		res.Cursors = append(res.Cursors, last)
	}
	res.Last = last
	w.Header().Set(relay.HeaderInstance, rec.Header().Get(relay.HeaderInstance))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	w.Write(body)
}
