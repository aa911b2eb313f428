package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Who may use the UI (docs/web.md, "Who may use it"): every request but
// the login page and the static assets needs a secret that only the
// member's own account can obtain.
//
//   - The login token rides in the fragment of the login URL that `up`
//     prints and writes to a 0600 file in the home; it works once. The
//     login page's script posts it to POST /login, which answers with a
//     new session: an HttpOnly, SameSite=Strict cookie and a session
//     token the page keeps in its origin's storage and sends in
//     TokenHeader. A new login token takes the place of the used one.
//   - The page (GET /) needs the session's cookie; every other route
//     needs the cookie and the session's token together, or the bearer
//     token (Authorization: Bearer …) that scripts read from the file.
//
// Cookies are shared by every port of 127.0.0.1, so another local user's
// server on another port can be handed the cookie by the member's
// browser; the token, kept per origin (scheme, host and port), is what it
// cannot get.

// TokenHeader carries the session's token on every API request.
const TokenHeader = "X-Pursuance-Token"

// Access says what a route asks of a request.
type Access int

const (
	// NeedsSession: a session's cookie and token, or the bearer token.
	NeedsSession Access = iota
	// NeedsCookie: a session's cookie (or the bearer token); the page,
	// which a browser loads without custom headers. It holds no data.
	NeedsCookie
	// Public: anyone who names the right host; nothing secret is served.
	Public
)

// Route is one of the server's routes: a net/http pattern and its access.
type Route struct {
	Pattern string
	Access  Access
}

const (
	secretBytes = 32 // of every token and cookie: 256 bits, beyond guessing
	// maxSessions bounds the browsers logged in at once; a login beyond
	// it ends the oldest session.
	maxSessions = 32
	// sessionCookieAge keeps a browser logged in across its restarts
	// while the node runs; sessions end with the node anyway.
	sessionCookieAge = 30 * 24 * time.Hour
	maxLoginBody     = 4 << 10
)

// session is a logged-in browser.
type session struct {
	key   [32]byte // SHA-256 of its cookie
	token string   // sent in TokenHeader
}

// gate holds the secrets of a run. They live only in memory: a new run
// (a restart, or after a crash) makes new ones, and the old ones open
// nothing.
type gate struct {
	mu       sync.Mutex
	login    string     // the single-use login token in force
	bearer   string     // for scripts, from the file
	sessions []*session // oldest first
	loginMu  sync.Mutex // serializes logins, and so the LoginChanged calls
}

func newSecret() (string, error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// LoginURL returns the login link in force: http://HOST/login#TOKEN. It
// works once; then a new one is in force (see LoginChanged).
func (s *Server) LoginURL() string {
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	return "http://" + s.host + "/login#" + s.gate.login
}

// Bearer returns the run's bearer token, for scripts: a request with
// "Authorization: Bearer TOKEN" needs no session.
func (s *Server) Bearer() string { return s.gate.bearer }

// Routes returns the server's routes, sorted by pattern.
func (s *Server) Routes() []Route {
	var out []Route
	for p, a := range s.routes {
		out = append(out, Route{p, a})
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Pattern, b.Pattern) })
	return out
}

// cookieName is the session cookie's name, which carries the port:
// browsers send the cookies of 127.0.0.1 to every port, and two members'
// nodes on one machine must not overwrite each other's.
func (s *Server) cookieName() string {
	_, port, _ := net.SplitHostPort(s.host)
	return "pursuance_session_" + port
}

// allowed reports whether r may use a route of access acc.
func (s *Server) allowed(r *http.Request, acc Access) bool {
	if acc == Public {
		return true
	}
	if h := r.Header.Get("Authorization"); h != "" {
		b, ok := strings.CutPrefix(h, "Bearer ")
		return ok && equal(b, s.gate.bearer)
	}
	c, err := r.Cookie(s.cookieName())
	if err != nil {
		return false
	}
	key := sha256.Sum256([]byte(c.Value))
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	for _, se := range s.gate.sessions {
		if subtle.ConstantTimeCompare(se.key[:], key[:]) == 1 {
			return acc == NeedsCookie || equal(r.Header.Get(TokenHeader), se.token)
		}
	}
	return false
}

// errLoggedOut is what a request without a session is told.
var errLoggedOut = errors.New("not logged in: open the login link that `pursuance up` printed, or run `pursuance ui` (as the user that runs the node) for a new one")

// refuse answers a request that lacks a session: the page explains how to
// log in, anything else gets a one-line JSON error. Neither holds data.
func (s *Server) refuse(w http.ResponseWriter, acc Access) {
	if acc == NeedsCookie {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write(s.loginHTML)
		return
	}
	writeErr(w, http.StatusUnauthorized, errLoggedOut)
}

// loginPage serves the page that logs in with the token in its URL's
// fragment, which browsers never send to a server.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(s.loginHTML)
}

// login exchanges the login token in force for a new session, and puts a
// new login token in force.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Token string `json:"token"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err := dec.Decode(&in); err != nil {
		writeErr(w, http.StatusBadRequest, errors.New(`bad request body: send {"token": "…"}, the part of the login link after #`))
		return
	}
	g := &s.gate
	g.loginMu.Lock()
	defer g.loginMu.Unlock()
	g.mu.Lock()
	ok := equal(in.Token, g.login)
	g.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusUnauthorized, errors.New("this login link was used already, or is from an earlier run of the node: run `pursuance ui` (as the user that runs the node) for a new one"))
		return
	}
	login, err1 := newSecret()
	cookie, err2 := newSecret()
	token, err3 := newSecret()
	if err := errors.Join(err1, err2, err3); err != nil {
		writeErr(w, http.StatusInternalServerError, errors.New("no randomness for a session; try again"))
		return
	}
	g.mu.Lock()
	g.login = login
	if len(g.sessions) >= maxSessions {
		g.sessions = slices.Delete(g.sessions, 0, len(g.sessions)-maxSessions+1)
	}
	g.sessions = append(g.sessions, &session{key: sha256.Sum256([]byte(cookie)), token: token})
	g.mu.Unlock()
	if s.LoginChanged != nil {
		s.LoginChanged(s.LoginURL())
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: cookie, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionCookieAge / time.Second)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]string{"token": token})
}
