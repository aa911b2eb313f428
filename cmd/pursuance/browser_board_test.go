package main

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestBrowserBoard: the board's hands, in chromium against a real node.
// A card dragged to another column moves there (the page's own drag
// events, with a DataTransfer: chromium's headless mouse does not start
// HTML drags); from the keyboard, M on a focused card opens "Move to…",
// ↓ and Enter move it and the focus stays on the card in its new column,
// Esc closes the menu and gives the focus back; a subtask's card names
// its parent; the assignee is picked from the members and the roles; the
// new task's details and a comment are previewed as markdown as they are
// typed; at a phone's width (390×844) the board is one column at a time,
// chosen by its tab (with its count) or a swipe, nothing wider than the
// screen.
func TestBrowserBoard(t *testing.T) {
	actx := newChromium(t, 1280, 900, 2*time.Minute)
	_, tab, pg := nightDesk(t, actx, "board Alice")
	run, poll, shot := pg.run, pg.poll, pg.shot
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	card := func(title string) string {
		// Its title, not a subtask's line naming it as the parent.
		return `[...document.querySelectorAll("#columns .card")].find(c => c.querySelector(":scope > div:not([class])")?.textContent === "` + title + `")`
	}
	colOf := func(title string) string {
		return card(title) + `?.closest(".column").dataset.status`
	}

	// The preview, as the details are typed.
	run(tab, "a title", chromedp.SendKeys(css(`#new-task input[name="title"]`), "Parent story"),
		chromedp.SendKeys(css(`#new-task input[name="body"]`), "Check **both** sources"))
	poll(tab, "the preview", `(p => p && !p.classList.contains("hidden") && p.querySelector("strong")?.textContent === "both")(document.querySelector("#new-task-preview"))`)
	shot(tab, "board-preview")
	run(tab, "add", press("#new-task button"))
	poll(tab, "the card, the preview gone", card("Parent story")+` && document.querySelector("#new-task-preview").classList.contains("hidden")`)
	run(tab, "another", chromedp.SendKeys(css(`#new-task input[name="title"]`), "Child check"), press("#new-task button"))
	poll(tab, "its card", card("Child check"))
	// Make it a subtask (the tree's chord does this; here the API, as the page would).
	run(tab, "a subtask", chromedp.Evaluate[chromedp.Void](`(async () => {
		const ts = await api("/p/" + current + "/tasks?filter=");
		const p = ts.find(t => t.title === "Parent story"), c = ts.find(t => t.title === "Child check");
		await api("/p/" + current + "/tasks/" + c.id + "/move", {parent: p.id});
		await refresh();
	})()`, chromedp.EvalAwaitPromise))
	poll(tab, "the parent on the child's card", card("Child check")+`.querySelector(".crumb")?.textContent === "Parent story ›"`)

	// Drag the parent to Working on.
	run(tab, "drag", chromedp.Evaluate[chromedp.Void](`(() => {
		const c = `+card("Parent story")+`, col = document.querySelector('#columns .column[data-status="WorkingOn"]'), dt = new DataTransfer();
		c.dispatchEvent(new DragEvent("dragstart", {dataTransfer: dt, bubbles: true}));
		col.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
		col.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
		c.dispatchEvent(new DragEvent("dragend", {dataTransfer: dt, bubbles: true}));
	})()`))
	poll(tab, "dropped in Working on", colOf("Parent story")+` === "WorkingOn" && document.querySelector("#notice").textContent.includes("Moved")`)

	// The keyboard: M, ↓, Enter.
	run(tab, "focus the child", chromedp.Evaluate[chromedp.Void](card("Child check")+`.focus()`), chromedp.KeyEvent("m"))
	poll(tab, "the menu, focused", `document.activeElement.getAttribute("role") === "menuitem" && document.activeElement.textContent === "Started" && document.querySelector("#move-menu").getAttribute("aria-label").includes("Child check")`)
	shot(tab, "board-move-menu")
	run(tab, "Esc", chromedp.KeyEvent(kb.Escape))
	poll(tab, "closed, the focus on the card", `!document.querySelector("#move-menu") && document.activeElement === `+card("Child check"))
	run(tab, "M again, down, Enter", chromedp.KeyEvent("m"), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.Enter))
	poll(tab, "moved to Working on, still focused", colOf("Child check")+` === "WorkingOn" && document.activeElement === `+card("Child check")+` && document.querySelector("#notice").textContent.includes("Moved")`)
	shot(tab, "board-moved")

	// The assignee, picked.
	run(tab, "open the child", chromedp.Evaluate[chromedp.Void](card("Child check")+`.click()`))
	poll(tab, "the picker", `document.querySelector("#d-title").textContent === "Child check" && [...document.querySelectorAll('#d-assign select option')].map(o => o.textContent).join("|") === "— pick one —|Alice|role: editor|role: researcher"`)
	run(tab, "pick researcher", chromedp.SetValue(css(`#d-assign select`), "role:researcher"), press("#d-assign button"))
	poll(tab, "assigned", `document.querySelector("#d-meta").textContent.includes("assigned to role:researcher")`)
	run(tab, "a comment", chromedp.SendKeys(css(`#d-comment textarea`), "- one\n- *two*"))
	poll(tab, "its preview", `(p => p && p.querySelectorAll("li").length === 2 && p.querySelector("em")?.textContent === "two")(document.querySelector("#d-comment-preview"))`)
	shot(tab, "task-preview")
	run(tab, "close", press("#close"))

	// A phone: one column at a time.
	run(tab, "a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	visible := `[...document.querySelectorAll("#columns .column")].filter(c => c.getClientRects().length).map(c => c.dataset.status).join()`
	poll(tab, "one column, its tab", visible+` === "New" && document.querySelector('#col-tabs [aria-selected="true"]').textContent === "New 0"`)
	run(tab, "the Working on tab", chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#col-tabs button")].find(b => b.textContent.startsWith("Working on")).click()`))
	poll(tab, "Working on, two cards", visible+` === "WorkingOn" && document.querySelectorAll("#col-WorkingOn .card").length === 2 && document.querySelector('#col-tabs [aria-selected="true"]').textContent === "Working on 2"`)
	poll(tab, "nothing wider than the phone", `![...document.querySelectorAll("body *")].some(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.left < -1 || r.right > window.innerWidth + 1); })`)
	shot(tab, "board-tabs-phone")
	run(tab, "swipe left", chromedp.Evaluate[chromedp.Void](`(() => {
		const b = document.querySelector("#columns"), touch = (x) => new Touch({identifier: 1, target: b, clientX: x, clientY: 300});
		b.dispatchEvent(new TouchEvent("touchstart", {touches: [touch(300)], changedTouches: [touch(300)], bubbles: true}));
		b.dispatchEvent(new TouchEvent("touchend", {touches: [], changedTouches: [touch(100)], bubbles: true}));
	})()`))
	poll(tab, "the next column", visible+` === "HelpWanted"`)
}
