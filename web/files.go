package web

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/attach"
	"github.com/pursuance/pursuance/state"
)

// Attachments in the UI (docs/attachments.md, docs/web.md "Files"): the
// task panel lists a task's files, takes new ones from a file picker or a
// drop (files.js), and previews images and PDFs, decrypted by this node:
// nothing leaves the member's machine in the clear.

// fileJSON is one file of a task in the task panel.
type fileJSON struct {
	File   string `json:"file"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   uint64 `json:"size"`
	SHA256 string `json:"sha256"`
	Held   bool   `json:"held"`
	Author string `json:"author"`
	Time   string `json:"time"`
	// Preview: the file's type is one the page shows inline (an image or
	// a PDF), from /files/…
	Preview string `json:"preview"`
	// Comment: the task's comment the file is attached to (shown under
	// it), or empty for a file of the task.
	Comment string `json:"comment,omitempty"`
}

// inline are the types a file is served as, for a preview; any other is
// served as a download (never a type the browser would run: HTML, SVG).
var inline = map[string]string{
	"image/png": "image", "image/jpeg": "image", "image/gif": "image", "image/webp": "image",
	"application/pdf": "pdf",
}

// filesOf is the files of task t for the task panel.
func filesOf(r *http.Request, n *app.Node, st *state.State, t *state.Task) ([]fileJSON, error) {
	fs, err := n.Files(r.Context(), st.Pursuance(), t.ID.String())
	if err != nil {
		return nil, err
	}
	out := []fileJSON{}
	for _, f := range fs {
		fj := fileJSON{File: f.ID.String(), Name: f.Name, Type: f.Type, Size: f.Size, SHA256: hex.EncodeToString(f.SHA256[:]),
			Held: f.Held, Author: st.NameOf(f.Author), Time: time.UnixMilli(int64(f.Time)).UTC().Format("2006-01-02 15:04"), Preview: inline[f.Type]}
		if c, ok := t.FileComment(f.File); ok {
			fj.Comment = c.ID.String()
		}
		out = append(out, fj)
	}
	return out, nil
}

// attachFile: POST /api/p/{p}/tasks/{t}/files?name=NAME[&comment=C], the
// file's bytes as the body (with a Content-Length, at most
// attach.MaxFileSize); with comment, the file is attached to that comment
// of the task.
func (s *Server) attachFile(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength < 0 {
		writeErr(w, http.StatusLengthRequired, errors.New("send the file with its length"))
		return
	}
	if r.ContentLength > attach.MaxFileSize {
		writeErr(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the file is %d bytes, over the limit of %d (%d MiB) per attachment: split it", r.ContentLength, attach.MaxFileSize, attach.MaxFileSize>>20))
		return
	}
	name := filepath.Base(r.URL.Query().Get("name"))
	s.api(func(r *http.Request, n *app.Node) (any, error) {
		st, err := stateOf(r, n)
		if err != nil {
			return nil, err
		}
		body := http.MaxBytesReader(w, r.Body, attach.MaxFileSize)
		var res app.AttachResult
		if c := r.URL.Query().Get("comment"); c != "" {
			res, err = n.AttachReaderToComment(r.Context(), st.Pursuance(), r.PathValue("t"), c, name, body, r.ContentLength, nil)
		} else {
			res, err = n.AttachReader(r.Context(), st.Pursuance(), r.PathValue("t"), name, body, r.ContentLength, nil)
		}
		if err != nil {
			return nil, err
		}
		fj := fileJSON{File: res.Event.ID().String(), Name: res.File.Name, Type: res.File.Type, Size: res.File.Size, SHA256: hex.EncodeToString(res.File.SHA256[:]), Held: true}
		if !res.File.Comment.IsZero() {
			fj.Comment = res.File.Comment.String()
		}
		return fj, nil
	})(w, r)
}

// fileTimeout bounds fetching and serving one file.
const fileTimeout = 5 * time.Minute

// fileContent: GET /files/{p}/{t}/{f}, the decrypted file, for the page
// of this origin only: a preview (an img's or an iframe's source) carries
// the session's cookie but not its token, so the request must say, by
// the browser's Sec-Fetch-Site, that it comes from this origin, and the
// answer may be embedded by this origin alone.
func (s *Server) fileContent(w http.ResponseWriter, r *http.Request) {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		writeErr(w, http.StatusForbidden, errors.New("files are served to this UI's own pages only"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), fileTimeout)
	defer cancel()
	n, err := s.Open(ctx)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	defer n.Close()
	st, err := stateOf(r.WithContext(ctx), n)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	// Fetched and verified whole first (into the blob cache), then
	// served from the cache: what the browser gets is the checked file.
	_, f, err := n.FetchTo(ctx, st.Pursuance(), r.PathValue("t"), r.PathValue("f"), io.Discard, nil)
	if err != nil {
		writeErr(w, http.StatusBadGateway, err)
		return
	}
	h := w.Header()
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'self'")
	fileHeaders(h, f)
	if _, _, err := n.FetchTo(ctx, st.Pursuance(), r.PathValue("t"), r.PathValue("f"), w, nil); err != nil {
		// The headers are sent: the body, short of its Content-Length,
		// tells the browser it failed.
		return
	}
}

// fileHeaders sets what a file is served as: inline for the preview
// types, a download for every other.
func fileHeaders(h http.Header, f state.File) {
	h.Set("Content-Length", strconv.FormatUint(f.Size, 10))
	if _, ok := inline[f.Type]; ok {
		h.Set("Content-Type", f.Type)
		h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": f.Name}))
		return
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
}
