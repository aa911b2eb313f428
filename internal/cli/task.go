package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

func newTaskCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "Create, list, show and change tasks",
		Long: `Tasks form a tree of unlimited depth. Each has a title, a markdown body, one
of seven statuses (New, Started, WorkingOn, HelpWanted, ReadyForReview,
Reviewing, Done), assignees (members, or roles as role:NAME), a due date,
comments, and may be archived. TASK is a task ID or a unique prefix of it
(at least 4 hex digits).`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	cmd.AddCommand(newTaskAddCmd(e), newTaskListCmd(e), newTaskShowCmd(e), newTaskStatusCmd(e),
		newTaskAssignCmd(e, true), newTaskAssignCmd(e, false), newTaskCommentCmd(e), newTaskEditCmd(e), newTaskArchiveCmd(e),
		newTaskReportCmd(e), newTaskSearchCmd(e), newTaskAttachCmd(e), newTaskFilesCmd(e), newTaskFetchCmd(e))
	return cmd
}

// taskJSON is a task in `task list --json`.
type taskJSON struct {
	ID        event.ID `json:"id"`
	Title     string   `json:"title"`
	Status    string   `json:"status"`
	Parent    string   `json:"parent"`
	Assignees []string `json:"assignees"`
	Due       string   `json:"due"`
}

func toTaskJSON(t *state.Task) taskJSON {
	tj := taskJSON{ID: t.ID, Title: t.Title, Status: t.Status.String(), Due: t.Due, Assignees: []string{}}
	if !t.Parent.IsZero() {
		tj.Parent = t.Parent.String()
	}
	for _, a := range t.Assignees {
		tj.Assignees = append(tj.Assignees, a.String())
	}
	return tj
}

func newTaskAddCmd(e *Env) *cobra.Command {
	var title, body, parent, due string
	var assign, visible []string
	cmd := &cobra.Command{
		Use:   "add P --title T [--body B] [--parent TASK] [--assign WHO]... [--visible-to ROLE]... [--due YYYY-MM-DD]",
		Short: "Create a task",
		Long: `Create a task and print its ID. Without --visible-to, the task is visible to
the roles your charter sets for tasks you create (by default, your own
roles); members and roles it is assigned to see it too.`,
		Example: `  pursuance task add desk --title "Verify the documents" --assign Bob --due 2026-12-31
  pursuance task add desk --title "Call the source" --parent 3f2a --visible-to editor`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if title == "" {
				return usageErrorf("missing --title T")
			}
			if due != "" {
				if err := state.CheckDue(due); err != nil {
					return usageErrorf("--due: %v", err)
				}
			}
			res, err := e.act(cmd, args[0], func(s *state.State, n *app.Node) (state.Op, error) {
				op := &state.TaskCreate{Title: title, Body: body, VisibleTo: visible, Due: due}
				if parent != "" {
					t, err := app.ResolveTask(s, n.Me().ID, parent)
					if err != nil {
						return nil, err
					}
					op.Parent = t.ID
				}
				for _, w := range assign {
					a, err := app.ResolveAssignee(s, w)
					if err != nil {
						return nil, err
					}
					op.Assignees = append(op.Assignees, a)
				}
				return op, nil
			})
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(struct {
					Task event.ID `json:"task"`
				}{res.Event.ID()})
			}
			fmt.Fprintln(e.Stdout, res.Event.ID())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&title, "title", "", "the task's title")
	f.StringVar(&body, "body", "", "the task's body (markdown)")
	f.StringVar(&parent, "parent", "", "the parent `TASK`")
	f.StringVar(&due, "due", "", "due date, YYYY-MM-DD")
	f.StringArrayVar(&assign, "assign", nil, "assign to `WHO`: a member, or role:NAME (repeatable)")
	f.StringArrayVar(&visible, "visible-to", nil, "make the task visible to `ROLE` (repeatable)")
	return cmd
}

