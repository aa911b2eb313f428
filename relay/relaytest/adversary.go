// Package relaytest holds an adversarial relay for tests: a real relay
// behind a wrapper that lies on command, the way a hostile or broken
// relay operator could.
package relaytest

import (
	"bytes"
	"crypto/rand"
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
	// DropAppends acknowledges appends and stores nothing.
	DropAppends
	// Reorder serves each page's entries in reverse order.
	Reorder
)

// Adversary wraps a relay handler. Set Mode (and Hide) at any time.
type Adversary struct {
	next http.Handler
	mu   sync.Mutex
	mode Mode
	hide func(relay.Entry) bool
}

// New wraps next.
func New(next http.Handler) *Adversary { return &Adversary{next: next} }

// Set changes the lie; hide chooses what Withhold leaves out.
func (a *Adversary) Set(m Mode, hide func(relay.Entry) bool) {
	a.mu.Lock()
	a.mode, a.hide = m, hide
	a.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (a *Adversary) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	mode, hide := a.mode, a.hide
	a.mu.Unlock()
	switch {
	case mode == DropAppends && r.Method == http.MethodPost:
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"stored":1,"duplicates":0,"last":1}`)
		return
	case mode == Honest || r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v1/topics/") || strings.HasSuffix(r.URL.Path, "/live"):
		a.next.ServeHTTP(w, r)
		return
	}
	// Forge and Replay invent entries; to keep cursors rising they serve
	// real entry c as 2c and an invented one after it as 2c+1.
	remap := mode == Forge || mode == Replay
	if remap {
		q := r.URL.Query()
		if v := q.Get("after"); v != "" {
			after, _ := strconv.ParseUint(v, 10, 64)
			q.Set("after", strconv.FormatUint(after/2, 10))
			r = r.Clone(r.Context())
			r.URL.RawQuery = q.Encode()
		}
	}
	rec := httptest.NewRecorder()
	a.next.ServeHTTP(rec, r)
	if remap {
		for _, h := range []string{relay.HeaderLast, relay.HeaderFirst} {
			v, _ := strconv.ParseUint(rec.Header().Get(h), 10, 64)
			rec.Header().Set(h, strconv.FormatUint(2*v+1, 10))
		}
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
	for _, e := range es {
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
		default:
			out = append(out, e)
		}
	}
	var body []byte
	for _, e := range out {
		body = relay.AppendEntry(body, e)
	}
	copyResponse(w, rec, body)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	w.Write(body)
}
