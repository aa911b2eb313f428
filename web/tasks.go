package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

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
	// Origin: where a task received over a link came from, with the
	// verdict on its sender (app.OriginView); null for a task made here.
	Origin *app.OriginView `json:"origin"`
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
	ts := app.VisibleTasks(st, n.Me().ID, f)
	q := r.URL.Query()
	if q.Has("per_status") {
		return boardPage(r, n, st, ts)
	}
	if q.Has("limit") || q.Has("status") || q.Has("after") {
		return listPage(r, n, st, ts)
	}
	// No paging asked: every task, as callers before paging expect.
	return tasksJSON(r, n, st, ts)
}

// MaxTaskPage bounds a page of the tasks API (?limit=, ?per_status=): a
// page is what a view shows at once, never the whole list of a big
// pursuance (25,000 tasks are ~10 MB of JSON).
const MaxTaskPage = 500

// tasksJSON is ts as the API shows them, each with its origin.
func tasksJSON(r *http.Request, n *app.Node, st *state.State, ts []*state.Task) ([]taskJSON, error) {
	origins, err := n.TaskOrigins(r.Context(), st, ts)
	if err != nil {
		return nil, err
	}
	out := []taskJSON{}
	for _, t := range ts {
		tj := toJSON(st, t)
		tj.Origin = origins[t.ID]
		out = append(out, tj)
	}
	return out, nil
}

// pageSize reads the count parameter name of r: 1 to MaxTaskPage.
func pageSize(r *http.Request, name string) (int, error) {
	v, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || v < 1 || v > MaxTaskPage {
		return 0, fmt.Errorf("%s must be a number from 1 to %d", name, MaxTaskPage)
	}
	return v, nil
}

// listPage is a page of the (filtered) list: ?status= keeps one status,
// ?after=ID starts after that task, ?limit=N (default MaxTaskPage) takes
// at most N. It answers {"tasks", "total" (of the status, before
// paging), "next" (the ?after= of the next page; "" at the end)}.
func listPage(r *http.Request, n *app.Node, st *state.State, ts []*state.Task) (any, error) {
	q := r.URL.Query()
	limit := MaxTaskPage
	if q.Has("limit") {
		var err error
		if limit, err = pageSize(r, "limit"); err != nil {
			return nil, err
		}
	}
	if q.Get("status") != "" {
		status, err := state.ParseStatus(q.Get("status"))
		if err != nil {
			return nil, err
		}
		ts = slices.DeleteFunc(slices.Clone(ts), func(t *state.Task) bool { return t.Status != status })
	}
	total := len(ts)
	if after := q.Get("after"); after != "" {
		i := slices.IndexFunc(ts, func(t *state.Task) bool { return t.ID.String() == after })
		if i < 0 {
			return nil, fmt.Errorf("no task %s in this list (changed since the last page?): load the list again", after)
		}
		ts = ts[i+1:]
	}
	next := ""
	if len(ts) > limit {
		ts = ts[:limit]
		next = ts[limit-1].ID.String()
	}
	out, err := tasksJSON(r, n, st, ts)
	if err != nil {
		return nil, err
	}
	return map[string]any{"tasks": out, "total": total, "next": next}, nil
}

// boardPage is what the board's first paint shows: of each status, the
// first ?per_status=N tasks of the (filtered) list, the count of each
// status, and the titles of the shown tasks' parents that the list holds
// (for the cards' breadcrumbs). {"tasks", "counts", "parents"}.
func boardPage(r *http.Request, n *app.Node, st *state.State, ts []*state.Task) (any, error) {
	per, err := pageSize(r, "per_status")
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, name := range state.StatusNames() {
		counts[name] = 0
	}
	var page []*state.Task
	for _, t := range ts {
		name := t.Status.String()
		if counts[name] < per {
			page = append(page, t)
		}
		counts[name]++
	}
	// The page's parents among ts: a set of those, not a map of ts (a
	// quarter of a million tasks at 1M events, on every request).
	wanted := map[event.ID]bool{}
	for _, t := range page {
		if !t.Parent.IsZero() {
			wanted[t.Parent] = true
		}
	}
	parents := map[string]string{}
	for _, t := range ts {
		if len(parents) == len(wanted) {
			break
		}
		if wanted[t.ID] {
			parents[t.ID.String()] = t.Title
		}
	}
	out, err := tasksJSON(r, n, st, page)
	if err != nil {
		return nil, err
	}
	return map[string]any{"tasks": out, "counts": counts, "parents": parents}, nil
}

