package web

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pursuance/pursuance/activity"
	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// maxFeed bounds the lines of the activity feed one request returns: the
// newest; the raw audit log (/log) has every event.
const maxFeed = 500

// lineJSON is one event as the activity feed and the inbox show it.
type lineJSON struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Who      string `json:"who"`
	Sentence string `json:"sentence"`
	Task     string `json:"task,omitempty"`
	Title    string `json:"title,omitempty"`
	Rejected bool   `json:"rejected,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Time     string `json:"time"`
}

func lineOf(l activity.Line) lineJSON {
	j := lineJSON{ID: l.ID.String(), Kind: l.Kind, Who: l.Who, Sentence: l.Sentence, Title: l.Title,
		Rejected: l.Rejected, Reason: l.Reason, Time: time.UnixMilli(int64(l.Time)).UTC().Format(time.RFC3339)}
	if !l.Task.IsZero() && l.Title != "" { // a task this member reads, to link to
		j.Task = l.Task.String()
	}
	return j
}

// activityFeed is the log as sentences, newest first, filtered by member
// name (?member=) and kind (?kind=, a kind's name or "tasks" for every
// task kind); with the members and kinds there are to filter by.
func (s *Server) activityFeed(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	member, kind := r.URL.Query().Get("member"), r.URL.Query().Get("kind")
	lines := activity.Lines(st)
	out := []lineJSON{}
	whos, kinds := map[string]bool{}, map[string]bool{}
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		whos[l.Who], kinds[l.Kind] = true, true
		if member != "" && l.Who != member || kind != "" && !(l.Kind == kind || kind == "tasks" && strings.HasPrefix(l.Kind, "task-")) {
			continue
		}
		if len(out) < maxFeed {
			out = append(out, lineOf(l))
		}
	}
	keys := func(m map[string]bool) []string {
		k := make([]string, 0, len(m))
		for x := range m {
			k = append(k, x)
		}
		slices.Sort(k)
		return k
	}
	return map[string]any{"lines": out, "members": keys(whos), "kinds": keys(kinds)}, nil
}

type noticeJSON struct {
	lineJSON
	Why    string `json:"why"`
	Unread bool   `json:"unread"`
}

// markOf reads the member's last-visit mark of the state's pursuance.
func markOf(n *app.Node, st *state.State) (activity.Mark, error) {
	saved, err := n.Seen(st.Pursuance())
	if err != nil || saved == nil {
		return nil, err
	}
	m := activity.Mark{}
	for k, v := range saved {
		if id, err := identity.ParseMemberID(k); err == nil {
			m[id] = v
		}
	}
	return m, nil
}

// inbox is what asks for the member's attention (package activity), and
// how much of it came since the last visit marked (inboxSeen).
func (s *Server) inbox(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	mark, err := markOf(n, st)
	if err != nil {
		return nil, err
	}
	notes, unread := activity.Inbox(st, n.Me().ID, mark)
	out := make([]noticeJSON, len(notes))
	for i, nt := range notes {
		out[i] = noticeJSON{lineOf(nt.Line), nt.Why, nt.Unread}
	}
	return map[string]any{"notices": out, "unread": unread}, nil
}

// inboxSeen marks everything in the log as seen: the member visited.
func (s *Server) inboxSeen(r *http.Request, n *app.Node) (any, error) {
	var in struct{}
	st, err := decodeFor(r, n, &in)
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	for k, v := range activity.Head(st) {
		m[k.String()] = v
	}
	return unchanged{map[string]int{"unread": 0}}, n.SetSeen(st.Pursuance(), m)
}

// unchanged is the answer of a POST that changed nothing of the
// pursuance (a mark kept in the home only): api neither reloads the open
// pages nor has the node sync for it.
type unchanged struct{ v any }
