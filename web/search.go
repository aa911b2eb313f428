package web

import (
	"net/http"
	"sync"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/internal/search"
)

// maxSearchIndexes bounds the pursuances whose index the server keeps at
// once; another one's search drops the oldest.
const maxSearchIndexes = 8

// searches keeps each pursuance's full-text index (package search, in
// memory only) while the pursuance's state is the one it was built from.
type searches struct {
	mu    sync.Mutex
	byP   map[event.ID]*builtIndex
	order []event.ID // oldest first
}

type builtIndex struct {
	hash [32]byte // of the state it indexes
	me   string   // the member it indexes for
	ix   *search.Index
}

// index returns the index of the tasks the member may read in p's state
// of hash h, building it when the state changed.
func (c *searches) index(p event.ID, h [32]byte, me string, build func() (*search.Index, error)) (*search.Index, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.byP[p]; ok && b.hash == h && b.me == me {
		return b.ix, nil
	}
	ix, err := build()
	if err != nil {
		return nil, err
	}
	if c.byP == nil {
		c.byP = map[event.ID]*builtIndex{}
	}
	if old, ok := c.byP[p]; ok {
		old.ix.Close()
	} else {
		c.order = append(c.order, p)
		if len(c.order) > maxSearchIndexes {
			c.byP[c.order[0]].ix.Close()
			delete(c.byP, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.byP[p] = &builtIndex{h, me, ix}
	return ix, nil
}

type hitJSON struct {
	Task    string `json:"task"`
	Title   string `json:"title"`
	Where   string `json:"where"`
	Snippet string `json:"snippet"` // matches between \u0002 and \u0003
}

// search finds ?q= in the titles, bodies and comments of the tasks the
// member may read.
func (s *Server) search(r *http.Request, n *app.Node) (any, error) {
	st, err := stateOf(r, n)
	if err != nil {
		return nil, err
	}
	me := n.Me().ID
	s.searchMu.Lock() // one search at a time: the index is one connection
	defer s.searchMu.Unlock()
	ix, err := s.searches.index(st.Pursuance(), st.Hash(), me.String(), func() (*search.Index, error) {
		return search.Build(r.Context(), app.VisibleTasks(st, me, nil))
	})
	if err != nil {
		return nil, err
	}
	hits, err := ix.Query(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		return nil, err
	}
	out := make([]hitJSON, len(hits))
	for i, h := range hits {
		out[i] = hitJSON{h.Task.String(), h.Title, h.Where, h.Snippet}
	}
	return out, nil
}
