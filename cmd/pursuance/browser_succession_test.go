package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserSuccession: claiming and completing a succession in the web
// UI, in a real browser (Debian's chromium) against a real node (`pursuance
// up`) and a real relay on loopback (docs/succession.md, docs/web.md
// "Succession"). Ann founds a desk; Ben and Cy join as researchers.
// PURSUANCE_CLOCK_OFFSET moves the clocks the homes sign with, to rehearse
// weeks in seconds. Ben's node runs 40 days on, and only his clock says
// so: his Members view shows "Claim editor" (the desk names researchers as
// editor's successor) disabled, with the rules' reason (Ann is active).
// Cy writes 40 days on; after a sync the button is enabled, and Ben
// claims. The completion is shown disabled until the waiting period is
// over. Eight days later by both clocks (Ben's node restarted there), it
// is enabled; Ben completes and holds editor.
func TestBrowserSuccession(t *testing.T) {
	actx := newChromium(t, 1280, 900, 2*time.Minute)
	rp := startRelay(t, t.TempDir())
	t.Cleanup(func() {
		rp.cmd.Process.Signal(syscall.SIGTERM)
		rp.cmd.Wait()
	})
	base := append(os.Environ(), "PURSUANCE_PASSPHRASE=succession")
	at := func(offset string) []string { return append(slices.Clone(base), "PURSUANCE_CLOCK_OFFSET="+offset) }
	dir := t.TempDir()
	ann, ben, cy := filepath.Join(dir, "ann"), filepath.Join(dir, "ben"), filepath.Join(dir, "cy")
	for _, h := range []struct{ home, name string }{{ann, "Ann"}, {ben, "Ben"}, {cy, "Cy"}} {
		pursuance(t, base, "--home", h.home, "id", "new", "--name", h.name, "--insecure-test-kdf")
	}
	pursuance(t, base, "--home", ann, "create", "--name", "Desk", "--relay", rp.url)
	code := strings.TrimSpace(pursuance(t, base, "--home", ann, "invite", "Desk", "--role", "researcher", "--uses", "2"))
	pursuance(t, base, "--home", ann, "sync", "Desk")
	pursuance(t, base, "--home", ben, "join", code)
	pursuance(t, base, "--home", cy, "join", code)
	pursuance(t, at("40d"), "--home", ben, "task", "add", "Desk", "--title", "Still here")
	pursuance(t, at("40d"), "--home", ben, "sync", "Desk")

	node := runUp(t, "Ben", ben, at("40d"))
	tab, cancel := chromedp.NewContext(actx)
	defer cancel()
	pg := newPages(t, func() string { return "\n--- Ben's node:\n" + node.stderr() })
	run, poll := pg.run, pg.poll
	open := func() {
		t.Helper()
		run(tab, "log in", chromedp.Navigate(node.login))
		poll(tab, "logged in", loggedIn)
		run(tab, "the Members view", view("members"))
	}
	button := `document.querySelector("#succession-actions button")`
	open()
	poll(tab, "the claim, disabled with the reason", `(b => b && b.textContent === "Claim editor" && b.disabled && b.parentElement.textContent.includes("Ann, who holds \"editor\", is active"))(`+button+`)`)
	pg.shot(tab, "succession-claim-disabled")

	// Cy's clock agrees: Ann is inactive.
	pursuance(t, at("40d"), "--home", cy, "task", "add", "Desk", "--title", "Me too")
	pursuance(t, at("40d"), "--home", cy, "sync", "Desk")
	run(tab, "sync", press("#sync"))
	poll(tab, "the claim, enabled", `(b => b && b.textContent === "Claim editor" && !b.disabled && !b.parentElement.textContent.includes("Not now"))(`+button+`)`)
	run(tab, "claim", press(`#succession-actions button`))
	poll(tab, "the completion, disabled until the wait is over", `(b => b && b.textContent === "Complete the claim on editor" && b.disabled && b.parentElement.textContent.includes("waits until"))([...document.querySelectorAll("#succession-actions button")].find((b) => b.textContent.startsWith("Complete")))`)
	poll(tab, "the claim listed", `document.querySelector("#claims").textContent.includes("editor claimed by Ben (you)")`)
	pg.shot(tab, "succession-complete-disabled")

	// Eight days on by Ben's clock and Cy's.
	node.cmd.Process.Signal(syscall.SIGTERM)
	node.cmd.Wait()
	pursuance(t, at("48d"), "--home", cy, "sync", "Desk")
	pursuance(t, at("48d"), "--home", cy, "task", "add", "Desk", "--title", "A week later")
	pursuance(t, at("48d"), "--home", cy, "sync", "Desk")
	pursuance(t, at("48d"), "--home", ben, "task", "add", "Desk", "--title", "Me too, a week later")
	pursuance(t, at("48d"), "--home", ben, "sync", "Desk")
	node = runUp(t, "Ben", ben, at("48d"))
	open()
	complete := `[...document.querySelectorAll("#succession-actions button")].find((b) => b.textContent === "Complete the claim on editor")`
	poll(tab, "the completion, enabled", `(b => b && !b.disabled)(`+complete+`)`)
	run(tab, "complete", press(`#succession-actions li:last-child button`))
	poll(tab, "Ben holds editor", `[...document.querySelectorAll("#members tbody tr")].some((tr) => tr.cells[0].textContent === "Ben" && tr.cells[1].textContent.includes("editor")) && document.querySelectorAll("#succession-actions button").length === 0`)
	pg.shot(tab, "succession-completed")
}
