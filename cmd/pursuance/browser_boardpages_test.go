package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserBoardPages: the board asks for what it shows (docs/web.md,
// "Paging"). With 55 new tasks, the board's reload asks the node for a
// board page (?per_status=50) and never for the whole list; the New
// column shows 50 cards under its count of 55, "Show 5 more" asks for the
// next page and puts the focus on the 51st card; the tree, which shows
// every task, asks for the whole list when it is opened.
func TestBrowserBoardPages(t *testing.T) {
	actx := newChromium(t, 1280, 900, 2*time.Minute)
	alice := quickUp(t, "Alice")
	tab, cancel := chromedp.NewContext(actx)
	defer cancel()
	pg := newPages(t, func() string { return "\n--- Alice's node:\n" + alice.stderr() })
	run, poll := pg.run, pg.poll
	run(tab, "log in", chromedp.Navigate(alice.login))
	poll(tab, "logged in", loggedIn)
	p, err := chromedp.Run(tab, callAPI("/pursuances", `{name: "Big Desk", template: "desk"}`, "pursuance"))
	if err != nil {
		t.Fatal(err)
	}
	p = strings.Trim(p, `"`)
	run(tab, "55 tasks", chromedp.Evaluate[chromedp.Void](`(async () => { for (let i = 0; i < 55; i++) await api("/p/`+p+`/tasks", {title: "Task " + i, body: "", visible_to: [], due: ""}); })()`, chromedp.EvalAwaitPromise))
	// What the page asks the node for, from here on.
	run(tab, "watch the requests", chromedp.Evaluate[chromedp.Void](`window.asked = []; const f0 = window.fetch; window.fetch = (u, o) => { window.asked.push(String(u)); return f0(u, o); }`))
	run(tab, "show it", chromedp.Evaluate[chromedp.Void](`current = "`+p+`"; loadPursuances()`))
	newCol := `document.querySelector("#col-New")`
	poll(tab, "50 of 55 cards", `(c => c && c.querySelectorAll(".card").length === 50 && c.querySelector("h3 .count").textContent.trim() === "55" && c.querySelector("button.more")?.textContent === "Show 5 more (50 of 55 shown)")(`+newCol+`)`)
	tasksAsked := `window.asked.filter(u => /\/tasks\?/.test(u))`
	poll(tab, "a board page, not the whole list", `(a => a.length > 0 && a.every(u => u.includes("per_status=50")))(`+tasksAsked+`)`)
	run(tab, "show more", press("#col-New button.more"))
	poll(tab, "55 cards, the 51st focused", `(c => c.querySelectorAll(".card").length === 55 && !c.querySelector("button.more") && document.activeElement === c.querySelectorAll(".card")[50])(`+newCol+`)`)
	poll(tab, "the next page asked", `(`+tasksAsked+`).some(u => u.includes("per_status=100"))`)
	run(tab, "the tree", view("tree"))
	poll(tab, "the whole list, in the tree", `(`+tasksAsked+`).some(u => !u.includes("per_status")) && document.querySelectorAll('#tree-list [role="treeitem"]').length === 55`)
}
