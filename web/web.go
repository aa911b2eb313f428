// Package web is the member's local web UI: a JSON API over the app
// service and a single page that uses it, served by `pursuance up` on
// 127.0.0.1. It answers only requests addressed to its own host and port
// (DNS rebinding); it shows and does nothing without a session, which only
// the single-use login link that `up` gives its own user opens (other
// users of the machine); and it changes nothing from another origin
// (cross-site requests). See auth.go and docs/web.md.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/state"
)

//go:embed assets
var assets embed.FS

// Server serves the UI and its API. Open opens the member's node, unlocked;
// the server closes it after each request, so the home is free between
// requests for the CLI and the node's sync.
type Server struct {
	Open func(context.Context) (*app.Node, error)
	// Status, when set, reports the node's sync, for the page's header.
	Status func() any
	// Changed, when set, is called after each request that changed
	// something, so that the node sends it to the relays at once.
	Changed func()
	// LoginChanged, when set, is called with the new login URL after a
	// login used the one in force, so that the owner's file holds one
	// that works. Calls come one at a time, in order.
	LoginChanged func(loginURL string)

	liveMu   sync.Mutex
	liveCh   chan struct{} // closed and replaced by Notify
	liveSeen uint64        // how many times Notify was called

	host      string // host:port requests must name
	gate      gate
	index     []byte // the page
	loginHTML []byte // the login page, also shown to a browser without a session
	mux       *http.ServeMux
	routes    map[string]Access // by pattern

	searchMu sync.Mutex
	searches searches // full-text indexes, in memory (search.go)
}

