package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// newChromium starts Debian's chromium for a browser test, window w×h,
// for at most limit, and returns its allocator context (each
// chromedp.NewContext of it is a tab). It skips t under -short and where
// chromium is not installed (.ci/run installs it).
func newChromium(t *testing.T, w, h int, limit time.Duration) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real nodes and a browser")
	}
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (Debian's chromium package; .ci/run installs it): " + t.Name() + " needs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(w, h))...)
	t.Cleanup(acancel)
	return actx
}

// nightDesk starts the node of Alice (a new home, passphrase pass), logs
// a tab of actx in and founds "Night Desk" from the page: where the board
// and calendar tests start. The tab closes with the test.
func nightDesk(t *testing.T, actx context.Context, pass string) (*upNode, context.Context, pages) {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	env := append(os.Environ(), "PURSUANCE_PASSPHRASE="+pass)
	pursuance(t, env, "--home", home, "id", "new", "--name", "Alice", "--insecure-test-kdf")
	alice := runUp(t, "Alice", home, env)
	tab, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	pg := newPages(t, func() string { return "\n--- Alice's node:\n" + alice.stderr() })
	pg.run(tab, "log in", chromedp.Navigate(alice.login))
	pg.poll(tab, "logged in", loggedIn)
	pg.run(tab, "new", press("#new-pursuance"))
	pg.poll(tab, "the found form", `!document.querySelector("#found").classList.contains("hidden")`)
	pg.run(tab, "found", chromedp.SendKeys(chromedp.CSS(`#found input[name="name"]`), "Night Desk"), press("#found button[type=submit]"))
	pg.poll(tab, "the pursuance", `document.querySelector("#pursuance").selectedOptions[0]?.textContent === "Night Desk"`)
	return alice, tab, pg
}

// pages is what the browser tests do to a tab: each step fails the test
// with what the nodes logged (diag) and, for a wait, what the page shows.
type pages struct {
	t     *testing.T
	diag  func() string
	shots string // PURSUANCE_SCREENSHOTS: where shot saves, "" for nowhere
}

func newPages(t *testing.T, diag func() string) pages {
	return pages{t: t, diag: diag, shots: os.Getenv("PURSUANCE_SCREENSHOTS")}
}

// run does steps in tab.
func (p pages) run(tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		p.t.Fatalf("%s: %v%s", what, err, p.diag())
	}
}

// pollWait bounds a wait for what a person would look for: it covers a
// node's round under -race on a loaded two-core machine.
const pollWait = 20 * time.Second

// poll waits until js is true in tab, across the page's own navigations.
func (p pages) poll(tab context.Context, what, js string) {
	p.t.Helper()
	deadline := time.Now().Add(pollWait)
	var err error
	for {
		err = chromedp.Do(tab, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil || time.Now().After(deadline) || !navigated(err) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		page, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("main").innerText + " | error: " + document.querySelector("#error").textContent`))
		p.t.Fatalf("%s: %v; the page shows: %.2000s%s", what, err, page, p.diag())
	}
}

// shot saves a screenshot of tab as name.png, when screenshots are asked
// for.
func (p pages) shot(tab context.Context, name string) {
	p.t.Helper()
	if p.shots == "" {
		return
	}
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(p.shots, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// press clicks the visible control sel from inside the page, where finding
// and clicking are one step: a header that reflows (the sync status
// changes every second) cannot move it between the two.
func press(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`(() => { const e = document.querySelector(` + "`" + sel + "`" + `); if (!e || e.getClientRects().length === 0) throw new Error("no visible ` + strings.ReplaceAll(sel, `"`, `'`) + `"); e.click(); })()`)
}

// view opens the view name from the header's nav.
func view(name string) chromedp.Action[chromedp.Void] {
	return press(`nav button[data-view="` + name + `"]`)
}

// loggedIn is true once the page is logged in and shows a pursuance: the
// page's own state, not its address, which a hash route (#/board, a
// task's #/p/…/t/…) changes under the test's feet.
const loggedIn = `location.pathname === "/" && !!document.querySelector("#me")?.textContent && document.querySelector("#pursuance")?.options.length > 0`
