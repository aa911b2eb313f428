package cli

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/state"
)

// Attachments: `task attach`, `task files`, `task fetch` (docs/attachments.md).

// killAfterEnv names the test hook that kills this process with SIGKILL
// once a transfer has moved that many blobs: how the scripts interrupt a
// transfer at a known point (cmd/pursuance/testdata/script/attach.txtar).
// Nothing else reads it.
const killAfterEnv = "PURSUANCE_TEST_KILL_AFTER_BLOBS"

// transferProgress returns a function printing a transfer's progress on stderr:
// one line rewritten in place on a terminal, a line per chunk otherwise;
// and, for the test hook, the kill.
func (e *Env) transferProgress(verb string) app.Progress {
	tty := false
	if f, ok := e.Stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	kill, _ := strconv.Atoi(os.Getenv(killAfterEnv))
	return func(t app.Transfer) {
		if tty {
			// A bar, rewritten in place; the last one stays.
			const width = 30
			frac := 1.0
			if t.Size > 0 {
				frac = float64(t.Bytes) / float64(t.Size)
			}
			full := int(frac * width)
			end := "\x1b[K\r"
			if t.Done == t.Chunks {
				end = "\x1b[K\n"
			}
			fmt.Fprintf(e.Stderr, "%s %s [%s%s] %3.0f%% %.1f/%.1f MiB%s", verb, t.File, strings.Repeat("#", full), strings.Repeat("-", width-full), frac*100, float64(t.Bytes)/(1<<20), float64(t.Size)/(1<<20), end)
		} else {
			fmt.Fprintf(e.Stderr, "%s %s: chunk %d/%d, %.1f/%.1f MiB\n", verb, t.File, t.Done, t.Chunks, float64(t.Bytes)/(1<<20), float64(t.Size)/(1<<20))
		}
		if kill > 0 && t.Sent >= kill {
			p, _ := os.FindProcess(os.Getpid())
			p.Kill()
			select {}
		}
	}
}

// attachJSON is one file in `task attach --json`: the contract's keys
// (docs/cli.md), and what the upload took.
type attachJSON struct {
	File          string `json:"file"`
	Name          string `json:"name"`
	Size          uint64 `json:"size"`
	SHA256        string `json:"sha256"`
	Chunks        int    `json:"chunks"`
	Uploaded      int    `json:"uploaded"`
	UploadedBytes int64  `json:"uploaded_bytes"`
}

// attachFiles attaches the files at paths to task taskRef of p, or to its
// comment commentRef when it is not empty, reporting each on stderr and
// appending it to out when out is not nil.
func (e *Env) attachFiles(cmd *cobra.Command, p, taskRef, commentRef string, paths []string, out *[]attachJSON) error {
	return e.withState(cmd, p, true, func(n *app.Node, s *state.State) error {
		for _, path := range paths {
			var res app.AttachResult
			var err error
			if commentRef != "" {
				res, err = n.AttachToComment(cmd.Context(), s.Pursuance(), taskRef, commentRef, path, e.transferProgress("attach"))
			} else {
				res, err = n.Attach(cmd.Context(), s.Pursuance(), taskRef, path, e.transferProgress("attach"))
			}
			if err != nil {
				if commentRef != "" {
					return fmt.Errorf("%w (to attach it to the comment, once fixed: `pursuance task attach %s %s %s --comment %s`)", err, p, taskRef, path, commentRef)
				}
				return err
			}
			fmt.Fprintf(e.Stderr, "Attached %s: %d chunks, %d uploaded (%d bytes), %d already on the relays.\n", res.File.Name, res.Chunks, res.Sent, res.BlobSent, res.Cached)
			if out != nil {
				*out = append(*out, attachJSON{File: res.Event.ID().String(), Name: res.File.Name, Size: res.File.Size,
					SHA256: hex.EncodeToString(res.File.SHA256[:]), Chunks: res.Chunks, Uploaded: res.Sent, UploadedBytes: res.BlobSent})
			}
		}
		return nil
	})
}