func newTaskListCmd(e *Env) *cobra.Command {
	var filter string
	cmd := &cobra.Command{
		Use:   "list P [--filter EXPR]",
		Short: "List the tasks visible to you",
		Long: `List the tasks you can see, in tree order. The filter language:
  @me            assigned to you, or to one of your roles
  @-             assigned to no one
  @NAME          assigned to that member or role
  status:Done    with that status; status:!Done without it
  due:<DATE      due before DATE (YYYY-MM-DD or a prefix); due:>DATE after
  archived       archived tasks (hidden otherwise)
  WORD           the title contains WORD
All terms must match.`,
		Example: `  pursuance task list desk --filter "@me status:!Done"
  pursuance task list desk --filter "due:<2026-12-31 leak" --json`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := state.ParseFilter(filter)
			if err != nil {
				return usageErrorf("--filter: %v", err)
			}
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				if e.json && filter == "" {
					// The whole list as JSON, kept with the state: the node
					// serving command after command encodes it once per state
					// (4 MB at 25,000 tasks; issue 15).
					b, err := s.Memo(taskListKey{n.Me().ID}, func() (any, error) {
						return taskListJSON(app.VisibleTasks(s, n.Me().ID, f))
					})
					if err != nil {
						return err
					}
					_, err = e.Stdout.Write(b.([]byte))
					return err
				}
				out := []taskJSON{}
				shown := app.VisibleTasks(s, n.Me().ID, f)
				for _, t := range shown {
					out = append(out, toTaskJSON(t))
				}
				if e.json {
					return e.printJSON(out)
				}
				if len(shown) == 0 {
					fmt.Fprintln(e.Stderr, "No tasks match.")
				}
				depth := map[event.ID]int{}
				for _, t := range shown {
					d := 0
					if !t.Parent.IsZero() {
						d = depth[t.Parent] + 1
					}
					depth[t.ID] = d
					line := fmt.Sprintf("%s%s  [%s] %s", strings.Repeat("  ", d), t.ID.Short()[:8], t.Status, t.Title)
					if len(t.Assignees) > 0 {
						line += "  @" + strings.Join(assigneeNames(s, t), " @")
					}
					if t.Due != "" {
						line += "  due " + t.Due
					}
					fmt.Fprintln(e.Stdout, line)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&filter, "filter", "", "filter `EXPR` (see above)")
	return cmd
}

// taskListKey names, in a state's memo, a member's whole task list as
// `task list --json` prints it.
type taskListKey struct{ me identity.PublicKey }

// taskListJSON is ts as `task list --json` prints them, as printJSON
// writes them.
func taskListJSON(ts []*state.Task) ([]byte, error) {
	out := make([]taskJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, toTaskJSON(t))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func assigneeNames(s *state.State, t *state.Task) []string {
	var out []string
	for _, a := range t.Assignees {
		if a.IsRole() {
			out = append(out, a.String())
		} else if n := s.NameOf(a.Member); n != "" {
			out = append(out, n)
		} else {
			out = append(out, a.Member.Short())
		}
	}
	return out
}

func newTaskShowCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "show P TASK",
		Short: "Show one task with its comments",
		Args:  exactArgs(2, "P TASK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				t, err := app.ResolveTask(s, n.Me().ID, args[1])
				if err != nil {
					return err
				}
				type comment struct {
					Author string `json:"author"`
					Text   string `json:"text"`
					// ID and Files, only for a comment with files: the
					// comment's event, and the IDs of its files (`task
					// files` lists them). A comment without files keeps
					// the contract's {"author","text"}.
					ID    string   `json:"id,omitempty"`
					Files []string `json:"files,omitempty"`
				}
				out := struct {
					taskJSON
					Body     string    `json:"body"`
					Archived bool      `json:"archived"`
					Comments []comment `json:"comments"`
					// Origin: where a task received over a link came from.
					Origin *app.OriginView `json:"origin,omitempty"`
					// Handoffs: where this task was handed off, and what came back.
					Handoffs []app.HandoffView `json:"handoffs,omitempty"`
				}{taskJSON: toTaskJSON(t), Body: t.Body, Archived: t.Archived, Comments: []comment{}}
				for _, c := range t.Comments {
					cj := comment{Author: c.Author.String(), Text: c.Text}
					for _, f := range t.CommentFiles(c.ID) {
						cj.ID = c.ID.String()
						cj.Files = append(cj.Files, f.ID.String())
					}
					out.Comments = append(out.Comments, cj)
				}
				if out.Origin, err = n.TaskOrigin(cmd.Context(), s, t); err != nil {
					return err
				}
				if out.Handoffs, err = n.TaskHandoffs(cmd.Context(), s, t); err != nil {
					return err
				}
				if e.json {
					return e.printJSON(out)
				}
				w := e.Stdout
				fmt.Fprintf(w, "%s\n%s\n\nstatus:    %s\n", t.Title, t.ID, t.Status)
				if !t.Parent.IsZero() {
					title := t.Parent.Short()
					if p, ok := s.Task(t.Parent); ok {
						title = p.Title
					}
					fmt.Fprintf(w, "parent:    %s\n", title)
				}
				if names := assigneeNames(s, t); len(names) > 0 {
					fmt.Fprintf(w, "assignees: %s\n", strings.Join(names, ", "))
				} else {
					fmt.Fprintln(w, "assignees: (none)")
				}
				if t.Due != "" {
					fmt.Fprintf(w, "due:       %s\n", t.Due)
				}
				fmt.Fprintf(w, "visible to: %s\n", joinRoles(t.VisibleTo))
				if t.Archived {
					fmt.Fprintln(w, "archived")
				}
				if o := out.Origin; o != nil {
					from := o.Name
					if from == "" {
						from = o.Pursuance
					}
					sender := o.SenderName
					if sender == "" {
						sender = o.Sender
					}
					fmt.Fprintf(w, "from:      %s (role %s), sent by %s: %s", from, orDash(o.Role), sender, o.Verdict)
					if o.Reason != "" {
						fmt.Fprintf(w, " (%s)", o.Reason)
					}
					fmt.Fprintln(w)
				}
				for _, h := range out.Handoffs {
					to := h.Name
					if to == "" {
						to = h.To
					}
					received := "not received yet"
					if h.Received {
						received = "received"
					}
					fmt.Fprintf(w, "handed off to %s: %s, %s\n", to, h.Verdict, received)
					for _, r := range h.Reports {
						fmt.Fprintf(w, "  report by %s (%s): %s %s\n", r.Name, r.Verdict, r.Status, r.Comment)
					}
				}
				if t.Body != "" {
					fmt.Fprintf(w, "\n%s\n", t.Body)
				}
				for _, c := range t.Comments {
					when := time.UnixMilli(int64(c.Time)).UTC().Format("2006-01-02 15:04")
					fmt.Fprintf(w, "\n%s, %s:\n%s\n", s.NameOf(c.Author), when, c.Text)
					for _, f := range t.CommentFiles(c.ID) {
						fmt.Fprintf(w, "  file %s  %s  %d bytes\n", f.ID.String()[:12], f.Name, f.Size)
					}
				}
				return nil
			})
		},
	}
}