func (s *Server) task(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	t, err := app.ResolveTask(st, n.Me().ID, r.PathValue("t"))
	if err != nil {
		return nil, err
	}
	type comment struct {
		ID     string     `json:"id"`
		Author string     `json:"author"`
		Text   string     `json:"text"`
		Time   string     `json:"time"`
		Files  []fileJSON `json:"files"` // attached to the comment
	}
	files, err := filesOf(r, n, st, t)
	if err != nil {
		return nil, err
	}
	onComment := map[string][]fileJSON{}
	taskFiles := []fileJSON{}
	for _, f := range files {
		if f.Comment != "" {
			onComment[f.Comment] = append(onComment[f.Comment], f)
		} else {
			taskFiles = append(taskFiles, f)
		}
	}
	cs := []comment{}
	for _, c := range t.Comments {
		fs := onComment[c.ID.String()]
		if fs == nil {
			fs = []fileJSON{}
		}
		cs = append(cs, comment{c.ID.String(), st.NameOf(c.Author), c.Text, time.UnixMilli(int64(c.Time)).UTC().Format("2006-01-02 15:04"), fs})
	}
	tj := toJSON(st, t)
	if tj.Origin, err = n.TaskOrigin(r.Context(), st, t); err != nil {
		return nil, err
	}
	hs, err := n.TaskHandoffs(r.Context(), st, t)
	if err != nil {
		return nil, err
	}
	if hs == nil {
		hs = []app.HandoffView{}
	}
	// may_handoff: of each pursuance this one offered an open link to,
	// whether this member may hand the task off there (app.Node.MayHandoff);
	// a received task is not passed on.
	handoff := map[string]app.Permission{}
	if tj.Origin == nil {
		for _, l := range st.Links() {
			if l.Offer && l.HasSecret && !l.Ended {
				handoff[l.Peer.String()] = n.MayHandoff(r.Context(), st, t, l.Peer)
			}
		}
	}
	return map[string]any{"task": tj, "comments": cs, "handoffs": hs, "files": taskFiles, "may": taskMay(r.Context(), n, st, t), "may_handoff": handoff}, nil
}

// taskMay is what this member may do to task t now, control by control
// of the task dialog: each the rules' own verdict (app.Node.May) on the
// event the control would sign, so the page disables what the charter
// forbids, with the reason, and computes no permission itself. The ops
// stand for any value the control may send: the charter's rules depend
// on the action, the task and, for an assignment, the assignee, which is
// here this member (the dialog's other choices are refused, if they are,
// when sent).
func taskMay(ctx context.Context, n *app.Node, st *state.State, t *state.Task) map[string]app.Permission {
	title := t.Title
	return map[string]app.Permission{
		"edit":    n.May(ctx, st, &state.TaskEdit{Task: t.ID, Title: &title}),
		"archive": n.May(ctx, st, &state.TaskArchive{Task: t.ID, Archived: !t.Archived}),
		"status":  n.May(ctx, st, &state.TaskStatus{Task: t.ID, Status: t.Status}),
		"assign":  n.May(ctx, st, &state.TaskAssign{Task: t.ID, Assignee: state.Assignee{Member: n.Me().ID}.String()}),
		"comment": n.May(ctx, st, &state.TaskComment{Task: t.ID, Text: "a comment"}),
		"move":    n.May(ctx, st, &state.TaskMove{Task: t.ID, Parent: t.Parent}),
	}
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
		pt, err := app.ResolveTask(st, n.Me().ID, in.Parent)
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

// onTask acts on the task {t} of pursuance {p}: it decodes the request
// into in, and signs the op build makes of it.
func onTask(r *http.Request, n *app.Node, in any, build func(st *state.State, t *state.Task) (state.Op, error)) (any, error) {
	st, err := decodeFor(r, n, in)
	if err != nil {
		return nil, err
	}
	t, err := app.ResolveTask(st, n.Me().ID, r.PathValue("t"))
	if err != nil {
		return nil, err
	}
	op, err := build(st, t)
	if err != nil {
		return nil, err
	}
	res, err := n.Act(r.Context(), st.Pursuance(), op, app.DoOptions{})
	if err != nil {
		return nil, err
	}
	// id: the event, for what refers to it next (a comment's files).
	return map[string]any{"ok": true, "id": res.Event.ID().String()}, nil
}

// comment comments on a task: {"text", "report"}; with "report", the
// comment is also reported back to the pursuance that handed the task off
// (as `task comment --report`).
func (s *Server) comment(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Text   string `json:"text"`
		Report bool   `json:"report"`
	}
	var id event.ID
	out, err := onTask(r, n, &in, func(_ *state.State, t *state.Task) (state.Op, error) {
		id = t.ID
		return &state.TaskComment{Task: t.ID, Text: in.Text}, nil
	})
	if err != nil || !in.Report {
		return out, err
	}
	return out, s.reportBack(r, n, id, nil, in.Text)
}

// setStatus sets a task's status: {"status", "report"}; with "report",
// the status is also reported back (as `task status --report`).
func (s *Server) setStatus(r *http.Request, n *app.Node) (any, error) {
	var in struct {
		Status string `json:"status"`
		Report bool   `json:"report"`
	}
	var id event.ID
	var status state.Status
	out, err := onTask(r, n, &in, func(_ *state.State, t *state.Task) (state.Op, error) {
		var err error
		id = t.ID
		status, err = state.ParseStatus(in.Status)
		return &state.TaskStatus{Task: t.ID, Status: status}, err
	})
	if err != nil || !in.Report {
		return out, err
	}
	return out, s.reportBack(r, n, id, &status, "")
}

// reportBack reports, after the change itself was made, on task id of
// {p} to the pursuance that handed it off. An error says that the change
// was made; it went out all the same (the API tells the node and the
// pages only of requests that succeed).
func (s *Server) reportBack(r *http.Request, n *app.Node, id event.ID, status *state.Status, comment string) error {
	p, err := n.Resolve(r.Context(), r.PathValue("p"))
	if err == nil {
		_, err = n.Report(r.Context(), p, id.String(), status, comment, app.DoOptions{})
	}
	if err != nil {
		s.Notify()
		if s.Changed != nil {
			s.Changed()
		}
		return fmt.Errorf("done here, but not reported back: %w", err)
	}
	return nil
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
			pt, err := app.ResolveTask(st, n.Me().ID, in.Parent)
			if err != nil {
				return nil, err
			}
			op.Parent = pt.ID
		}
		return op, nil
	})
}
