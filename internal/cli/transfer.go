package cli

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/activity"
	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

func newLogCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "log P",
		Short: "The audit log: every event, rejected ones too, with the reason",
		Args:  exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(_ *app.Node, s *state.State) error {
				type entry struct {
					ID     event.ID           `json:"id"`
					Author identity.PublicKey `json:"author"`
					Kind   string             `json:"kind"`
					Seq    uint64             `json:"seq"`
					Status string             `json:"status"`
					Reason string             `json:"reason"`
					// Time is the author's claimed time (RFC 3339, UTC),
					// Target the task the event is about (absent if none),
					// Text the event as a sentence (package activity).
					Time   string    `json:"time"`
					Target *event.ID `json:"target,omitempty"`
					Text   string    `json:"text"`
				}
				log := s.Log()
				d := activity.NewDescriber(s)
				out := make([]entry, len(log))
				for i, en := range log {
					st := "accepted"
					if !en.Accepted {
						st = "rejected"
					}
					l := d.Describe(en)
					out[i] = entry{en.ID, en.Author, en.Kind.String(), en.Seq, st, en.Reason,
						time.UnixMilli(int64(en.Time)).UTC().Format(time.RFC3339), nil, l.Sentence}
					if !l.Task.IsZero() {
						out[i].Target = &l.Task
					}
				}
				if e.json {
					return e.printJSON(out)
				}
				var b bytes.Buffer
				for i, en := range log {
					when := time.UnixMilli(int64(en.Time)).UTC().Format("2006-01-02 15:04")
					fmt.Fprintf(&b, "%s  %s  %-14s %-12s %s", en.ID.Short(), when, en.Kind, s.NameOf(s.MemberOf(en.Author)), out[i].Status)
					if en.Reason != "" {
						fmt.Fprintf(&b, ": %s", en.Reason)
					}
					if en.Note != "" {
						fmt.Fprintf(&b, " (%s)", en.Note)
					}
					fmt.Fprintf(&b, "  %s", out[i].Text)
					b.WriteByte('\n')
				}
				_, err := e.Stdout.Write(b.Bytes())
				return err
			})
		},
	}
}

func newExportCmd(e *Env) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export P --out FILE",
		Short: "Write a pursuance's whole log to a file, for another home to import",
		Long: `Write every event of the pursuance (signed, as received) to FILE, each
sealed in an envelope under the current group key: the file shows nothing
but sizes to whoever holds it without the key. Another member imports it
with ` + "`pursuance import FILE`" + `, a newcomer with ` + "`pursuance join CODE --log FILE`" + `;
either verifies every event, so the file needs no more trust than a relay.`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErrorf("missing --out FILE")
			}
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				// Written beside, then renamed: an interrupted export
				// leaves no half file under the name.
				tmp := out + ".partial"
				f, err := os.Create(tmp)
				if err != nil {
					return err
				}
				count, err := n.Export(cmd.Context(), s.Pursuance(), f)
				if err == nil {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err == nil {
					err = os.Rename(tmp, out)
				}
				if err != nil {
					os.Remove(tmp)
					return err
				}
				fmt.Fprintf(e.Stderr, "Wrote %d events of %q to %s.\n", count, s.Name(), out)
				if e.json {
					return e.printJSON(struct {
						Events int    `json:"events"`
						Out    string `json:"out"`
					}{count, out})
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the `FILE` to write")
	return cmd
}

func newImportCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Verify and store the events of an exported log",
		Args:  exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			n, err := e.openNode(cmd.Context())
			if err != nil {
				return err
			}
			defer n.Close()
			res, err := n.Import(cmd.Context(), f)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(struct {
					Read       int `json:"read"`
					Received   int `json:"received"`
					Rejected   int `json:"rejected"`
					Pending    int `json:"pending"`
					Unreadable int `json:"unreadable"`
				}{res.Read, res.Stored, res.Rejected, res.Pending, res.Unreadable})
			}
			e.reportImport(res)
			return nil
		},
	}
}

// reportImport tells, on stderr, what an import did.
func (e *Env) reportImport(res app.ImportResult) {
	fmt.Fprintf(e.Stderr, "Read %d events: %d new, %d already here, %d refused, %d waiting for missing predecessors",
		res.Read, res.Stored, res.Duplicates, res.Rejected, res.Pending)
	if res.Unreadable > 0 {
		fmt.Fprintf(e.Stderr, ", %d sealed under keys you do not hold", res.Unreadable)
	}
	fmt.Fprintln(e.Stderr, ".")
}