// taskAct acts on the task named by args[1] of the pursuance args[0].
func (e *Env) taskAct(cmd *cobra.Command, args []string, build func(s *state.State, n *app.Node, t *state.Task) (state.Op, error)) error {
	_, err := e.act(cmd, args[0], func(s *state.State, n *app.Node) (state.Op, error) {
		t, err := app.ResolveTask(s, n.Me().ID, args[1])
		if err != nil {
			return nil, err
		}
		return build(s, n, t)
	})
	return err
}

func newTaskStatusCmd(e *Env) *cobra.Command {
	var report bool
	cmd := &cobra.Command{
		Use:   "status P TASK STATUS",
		Short: "Set a task's status: New, Started, WorkingOn, HelpWanted, ReadyForReview, Reviewing, Done",
		Args:  exactArgs(3, "P TASK STATUS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := state.ParseStatus(args[2])
			if err != nil {
				return usageErrorf("%v", err)
			}
			err = e.taskAct(cmd, args, func(_ *state.State, _ *app.Node, t *state.Task) (state.Op, error) {
				return &state.TaskStatus{Task: t.ID, Status: st}, nil
			})
			if err != nil || !report {
				return err
			}
			return e.reportBack(cmd, args[0], args[1], &st, "")
		},
	}
	cmd.Flags().BoolVar(&report, "report", false, "also report the status back to the pursuance that handed the task off")
	return cmd
}

