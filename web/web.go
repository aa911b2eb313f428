// Package web is the member's local web UI: a JSON API over the app
// service and a single page that uses it, served by `pursuance up` on
// 127.0.0.1. It answers only requests addressed to its own host and port
// (DNS rebinding), and changes nothing without the per-run token the page
// carries and a same-origin Origin (cross-site requests).
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"rsc.io/qr"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
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

	liveMu   sync.Mutex
	liveCh   chan struct{} // closed and replaced by Notify
	liveSeen uint64        // how many times Notify was called

	host  string // host:port requests must name
	token string
	index *template.Template
	mux   *http.ServeMux
}

// TokenHeader carries the per-run token on every request that changes
// something.
const TokenHeader = "X-Pursuance-Token"

// New makes the server for the UI at host (host:port, as browsers will
// name it: 127.0.0.1:PORT).
func New(host string, open func(context.Context) (*app.Node, error)) (*Server, error) {
	var t [16]byte
	if _, err := rand.Read(t[:]); err != nil {
		return nil, err
	}
	idx, err := template.ParseFS(assets, "assets/index.html")
	if err != nil {
		return nil, err
	}
	s := &Server{Open: open, host: host, token: hex.EncodeToString(t[:]), index: idx, mux: http.NewServeMux(), liveCh: make(chan struct{})}
	static, _ := fs.Sub(assets, "assets")
	s.mux.HandleFunc("GET /{$}", s.page)
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServer(http.FS(static))))
	s.mux.HandleFunc("GET /api/me", s.api(s.me))
	s.mux.HandleFunc("GET /api/pursuances", s.api(s.pursuances))
	s.mux.HandleFunc("GET /api/p/{p}", s.api(s.pursuance))
	s.mux.HandleFunc("GET /api/p/{p}/tasks", s.api(s.tasks))
	s.mux.HandleFunc("GET /api/p/{p}/tasks/{t}", s.api(s.task))
	s.mux.HandleFunc("POST /api/p/{p}/tasks", s.api(s.createTask))
	s.mux.HandleFunc("POST /api/p/{p}/tasks/{t}/comments", s.api(s.comment))
	s.mux.HandleFunc("POST /api/p/{p}/tasks/{t}/status", s.api(s.setStatus))
	s.mux.HandleFunc("GET /api/p/{p}/log", s.api(s.log))
	s.mux.HandleFunc("POST /api/pursuances", s.api(s.createPursuance))
	s.mux.HandleFunc("POST /api/join", s.api(s.join))
	s.mux.HandleFunc("POST /api/p/{p}/tasks/{t}/assign", s.api(s.assign))
	s.mux.HandleFunc("POST /api/p/{p}/tasks/{t}/move", s.api(s.move))
	s.mux.HandleFunc("POST /api/p/{p}/tasks/{t}/edit", s.api(s.edit))
	s.mux.HandleFunc("POST /api/p/{p}/tasks/{t}/archive", s.api(s.archive))
	// The status is the node's, not the home's: it is answered without
	// opening the home, which a sync round in progress holds.
	s.mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		var v any = map[string]any{}
		if s.Status != nil {
			v = s.Status()
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	})
	s.mux.HandleFunc("GET /api/live", s.live)
	s.mux.HandleFunc("POST /api/p/{p}/invites", s.api(s.invite))
	s.mux.HandleFunc("POST /api/p/{p}/sync", s.api(s.sync))
	s.mux.HandleFunc("POST /api/p/{p}/relays", s.api(s.relays))
	s.mux.HandleFunc("POST /api/p/{p}/members/{m}/roles", s.api(s.roles))
	s.mux.HandleFunc("POST /api/p/{p}/members/{m}/remove", s.api(s.remove))
	s.mux.HandleFunc("GET /api/p/{p}/charter", s.api(s.charter))
	s.mux.HandleFunc("POST /api/p/{p}/charter", s.api(s.amend))
	s.mux.HandleFunc("GET /api/templates", s.api(func(*http.Request, *app.Node) (any, error) { return charter.TemplateNames(), nil }))
	return s, nil
}