func newTaskAttachCmd(e *Env) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   "attach P TASK FILE...",
		Short: "Attach files to a task: encrypted for the task's readers, put on the relays (progress on stderr)",
		Long: `Attach files to a task. Each file is cut into chunks, each chunk encrypted
for the task's readers and put on the pursuance's relays, which learn only
padded sizes and hashes; the file's name, type, size and keys travel
sealed in the task's event. A file is at most 100 MiB; a pursuance holds
at most 2 GiB of files. Run again after an interruption: only what the
relays lack is sent. Prints each file's ID.`,
		Example: `  pursuance task attach desk 4f2a memo.pdf scans.zip
  pursuance task attach desk 4f2a memo.pdf --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 3 {
				return usageErrorf("%q takes P TASK FILE..., got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var out []attachJSON
			if err := e.attachFiles(cmd, args[0], args[1], comment, args[2:], &out); err != nil {
				return err
			}
			if e.json {
				return e.printJSON(out)
			}
			for _, f := range out {
				fmt.Fprintln(e.Stdout, f.File)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "attach the files to the task's comment `C` (its ID or a unique prefix), shown under it")
	return cmd
}

// fileJSON is one file in `task files --json`.
type fileJSON struct {
	File   string `json:"file"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   uint64 `json:"size"`
	SHA256 string `json:"sha256"`
	Held   bool   `json:"held"`
	Author string `json:"author"`
	// Comment: the comment the file is attached to, if any.
	Comment string `json:"comment,omitempty"`
}

func newTaskFilesCmd(e *Env) *cobra.Command {
	var fetch bool
	cmd := &cobra.Command{
		Use:   "files P TASK [--fetch]",
		Short: "List a task's files (held: all its chunks are on this home); --fetch gets them ahead of time",
		Example: `  pursuance task files desk 4f2a
  pursuance task files desk 4f2a --json
  pursuance task files desk 4f2a --fetch`,
		Args: exactArgs(2, "P TASK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				files, err := n.Files(cmd.Context(), s.Pursuance(), args[1])
				if err != nil {
					return err
				}
				if fetch {
					// Ahead of time: every chunk into the home's blob
					// cache, verified, so that opening a file later
					// needs no relay.
					for i, f := range files {
						if f.Held {
							continue
						}
						if _, _, err := n.FetchTo(cmd.Context(), s.Pursuance(), args[1], f.ID.String(), io.Discard, e.transferProgress("fetch")); err != nil {
							return err
						}
						files[i].Held = true
					}
				}
				out := make([]fileJSON, 0, len(files))
				for _, f := range files {
					fj := fileJSON{File: f.ID.String(), Name: f.Name, Type: f.Type, Size: f.Size,
						SHA256: hex.EncodeToString(f.SHA256[:]), Held: f.Held, Author: s.NameOf(f.Author)}
					if !f.Comment.IsZero() {
						fj.Comment = f.Comment.String()
					}
					out = append(out, fj)
				}
				if e.json {
					return e.printJSON(out)
				}
				if len(out) == 0 {
					fmt.Fprintln(e.Stderr, "No files.")
				}
				for _, f := range out {
					held := ""
					if f.Held {
						held = "  (held)"
					}
					fmt.Fprintf(e.Stdout, "%s  %s  %d bytes  %s%s\n", f.File[:12], f.Name, f.Size, f.Author, held)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&fetch, "fetch", false, "fetch and verify every file's chunks into this home first (ahead of time: opening them later needs no relay)")
	return cmd
}

func newTaskFetchCmd(e *Env) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:     "fetch P TASK FILE_ID --out PATH",
		Short:   "Fetch a task's file, verify every chunk and the whole, decrypt it to PATH (resumes)",
		Example: `  pursuance task fetch desk 4f2a 9c1e --out memo.pdf`,
		Args:    exactArgs(3, "P TASK FILE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErrorf("give --out PATH: where to write the file")
			}
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				tr, err := n.Fetch(cmd.Context(), s.Pursuance(), args[1], args[2], out, e.transferProgress("fetch"))
				if err != nil {
					return err
				}
				fmt.Fprintf(e.Stderr, "Fetched %s: %d chunks, %d from this home's cache, %d from the relays (%d bytes); SHA-256 verified.\n", out, tr.Chunks, tr.Cached, tr.Sent, tr.BlobSent)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "where to write the file (`PATH`; written to PATH.part, renamed when verified)")
	return cmd
}
