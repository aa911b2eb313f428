package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// fillRefold is how many events Fill signs on one folded state before it
// folds the log again (to know the tasks created meanwhile), once the log
// is that long (before, it folds after doubling).
const fillRefold = 2000

// fillWords are the words of the titles, bodies and comments Fill writes.
var fillWords = strings.Fields(`source memo leak budget council contract invoice witness archive
	draft ledger filing transcript photo permit audit timeline shipment account tender
	minutes hearing inspector supplier road school clinic payroll vote deed map`)

// Fill adds count events of this member to pursuance p, as a member's
// everyday work would: about a quarter task creations, the rest comments,
// status changes and edits of the tasks created so far, sealed like any
// task event (`pursuance bench fill`, docs/benchmarks.md). It folds the
// log once every fillRefold events, not once per event as Act would, and
// checks at the end that every event was accepted. It returns the number
// of tasks created.
func (n *Node) Fill(ctx context.Context, p event.ID, count int, seed uint64) (int, error) {
	if err := n.holdsHome(); err != nil {
		return 0, err
	}
	rnd := rand.New(rand.NewPCG(seed, 15))
	words := func(lo, hi int) string {
		w := make([]string, lo+rnd.IntN(hi-lo+1))
		for i := range w {
			w[i] = fillWords[rnd.IntN(len(fillWords))]
		}
		return strings.Join(w, " ")
	}
	created := 0
	var s *state.State
	var tasks []event.ID
	refold := 0 // the next event before which the log is folded again
	for i := range count {
		if i == refold {
			// Often at first (tasks to work on), then every fillRefold.
			refold = i + max(1, min(i, fillRefold))
			var err error
			if s, err = n.State(ctx, p); err != nil {
				return created, err
			}
			if _, ok := s.Member(n.id.ID()); !ok {
				return 0, fmt.Errorf("%w: you are not a member of %s", ErrNotPermitted, s.Name())
			}
			tasks = tasks[:0]
			for _, t := range s.Tasks() {
				tasks = append(tasks, t.ID)
			}
		}
		var op state.Op
		switch r := rnd.IntN(100); {
		case r < 25 || len(tasks) == 0:
			op = &state.TaskCreate{Title: words(2, 6), Body: words(5, 30)}
			created++
		case r < 70:
			op = &state.TaskComment{Task: tasks[rnd.IntN(len(tasks))], Text: words(3, 25)}
		case r < 85:
			op = &state.TaskStatus{Task: tasks[rnd.IntN(len(tasks))], Status: state.Status(rnd.IntN(int(state.StatusDone) + 1))}
		default:
			title := words(2, 6)
			op = &state.TaskEdit{Task: tasks[rnd.IntN(len(tasks))], Title: &title}
		}
		s2, op, err := n.prepareTask(ctx, s, op)
		if err != nil {
			return created, err
		}
		e, err := n.sign(ctx, s2, op)
		if err != nil {
			return created, err
		}
		if err := n.put(ctx, e); err != nil {
			return created, err
		}
	}
	s, err := n.State(ctx, p)
	if err != nil {
		return created, err
	}
	for en := range s.Entries() {
		if !en.Accepted {
			return created, errors.New("app: the rules rejected an event of the fill; the fill is not a valid benchmark")
		}
	}
	return created, nil
}