// Token is the per-run token (tests use it).
func (s *Server) Token() string { return s.token }

// ServeHTTP checks the host, and for changes the token and origin, then
// serves.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Host != s.host {
		http.Error(w, "wrong host: this UI answers only to "+s.host, http.StatusMisdirectedRequest)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+s.host {
			writeErr(w, http.StatusForbidden, errors.New("cross-origin request refused"))
			return
		}
		if r.Header.Get(TokenHeader) != s.token {
			writeErr(w, http.StatusForbidden, errors.New("missing or wrong token: reload the page"))
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	s.index.Execute(w, struct{ Token string }{s.token})
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
		if r.Method == http.MethodPost {
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
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	tick := time.NewTicker(20 * time.Second)
	defer tick.Stop()
	s.liveMu.Lock()
	told := s.liveSeen // what this page has been told of
	s.liveMu.Unlock()
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

func (s *Server) me(r *http.Request, n *app.Node) (any, error) {
	pub := n.Me()
	return map[string]string{"id": pub.ID.String(), "name": pub.Name, "fingerprint": pub.Fingerprint()}, nil
}

func (s *Server) pursuances(r *http.Request, n *app.Node) (any, error) {
	ps, err := n.Pursuances(r.Context())
	if err != nil {
		return nil, err
	}
	if ps == nil {
		ps = []app.Summary{}
	}
	return ps, nil
}

// stateOf resolves {p} and folds its state.
func stateOf(r *http.Request, n *app.Node) (*state.State, error) {
	p, err := n.Resolve(r.Context(), r.PathValue("p"))
	if err != nil {
		return nil, err
	}
	return n.State(r.Context(), p)
}

type memberJSON struct {
	ID          identity.PublicKey `json:"id"`
	Name        string             `json:"name"`
	Roles       []string           `json:"roles"`
	Fingerprint string             `json:"fingerprint"`
}

func (s *Server) pursuance(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	var ms []memberJSON
	for _, m := range st.Members() {
		roles := m.Roles
		if roles == nil {
			roles = []string{}
		}
		ms = append(ms, memberJSON{m.ID, m.Name, roles, identity.Fingerprint(m.ID, m.KEM)})
	}
	myRoles := []string{}
	if m, ok := st.Member(n.Me().ID); ok && m.Roles != nil {
		myRoles = m.Roles
	}
	relays := st.Relays()
	if relays == nil {
		relays = []string{}
	}
	return map[string]any{
		"pursuance": st.Pursuance(), "name": st.Name(), "members": ms, "relays": relays,
		"roles": st.Charter().RoleNames(), "my_roles": myRoles, "sealed_tasks": st.SealedTasks(),
		"statuses": state.StatusNames(),
	}, nil
}

type taskJSON struct {
	ID        event.ID `json:"id"`
	Title     string   `json:"title"`
	Body      string   `json:"body"`
	Status    string   `json:"status"`
	Parent    string   `json:"parent"`
	Assignees []string `json:"assignees"`
	Due       string   `json:"due"`
	VisibleTo []string `json:"visible_to"`
	Creator   string   `json:"creator"`
	Comments  int      `json:"comments"`
	Archived  bool     `json:"archived"`
}

func toJSON(st *state.State, t *state.Task) taskJSON {
	tj := taskJSON{ID: t.ID, Title: t.Title, Body: t.Body, Status: t.Status.String(), Due: t.Due, Assignees: []string{},
		VisibleTo: t.VisibleTo, Creator: st.NameOf(t.Creator), Comments: len(t.Comments), Archived: t.Archived}
	if !t.Parent.IsZero() {
		tj.Parent = t.Parent.String()
	}
	if tj.VisibleTo == nil {
		tj.VisibleTo = []string{}
	}
	for _, a := range t.Assignees {
		if a.IsRole() {
			tj.Assignees = append(tj.Assignees, "role:"+a.Role)
		} else {
			tj.Assignees = append(tj.Assignees, st.NameOf(a.Member))
		}
	}
	return tj
}

func (s *Server) tasks(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	f, err := state.ParseFilter(r.URL.Query().Get("filter"))
	if err != nil {
		return nil, err
	}
	me := n.Me().ID
	var roles []string
	if m, ok := st.Member(me); ok {
		roles = m.Roles
	}
	fc := state.FilterContext{Me: me, MyRoles: roles, NameOf: st.NameOf}
	out := []taskJSON{}
	for _, t := range st.Tasks() {
		if st.CanSee(me, t) && f.Match(t, fc) {
			out = append(out, toJSON(st, t))
		}
	}
	return out, nil
}

func (s *Server) task(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	t, err := app.ResolveTask(st, r.PathValue("t"))
	if err != nil || !st.CanSee(n.Me().ID, t) {
		return nil, fmt.Errorf("no task %q", r.PathValue("t"))
	}
	type comment struct {
		Author string `json:"author"`
		Text   string `json:"text"`
		Time   string `json:"time"`
	}
	cs := []comment{}
	for _, c := range t.Comments {
		cs = append(cs, comment{st.NameOf(c.Author), c.Text, time.UnixMilli(int64(c.Time)).UTC().Format("2006-01-02 15:04")})
	}
	return map[string]any{"task": toJSON(st, t), "comments": cs}, nil
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

func (s *Server) createTask(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Title     string   `json:"title"`
		Body      string   `json:"body"`
		VisibleTo []string `json:"visible_to"`
		Parent    string   `json:"parent"`
		Due       string   `json:"due"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	op := &state.TaskCreate{Title: strings.TrimSpace(in.Title), Body: in.Body, VisibleTo: in.VisibleTo, Due: in.Due}
	if in.Parent != "" {
		pt, err := app.ResolveTask(st, in.Parent)
		if err != nil {
			return nil, err
		}
		op.Parent = pt.ID
	}
	res, err := n.Act(r.Context(), st.Pursuance(), op, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"task": res.Event.ID()}, nil
}

func (s *Server) createPursuance(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Name     string `json:"name"`
		Template string `json:"template"`
		Charter  string `json:"charter"` // YAML, instead of a template
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	var c *charter.Charter
	var err error
	if strings.TrimSpace(in.Charter) != "" {
		if c, err = charter.Parse([]byte(in.Charter)); err != nil {
			return nil, fmt.Errorf("the charter: %v", err)
		}
	} else {
		if in.Template == "" {
			in.Template = "desk"
		}
		if c, err = charter.Template(in.Template); err != nil {
			return nil, err
		}
	}
	c.Name = strings.TrimSpace(in.Name)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p, err := n.Create(r.Context(), c)
	if err != nil {
		return nil, err
	}
	return map[string]any{"pursuance": p}, nil
}

// onTask acts on the task {t} of pursuance {p}: it decodes the request
// into in, and signs the op build makes of it.
func onTask(r *http.Request, n *app.Node, in any, build func(st *state.State, t *state.Task) (state.Op, error)) (any, error) {
	st, err := decodeFor(r, n, in)
	if err != nil {
		return nil, err
	}
	t, err := app.ResolveTask(st, r.PathValue("t"))
	if err != nil {
		return nil, err
	}
	op, err := build(st, t)
	if err != nil {
		return nil, err
	}
	if _, err := n.Act(r.Context(), st.Pursuance(), op, app.DoOptions{}); err != nil {
		return nil, err
	}
	return map[string]bool{"ok": true}, nil
}

func (s *Server) comment(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Text string `json:"text"`
	}
	return onTask(r, n, &in, func(_ *state.State, t *state.Task) (state.Op, error) {
		return &state.TaskComment{Task: t.ID, Text: in.Text}, nil
	})
}

func (s *Server) setStatus(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Status string `json:"status"`
	}
	return onTask(r, n, &in, func(_ *state.State, t *state.Task) (state.Op, error) {
		status, err := state.ParseStatus(in.Status)
		return &state.TaskStatus{Task: t.ID, Status: status}, err
	})
}

// assign assigns a task: {"who": a member's name or ID, or "role:NAME"}.
func (s *Server) assign(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Who string `json:"who"`
	}
	return onTask(r, n, &in, func(st *state.State, t *state.Task) (state.Op, error) {
		who, err := app.ResolveAssignee(st, strings.TrimSpace(in.Who))
		return &state.TaskAssign{Task: t.ID, Assignee: who}, err
	})
}

// edit changes a task's fields: {"title", "body", "due"}, each optional
// (null or absent: unchanged; "due": "" clears it).
func (s *Server) edit(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
		Due   *string `json:"due"`
	}
	return onTask(r, n, &in, func(_ *state.State, t *state.Task) (state.Op, error) {
		if in.Title == nil && in.Body == nil && in.Due == nil {
			return nil, errors.New("nothing to edit: give a title, a body or a due date")
		}
		if in.Title != nil && strings.TrimSpace(*in.Title) == "" {
			return nil, errors.New("a task needs a title")
		}
		if in.Due != nil && *in.Due != "" {
			if err := state.CheckDue(*in.Due); err != nil {
				return nil, fmt.Errorf("due date: %w", err)
			}
		}
		return &state.TaskEdit{Task: t.ID, Title: in.Title, Body: in.Body, Due: in.Due}, nil
	})
}

// archive archives a task, or brings it back: {"archived": bool}.
func (s *Server) archive(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Archived bool `json:"archived"`
	}
	return onTask(r, n, &in, func(_ *state.State, t *state.Task) (state.Op, error) {
		return &state.TaskArchive{Task: t.ID, Archived: in.Archived}, nil
	})
}

// move re-parents a task: {"parent": ID or ""} (a root task).
func (s *Server) move(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Parent string `json:"parent"`
	}
	return onTask(r, n, &in, func(st *state.State, t *state.Task) (state.Op, error) {
		op := &state.TaskMove{Task: t.ID}
		if in.Parent != "" {
			pt, err := app.ResolveTask(st, in.Parent)
			if err != nil {
				return nil, err
			}
			op.Parent = pt.ID
		}
		return op, nil
	})
}

// join joins with an invite code: the log comes from the relays the code
// names (or it is already here).
func (s *Server) join(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Code string `json:"code"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	code, err := app.ParseInviteCode(in.Code)
	if err != nil {
		return nil, err
	}
	if _, err := n.Join(r.Context(), code, app.DoOptions{}); err != nil {
		return nil, err
	}
	return map[string]any{"pursuance": code.Pursuance}, nil
}

func (s *Server) invite(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Role string `json:"role"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	code, res, err := n.Invite(r.Context(), st.Pursuance(), in.Role, 7*24*time.Hour, 1, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	text := code.String()
	out := map[string]any{"code": text, "proposed": res.Proposed, "reach": code.Reach(), "relays": code.Relays}
	if q, err := qr.Encode(strings.ToUpper(text), qr.M); err == nil {
		// Upper case fits QR's alphanumeric mode; codes parse in any case.
		out["qr"] = "data:image/png;base64," + base64.StdEncoding.EncodeToString(q.PNG())
	}
	return out, nil
}

// roles gives or takes a role: {"role": R, "action": "assign"|"revoke"}.
func (s *Server) roles(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Role   string `json:"role"`
		Action string `json:"action"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	m, err := app.ResolveMember(st, r.PathValue("m"))
	if err != nil {
		return nil, err
	}
	var res app.Result
	var left []string
	switch in.Action {
	case "assign":
		res, left, err = n.AssignRole(r.Context(), st.Pursuance(), m, in.Role, app.DoOptions{})
	case "revoke":
		res, left, err = n.RevokeRole(r.Context(), st.Pursuance(), m, in.Role, app.DoOptions{})
	default:
		return nil, fmt.Errorf("action must be assign or revoke, not %q", in.Action)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"proposed": res.Proposed, "not_rekeyed": nonNil(left)}, nil
}

// remove removes a member, re-keying what it held.
func (s *Server) remove(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	m, err := app.ResolveMember(st, r.PathValue("m"))
	if err != nil {
		return nil, err
	}
	res, left, err := n.Remove(r.Context(), st.Pursuance(), m, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"proposed": res.Proposed, "not_rekeyed": nonNil(left)}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) charter(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	return map[string]string{"yaml": string(st.Charter().YAML())}, nil
}

// amend replaces the charter; a charter that does not parse is answered
// with every error and its line.
func (s *Server) amend(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		YAML string `json:"yaml"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	c, err := charter.Parse([]byte(in.YAML))
	if err != nil {
		var list charter.ErrorList
		if errors.As(err, &list) {
			type lineErr struct {
				Line int    `json:"line"`
				Msg  string `json:"message"`
			}
			var out []lineErr
			for _, e := range list {
				out = append(out, lineErr{e.Line, e.Msg})
			}
			return map[string]any{"errors": out}, nil
		}
		return nil, err
	}
	wire, err := c.MarshalBinary()
	if err != nil {
		return nil, err
	}
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	res, err := n.Act(r.Context(), st.Pursuance(), &state.CharterAmend{Charter: wire}, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"proposed": res.Proposed, "errors": []any{}}, nil
}

// relays changes the pursuance's relay list: {"add": URL} or
// {"remove": URL}.
func (s *Server) relays(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Add    string `json:"add"`
		Remove string `json:"remove"`
	}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	var add, remove []string
	if u := strings.TrimSpace(in.Add); u != "" {
		add = []string{u}
	}
	if u := strings.TrimSpace(in.Remove); u != "" {
		remove = []string{u}
	}
	if len(add)+len(remove) == 0 {
		return nil, errors.New("give a relay URL to add or remove")
	}
	res, err := n.SetRelays(r.Context(), st.Pursuance(), add, remove, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"proposed": res.Proposed}, nil
}

func (s *Server) sync(r *http.Request, n *app.Node) (any, error) {
	p, err := n.Resolve(r.Context(), r.PathValue("p"))
	if err != nil {
		return nil, err
	}
	urls, err := n.RelayURLs(r.Context(), p)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"received": 0, "sent": 0, "errors": ""}
	if len(urls) == 0 {
		out["errors"] = "no relays"
		return out, nil
	}
	res, err := n.Sync(r.Context(), p, app.SyncOptions{})
	if err != nil {
		return nil, err
	}
	var errs []string
	for _, rr := range res.Relays {
		if rr.Err != nil {
			errs = append(errs, rr.URL+": "+rr.Err.Error())
		}
	}
	out["received"], out["sent"], out["errors"] = res.Received, res.Sent, strings.Join(errs, "; ")
	return out, nil
}

func (s *Server) log(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	type entry struct {
		ID     string `json:"id"`
		Author string `json:"author"`
		Kind   string `json:"kind"`
		Time   string `json:"time"`
		Status string `json:"status"`
		Reason string `json:"reason,omitempty"`
		Note   string `json:"note,omitempty"`
	}
	out := []entry{}
	for _, en := range st.Log() {
		status := "accepted"
		if !en.Accepted {
			status = "rejected"
		}
		out = append(out, entry{en.ID.Short(), st.NameOf(en.Author), en.Kind.String(),
			time.UnixMilli(int64(en.Time)).UTC().Format("2006-01-02 15:04"), status, en.Reason, en.Note})
	}
	return out, nil
}
