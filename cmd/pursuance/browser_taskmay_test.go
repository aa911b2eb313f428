package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserTaskPermissions checks that the task dialog disables what the
// charter forbids, with the rules' reason (docs/web.md, "What the charter
// forbids"). Ann founds a desk and invites Ben as a researcher, who may
// file tasks and comment, set the status of tasks assigned to him only,
// and neither edit, archive nor assign. In Ben's page: the new-task form
// is enabled; on Ann's task, Edit, Archive, the status and Assign are
// disabled, each with "Not allowed: …", and commenting is not; on the task
// Ann assigned to him the status is enabled. Ann's own page, as editor,
// disables nothing.
func TestBrowserTaskPermissions(t *testing.T) {
	actx := newChromium(t, 1280, 900, 2*time.Minute)
	rp := startRelay(t, t.TempDir())
	t.Cleanup(func() {
		rp.cmd.Process.Signal(syscall.SIGTERM)
		rp.cmd.Wait()
	})
	env := append(os.Environ(), "PURSUANCE_PASSPHRASE=task may")
	dir := t.TempDir()
	ann, ben := filepath.Join(dir, "ann"), filepath.Join(dir, "ben")
	for _, h := range []struct{ home, name string }{{ann, "Ann"}, {ben, "Ben"}} {
		pursuance(t, env, "--home", h.home, "id", "new", "--name", h.name, "--insecure-test-kdf")
	}
	pursuance(t, env, "--home", ann, "create", "--name", "Desk", "--relay", rp.url)
	code := strings.TrimSpace(pursuance(t, env, "--home", ann, "invite", "Desk", "--role", "researcher"))
	pursuance(t, env, "--home", ann, "sync", "Desk")
	pursuance(t, env, "--home", ben, "join", code)
	pursuance(t, env, "--home", ann, "sync", "Desk")
	pursuance(t, env, "--home", ann, "task", "add", "Desk", "--title", "Check the memo", "--visible-to", "researcher")
	pursuance(t, env, "--home", ann, "task", "add", "Desk", "--title", "Call the source", "--visible-to", "researcher", "--assign", "Ben")
	pursuance(t, env, "--home", ann, "sync", "Desk")
	pursuance(t, env, "--home", ben, "sync", "Desk")

	for _, who := range []struct {
		name, home string
		editor     bool
	}{{"Ben", ben, false}, {"Ann", ann, true}} {
		node := runUp(t, who.name, who.home, env)
		tab, cancel := chromedp.NewContext(actx)
		pg := newPages(t, func() string { return "\n--- " + who.name + "'s node:\n" + node.stderr() })
		run, poll := pg.run, pg.poll
		run(tab, "log in", chromedp.Navigate(node.login))
		poll(tab, "the board", loggedIn+` && document.querySelectorAll("#columns .card").length === 2`)
		poll(tab, "the new-task form, enabled", `!document.querySelector("#new-task button[type=submit]").disabled && !document.querySelector("#new-task input[name=title]").disabled`)
		openTask := func(title string) {
			t.Helper()
			run(tab, "open "+title, chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#columns .card")].find((c) => c.textContent.includes("`+title+`")).click()`))
			poll(tab, title+", open", `!document.querySelector("#detail").classList.contains("hidden") && document.querySelector("#d-title").textContent === "`+title+`"`)
		}
		// why: the control is disabled and its reason is beside it, or it is
		// enabled with no reason.
		why := func(sel string, allowed bool) string {
			if allowed {
				return `(b => !b.disabled && !document.getElementById(b.getAttribute("aria-describedby") || "none"))(document.querySelector("` + sel + `"))`
			}
			return `(b => b.disabled && (document.getElementById(b.getAttribute("aria-describedby")) || {}).textContent?.startsWith("Not allowed: "))(document.querySelector("` + sel + `"))`
		}
		openTask("Check the memo")
		poll(tab, "Edit, Archive, status and Assign as the charter says; Comment allowed", strings.Join([]string{
			why("#d-edit-open", who.editor), why("#d-archive", who.editor), why("#d-status", who.editor),
			why("#d-assign button[type=submit]", who.editor), why("#d-comment button[type=submit]", true),
			`!document.querySelector("#d-comment textarea").disabled`,
			`document.querySelector("#d-assign select").disabled === ` + map[bool]string{true: "false", false: "true"}[who.editor],
		}, " && "))
		if !who.editor {
			pg.shot(tab, "task-permissions-researcher")
		}
		run(tab, "close", press("#close"))
		openTask("Call the source")
		poll(tab, "the status of his own task, enabled", why("#d-status", true)+" && "+why("#d-edit-open", who.editor))
		cancel()
		node.cmd.Process.Signal(syscall.SIGTERM)
		node.cmd.Wait()
	}
}
