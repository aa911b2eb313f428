package main

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserCalendar: the calendar view and overdue marks, in chromium
// against a real node. Four tasks: one due yesterday (overdue), one due
// yesterday but done (not overdue), one due in three days, one with no
// due date. The overdue one says "Overdue" on its board card and its tree
// row and "overdue" in its dialog, the others do not; the month calendar
// puts each dated task on its day (the overdue one marked), counts the
// undated one, and goes to the next month and back; the week view shows
// seven days; at a phone's width (390×844) the calendar is a list of the
// days with tasks, nothing wider than the screen. The dates are the
// browser's own days, so the test holds in any time zone.
func TestBrowserCalendar(t *testing.T) {
	actx := newChromium(t, 1280, 900, 2*time.Minute)
	_, tab, pg := nightDesk(t, actx, "calendar Alice")
	run, poll, shot := pg.run, pg.poll, pg.shot
	// day(n) is the browser's calendar day n days from today.
	const day = `(n => ymd(new Date(Date.now() + n * 864e5)))`
	add := func(title, due string) {
		t.Helper()
		run(tab, "add "+title, chromedp.Evaluate[chromedp.Void](`(() => { const f = document.querySelector("#new-task"); f.title.value = "`+title+`"; f.due.value = `+due+`; f.querySelector("button").click(); })()`))
		poll(tab, "the card "+title, `[...document.querySelectorAll(".card")].some(c => c.textContent.includes("`+title+`"))`)
	}
	add("Late memo", day+`(-1)`)
	add("Filed memo", day+`(-1)`)
	add("Next memo", day+`(3)`)
	add("Someday memo", `""`)
	card := func(title string) string {
		return `[...document.querySelectorAll(".card")].find(c => c.textContent.includes("` + title + `"))`
	}
	// File one: done is never overdue.
	run(tab, "open Filed memo", chromedp.Evaluate[chromedp.Void](card("Filed memo")+`.click()`))
	poll(tab, "its dialog", `document.querySelector("#d-title").textContent === "Filed memo"`)
	run(tab, "done", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#d-status"); s.value = "Done"; s.dispatchEvent(new Event("change")); })()`))
	poll(tab, "in Done", `[...document.querySelectorAll(".column")].find(c => c.querySelector("h3").textContent.startsWith("Done")).textContent.includes("Filed memo")`)
	run(tab, "close", press("#close"))

	poll(tab, "the late card says overdue", card("Late memo")+`.querySelector(".overdue-badge")?.textContent === "Overdue" && `+card("Late memo")+`.classList.contains("overdue")`)
	poll(tab, "the others do not", `["Filed memo", "Next memo", "Someday memo"].every(x => !`+`[...document.querySelectorAll(".card")].find(c => c.textContent.includes(x)).querySelector(".overdue-badge"))`)
	run(tab, "open Late memo", chromedp.Evaluate[chromedp.Void](card("Late memo")+`.click()`))
	poll(tab, "the dialog says overdue", `document.querySelector("#d-title").textContent === "Late memo" && document.querySelector("#d-meta").textContent.includes("overdue")`)
	run(tab, "close", press("#close"))
	run(tab, "the tree", view("tree"))
	poll(tab, "the tree row says overdue", `[...document.querySelectorAll("#tree-list .row")].some(r => r.textContent.includes("Late memo") && r.querySelector(".overdue-badge")) && ![...document.querySelectorAll("#tree-list .row")].some(r => r.textContent.includes("Next memo") && r.querySelector(".overdue-badge"))`)

	// The month: each dated task on its day.
	run(tab, "the calendar", view("calendar"), press("#cal-month"))
	onDay := func(n, title string) string {
		return `(d => d && [...d.querySelectorAll(".cal-task")].some(b => b.textContent.startsWith("` + title + `")))(document.querySelector('#cal-grid td[data-day="' + ` + day + `(` + n + `) + '"]'))`
	}
	// Near a month's end a day may be in the next or last month's page.
	findDay := func(n string) {
		t.Helper()
		run(tab, "the month with day "+n, chromedp.Evaluate[chromedp.Void](`(() => { if (!document.querySelector('#cal-grid td[data-day="' + `+day+`(`+n+`) + '"]')) document.querySelector(`+n+` < 0 ? "#cal-prev" : "#cal-next").click(); })()`))
	}
	findDay("-1")
	poll(tab, "the late memo, marked", onDay("-1", "Late memo")+` && document.querySelector("#cal-grid .cal-task.overdue").textContent.includes("Late memo") && document.querySelectorAll("#cal-grid .cal-task.overdue").length === 1`)
	poll(tab, "the filed memo, done", onDay("-1", "Filed memo"))
	poll(tab, "the undated one is counted", `document.querySelector("#cal-undated").textContent.startsWith("1 task has no due date")`)
	run(tab, "today", press("#cal-today"))
	findDay("3")
	poll(tab, "the next memo", onDay("3", "Next memo"))
	shot(tab, "calendar-month")
	run(tab, "next month", press("#cal-next"))
	poll(tab, "another month", `!document.querySelector('#cal-grid td[data-day="' + `+day+`(0) + '"]') || document.querySelector('#cal-grid td[data-day="' + `+day+`(0) + '"]').classList.contains("other-month")`)
	run(tab, "today", press("#cal-today"), press("#cal-week"))
	poll(tab, "a week", `document.querySelectorAll("#cal-grid td").length === 7 && document.querySelector("#cal-week").getAttribute("aria-pressed") === "true" && document.querySelector("#cal-grid td.today")`)
	shot(tab, "calendar-week")
	run(tab, "open from the calendar", chromedp.Evaluate[chromedp.Void](`(() => { const b = [...document.querySelectorAll(".cal-task")].find(b => b.textContent.startsWith("Late memo") || b.textContent.startsWith("Next memo")); b.click(); })()`))
	poll(tab, "its dialog", `!document.querySelector("#detail").classList.contains("hidden")`)
	run(tab, "close", press("#close"))

	// A phone: a list of the days with tasks.
	run(tab, "a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), press("#cal-month"))
	findDay("-1")
	poll(tab, "the month fits the phone", `document.querySelector("#cal-grid td.no-tasks:not(.today)").getClientRects().length === 0 && ![...document.querySelectorAll("body *")].some(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.left < -1 || r.right > window.innerWidth + 1); })`)
	poll(tab, "the day named in words", `[...document.querySelectorAll("#cal-grid td")].some(td => td.getClientRects().length && td.querySelector(".long").getClientRects().length && td.textContent.includes("Late memo"))`)
	shot(tab, "calendar-phone")
	run(tab, "the board", view("board"))
	poll(tab, "the late card on the phone", card("Late memo")+`.querySelector(".overdue-badge")`)
	shot(tab, "board-overdue-phone")
}