// New makes the server for the UI at host (host:port, as browsers will
// name it: 127.0.0.1:PORT), with new secrets.
func New(host string, open func(context.Context) (*app.Node, error)) (*Server, error) {
	login, err1 := newSecret()
	bearer, err2 := newSecret()
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	idx, err1 := assets.ReadFile("assets/index.html")
	lp, err2 := assets.ReadFile("assets/login.html")
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	s := &Server{Open: open, host: host, index: idx, loginHTML: lp, mux: http.NewServeMux(),
		routes: map[string]Access{}, liveCh: make(chan struct{})}
	s.gate.login, s.gate.bearer = login, bearer
	// Every route is registered with its access here; a route that is
	// not (or a path that matches none) needs a session.
	route := func(pattern string, acc Access, h http.HandlerFunc) {
		s.routes[pattern] = acc
		s.mux.HandleFunc(pattern, h)
	}
	static, _ := fs.Sub(assets, "assets")
	files := http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	route("GET /static/", Public, files.ServeHTTP)
	route("GET /login", Public, s.loginPage)
	route("POST /login", Public, s.login)
	route("GET /{$}", NeedsCookie, s.page)
	route("GET /api/me", NeedsSession, s.api(s.me))
	route("GET /api/pursuances", NeedsSession, s.api(s.pursuances))
	route("GET /api/p/{p}", NeedsSession, s.api(s.pursuance))
	route("GET /api/p/{p}/tasks", NeedsSession, s.api(s.tasks))
	route("GET /api/p/{p}/tasks/{t}", NeedsSession, s.api(s.task))
	route("POST /api/p/{p}/tasks", NeedsSession, s.api(s.createTask))
	route("POST /api/p/{p}/tasks/{t}/comments", NeedsSession, s.api(s.comment))
	route("POST /api/p/{p}/tasks/{t}/status", NeedsSession, s.api(s.setStatus))
	route("GET /api/p/{p}/log", NeedsSession, s.api(s.log))
	route("POST /api/pursuances", NeedsSession, s.api(s.createPursuance))
	route("POST /api/join", NeedsSession, s.api(s.join))
	route("POST /api/p/{p}/tasks/{t}/assign", NeedsSession, s.api(s.assign))
	route("POST /api/p/{p}/tasks/{t}/move", NeedsSession, s.api(s.move))
	route("POST /api/p/{p}/tasks/{t}/edit", NeedsSession, s.api(s.edit))
	route("POST /api/p/{p}/tasks/{t}/archive", NeedsSession, s.api(s.archive))
	// The status is the node's, not the home's: it is answered without
	// opening the home, which a sync round in progress holds.
	route("GET /api/status", NeedsSession, func(w http.ResponseWriter, r *http.Request) {
		var v any = map[string]any{}
		if s.Status != nil {
			v = s.Status()
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	})
	route("GET /api/live", NeedsSession, s.live)
	route("POST /api/p/{p}/invites", NeedsSession, s.api(s.invite))
	route("POST /api/p/{p}/sync", NeedsSession, s.api(s.sync))
	route("POST /api/p/{p}/relays", NeedsSession, s.api(s.relays))
	route("POST /api/p/{p}/members/{m}/roles", NeedsSession, s.api(s.roles))
	route("POST /api/p/{p}/members/{m}/remove", NeedsSession, s.api(s.remove))
	route("GET /api/p/{p}/succession", NeedsSession, s.api(s.succession))
	route("POST /api/p/{p}/succession/claim", NeedsSession, s.api(s.successionClaim))
	route("POST /api/p/{p}/succession/complete", NeedsSession, s.api(s.successionComplete))
	route("GET /api/p/{p}/charter", NeedsSession, s.api(s.charter))
	route("POST /api/p/{p}/charter", NeedsSession, s.api(s.amend))
	route("GET /api/p/{p}/links", NeedsSession, s.api(s.links))
	route("POST /api/p/{p}/links", NeedsSession, s.api(s.linkCreate))
	route("POST /api/p/{p}/links/accept", NeedsSession, s.api(s.linkAccept))
	route("POST /api/p/{p}/links/{l}/end", NeedsSession, s.api(s.linkEnd))
	route("POST /api/p/{p}/tasks/{t}/handoff", NeedsSession, s.api(s.handoff))
	route("POST /api/p/{p}/tasks/{t}/report", NeedsSession, s.api(s.report))
	route("GET /api/p/{p}/profile", NeedsSession, s.api(s.profileGet))
	route("POST /api/p/{p}/profile", NeedsSession, s.api(s.profilePublish))
	route("POST /api/p/{p}/profile/withdraw", NeedsSession, s.api(s.profileWithdraw))
	route("GET /api/p/{p}/requests", NeedsSession, s.api(s.requests))
	route("POST /api/p/{p}/requests/{r}/answer", NeedsSession, s.api(s.requestAnswer))
	route("GET /api/discover", NeedsSession, s.api(s.discover))
	route("POST /api/knock", NeedsSession, s.api(s.knock))
	route("GET /api/answers", NeedsSession, s.api(s.answers))
	route("GET /api/devices", NeedsSession, s.api(s.devices))
	route("POST /api/devices/approve", NeedsSession, s.api(s.deviceApprove))
	route("POST /api/devices/accept", NeedsSession, s.api(s.deviceAccept))
	route("POST /api/devices/{d}/revoke", NeedsSession, s.api(s.deviceRevoke))
	route("GET /api/p/{p}/activity", NeedsSession, s.api(s.activityFeed))
	route("GET /api/p/{p}/inbox", NeedsSession, s.api(s.inbox))
	route("POST /api/p/{p}/inbox/seen", NeedsSession, s.api(s.inboxSeen))
	route("GET /api/p/{p}/search", NeedsSession, s.api(s.search))
	route("GET /api/templates", NeedsSession, s.api(func(*http.Request, *app.Node) (any, error) { return charter.TemplateNames(), nil }))
	return s, nil
}

// ServeHTTP checks the host, the session the route needs, and for
// changes the origin, then serves.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Host != s.host {
		http.Error(w, "wrong host: this UI answers only to "+s.host, http.StatusMisdirectedRequest)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	_, pattern := s.mux.Handler(r)
	acc, ok := s.routes[pattern]
	if !ok {
		acc = NeedsSession // no route: a 404 or 405 only for a session
	}
	if !s.allowed(r, acc) {
		s.refuse(w, acc)
		return
	}
	if acc != Public {
		w.Header().Set("Cache-Control", "no-store")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+s.host {
			writeErr(w, http.StatusForbidden, errors.New("cross-origin request refused"))
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(s.index)
}

// api wraps a handler with the node's lifetime and JSON encoding.
func (s *Server) api(h func(r *http.Request, n *app.Node) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		n, err := s.Open(ctx)
		if err != nil {
			writeErr(w, http.StatusServiceUnavailable, err)
			return
		}
		defer n.Close()
		v, err := h(r.WithContext(ctx), n)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, app.ErrNotPermitted) {
				status = http.StatusForbidden
			}
			writeErr(w, status, err)
			return
		}
		if u, ok := v.(unchanged); ok {
			v = u.v
		} else if r.Method == http.MethodPost {
			s.Notify()
			if s.Changed != nil {
				s.Changed()
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
}

// Notify tells every open page that the node's data changed (another
// member's events came in, or a change was made here), so that it
// reloads what it shows.
func (s *Server) Notify() {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	s.liveSeen++
	close(s.liveCh)
	s.liveCh = make(chan struct{})
}

// live is a stream of server-sent events: "change" whenever Notify is
// called, and a comment every 20 s to keep the connection open.
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, http.StatusInternalServerError, errors.New("streaming unsupported"))
		return
	}
	// What this page has been told of is read before the stream opens
	// (the first line): a change the client makes once it sees the stream
	// open is announced, not taken as already told.
	s.liveMu.Lock()
	told := s.liveSeen
	s.liveMu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	tick := time.NewTicker(20 * time.Second)
	defer tick.Stop()
	for {
		// The count and the channel are read together, so a Notify
		// between two waits is told, not lost.
		s.liveMu.Lock()
		ch, seen := s.liveCh, s.liveSeen
		s.liveMu.Unlock()
		if seen != told {
			told = seen
			fmt.Fprint(w, "data: change\n\n")
			fl.Flush()
			continue
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			fmt.Fprint(w, ": still here\n\n")
			fl.Flush()
		case <-ch:
		}
	}
}

func writeErr(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// stateOf resolves {p} and folds its state.
func stateOf(r *http.Request, n *app.Node) (*state.State, error) {
	p, err := n.Resolve(r.Context(), r.PathValue("p"))
	if err != nil {
		return nil, err
	}
	return n.State(r.Context(), p)
}

// decodeFor reads a request about pursuance {p}: its JSON body into in,
// and the pursuance's state.
func decodeFor(r *http.Request, n *app.Node, in any) (*state.State, error) {
	if err := decode(r, in); err != nil {
		return nil, err
	}
	return stateOf(r, n)
}

// maxRequestBody bounds a request's JSON body: room for the largest
// texts the rules take (a task body or comment of state.MaxText bytes, a
// charter), escaped.
const maxRequestBody = 1 << 20

// decode reads a JSON request body into v.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("what you sent is over %d KiB; a task's body or a comment may be at most %d KiB", maxRequestBody>>10, state.MaxText>>10)
		}
		return fmt.Errorf("bad request body: %v", err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
