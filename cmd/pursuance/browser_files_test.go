package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserFiles: attachments in the task panel, in a real browser
// against a real node and relay (docs/web.md, "Files"). Alice opens a
// task, attaches a PNG with the file picker and a PDF by dropping it on
// the panel; both are listed; the PNG's preview is an image the browser
// decoded, the PDF's an iframe of this origin served as a PDF; and the
// relay's data holds neither file's bytes nor names.
func TestBrowserFiles(t *testing.T) {
	actx := newChromium(t, 1280, 900, 2*time.Minute)
	relayDir := t.TempDir()
	rp := startRelay(t, relayDir)
	t.Cleanup(func() {
		rp.cmd.Process.Signal(syscall.SIGTERM)
		rp.cmd.Wait()
	})
	env := append(os.Environ(), "PURSUANCE_PASSPHRASE=files")
	home := filepath.Join(t.TempDir(), "alice")
	pursuance(t, env, "--home", home, "id", "new", "--name", "Alice", "--insecure-test-kdf")
	pursuance(t, env, "--home", home, "create", "--name", "Desk", "--relay", rp.url)
	pursuance(t, env, "--home", home, "task", "add", "Desk", "--title", "Check the scans")
	// A 64×48 PNG, a gradient, and a small PDF.
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := range 64 {
		for y := range 48 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 200, 255})
		}
	}
	var pngBytes bytes.Buffer
	if err := png.Encode(&pngBytes, img); err != nil {
		t.Fatal(err)
	}
	pngPath := filepath.Join(t.TempDir(), "scan-of-the-ledger.png")
	if err := os.WriteFile(pngPath, pngBytes.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	alice := runUp(t, "alice", home, env)
	tab, cancel := chromedp.NewContext(actx)
	defer cancel()
	pg := newPages(t, func() string { return "\n--- the node:\n" + alice.stderr() })
	run, poll := pg.run, pg.poll
	run(tab, "log in", chromedp.Navigate(alice.login))
	poll(tab, "logged in", `location.pathname === "/" && (m => m && m.textContent !== "")(document.querySelector("#me")) && document.querySelectorAll(".card").length === 1`)
	run(tab, "open the task", chromedp.Evaluate[chromedp.Void](`document.querySelector(".card").click()`))
	poll(tab, "the panel, no files", `!document.querySelector("#detail").classList.contains("hidden") && document.querySelector("#d-files").children.length === 0`)

	run(tab, "pick the PNG", chromedp.SetUploadFiles(chromedp.CSS(`#d-file`), []string{pngPath}))
	poll(tab, "the PNG listed", `[...document.querySelectorAll("#d-files li")].some(li => li.textContent.includes("scan-of-the-ledger.png"))`)
	run(tab, "drop a PDF", chromedp.Evaluate[chromedp.Void](`(() => {
		const pdf = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";
		const dt = new DataTransfer();
		dt.items.add(new File([pdf], "source-memo.pdf", {type: "application/pdf"}));
		const zone = document.querySelector("#d-drop");
		zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
		zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
	})()`))
	poll(tab, "both listed", `document.querySelectorAll("#d-files li").length === 2 && [...document.querySelectorAll("#d-files li")].some(li => li.textContent.includes("source-memo.pdf"))`)
	pg.shot(tab, "files-listed")

	run(tab, "preview the PNG", press(`#d-files li:first-child button`))
	poll(tab, "the image decoded", `(i => i && i.complete && i.naturalWidth === 64 && i.naturalHeight === 48)(document.querySelector("#d-preview img"))`)
	pg.shot(tab, "files-preview-png")
	run(tab, "preview the PDF", press(`#d-files li:last-child button`))
	poll(tab, "the PDF's frame", `(f => f && f.src.includes("/files/"))(document.querySelector("#d-preview iframe"))`)
	run(tab, "read the frame's source", chromedp.Evaluate[chromedp.Void](`fetch(document.querySelector("#d-preview iframe").src).then(async r => { window.pdfSeen = r.headers.get("content-type") + " " + (await r.text()).slice(0, 8); })`))
	poll(tab, "served as a PDF", `window.pdfSeen === "application/pdf %PDF-1.4"`)

	// A comment with a file: the file is listed under the comment, not
	// among the task's own files, and it opens.
	notesPath := filepath.Join(t.TempDir(), "ledger-notes.txt")
	if err := os.WriteFile(notesPath, []byte("the ledger's page 4 does not add up"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(tab, "write a comment", chromedp.SendKeys(chromedp.CSS(`#d-comment textarea`), "Notes on the ledger"))
	run(tab, "pick its file", chromedp.SetUploadFiles(chromedp.CSS(`#d-comment-file`), []string{notesPath}))
	run(tab, "send the comment", press(`#d-comment button[type=submit]`))
	poll(tab, "the file under its comment", `[...document.querySelectorAll("#d-comments li")].some(li => li.textContent.includes("Notes on the ledger") && [...li.querySelectorAll("ul.files li")].some(f => f.textContent.includes("ledger-notes.txt")))`)
	poll(tab, "the task's own files unchanged", `document.querySelectorAll("#d-files li").length === 2 && !document.querySelector("#d-files").textContent.includes("ledger-notes")`)
	pg.shot(tab, "files-on-comment")
	run(tab, "open the comment's file", chromedp.Evaluate[chromedp.Void](`fetch(document.querySelector("#d-comments ul.files a").href).then(async r => { window.notesSeen = await r.text(); })`))
	poll(tab, "its content", `window.notesSeen === "the ledger's page 4 does not add up"`)

	// The relay holds the blobs, not the files.
	var data []byte
	filepath.WalkDir(relayDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			data = append(data, b...)
		}
		return nil
	})
	for _, secret := range []string{"scan-of-the-ledger", "source-memo", "/Type/Catalog", string(pngBytes.Bytes()[16:48])} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the relay's data holds %q", strings.ToValidUTF8(secret, "?"))
		}
	}
}