func newTaskAssignCmd(e *Env, assign bool) *cobra.Command {
	use, short := "assign P TASK WHO", "Assign a task to a member, or to a role as role:NAME"
	if !assign {
		use, short = "unassign P TASK WHO", "Take an assignee off a task"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(3, "P TASK WHO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.taskAct(cmd, args, func(s *state.State, _ *app.Node, t *state.Task) (state.Op, error) {
				who, err := app.ResolveAssignee(s, args[2])
				if err != nil {
					return nil, err
				}
				if assign {
					return &state.TaskAssign{Task: t.ID, Assignee: who}, nil
				}
				return &state.TaskUnassign{Task: t.ID, Assignee: who}, nil
			})
		},
	}
}

func newTaskCommentCmd(e *Env) *cobra.Command {
	var report bool
	var files []string
	cmd := &cobra.Command{
		Use:   "comment P TASK TEXT [--attach FILE]...",
		Short: "Comment on a task, with files attached to the comment (--attach)",
		Args:  exactArgs(3, "P TASK TEXT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, f := range files {
				// Before the comment is posted: a file that cannot be
				// attached stops it.
				if err := app.CheckAttachable(f); err != nil {
					return err
				}
			}
			res, err := e.act(cmd, args[0], func(s *state.State, n *app.Node) (state.Op, error) {
				t, err := app.ResolveTask(s, n.Me().ID, args[1])
				if err != nil {
					return nil, err
				}
				return &state.TaskComment{Task: t.ID, Text: args[2]}, nil
			})
			if err != nil {
				return err
			}
			if len(files) > 0 {
				if err := e.attachFiles(cmd, args[0], args[1], res.Event.ID().String(), files, nil); err != nil {
					return err
				}
			}
			if !report {
				return nil
			}
			return e.reportBack(cmd, args[0], args[1], nil, args[2])
		},
	}
	cmd.Flags().BoolVar(&report, "report", false, "also report the comment back to the pursuance that handed the task off")
	cmd.Flags().StringArrayVar(&files, "attach", nil, "attach `FILE` to the comment (repeat for more files; progress on stderr)")
	return cmd
}

func newTaskEditCmd(e *Env) *cobra.Command {
	var title, body, due, parent string
	cmd := &cobra.Command{
		Use:   "edit P TASK [--title T] [--body B] [--due D] [--parent TASK]",
		Short: "Edit a task's fields, or move it under another task (--parent root: to the top)",
		Args:  exactArgs(2, "P TASK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if !fl.Changed("title") && !fl.Changed("body") && !fl.Changed("due") && !fl.Changed("parent") {
				return usageErrorf("nothing to edit: give --title, --body, --due or --parent")
			}
			if fl.Changed("parent") && (fl.Changed("title") || fl.Changed("body") || fl.Changed("due")) {
				return usageErrorf("--parent moves the task; edit its fields in a separate command")
			}
			if due != "" {
				if err := state.CheckDue(due); err != nil {
					return usageErrorf("--due: %v", err)
				}
			}
			return e.taskAct(cmd, args, func(s *state.State, n *app.Node, t *state.Task) (state.Op, error) {
				if fl.Changed("parent") {
					m := &state.TaskMove{Task: t.ID}
					if parent != "root" && parent != "" {
						p, err := app.ResolveTask(s, n.Me().ID, parent)
						if err != nil {
							return nil, err
						}
						m.Parent = p.ID
					}
					return m, nil
				}
				op := &state.TaskEdit{Task: t.ID}
				if fl.Changed("title") {
					op.Title = &title
				}
				if fl.Changed("body") {
					op.Body = &body
				}
				if fl.Changed("due") {
					op.Due = &due
				}
				return op, nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&title, "title", "", "new title")
	f.StringVar(&body, "body", "", "new body (markdown)")
	f.StringVar(&due, "due", "", "new due date, YYYY-MM-DD (empty: none)")
	f.StringVar(&parent, "parent", "", "move under `TASK` (root: to the top)")
	return cmd
}

func newTaskArchiveCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "archive P TASK",
		Short: "Archive a task",
		Args:  exactArgs(2, "P TASK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.taskAct(cmd, args, func(_ *state.State, _ *app.Node, t *state.Task) (state.Op, error) {
				return &state.TaskArchive{Task: t.ID, Archived: true}, nil
			})
		},
	}
}
