package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axeFile is axe-core, vendored (testdata/axe/README.md: version, licence).
const axeFile = "testdata/axe/axe.min.js"

// a11yViews are the views checked: the nav's, the home's, and the task
// dialog open over the board.
var a11yViews = []string{"board", "tree", "calendar", "members", "links", "profile", "log", "charter", "inbox", "search", "discover", "devices", "task"}

// TestBrowserA11y runs axe-core in chromium on every view of the UI —
// light and dark, desktop (1280×900) and phone (390×844) — and fails on
// any serious or critical violation (contrast, names of controls, ARIA
// misuse…), naming the rule and the elements. The dark theme comes from
// the system's prefers-color-scheme (emulated) as well as from the
// remembered toggle. Screenshots of each go to $PURSUANCE_SCREENSHOTS
// (a11y-VIEW-THEME-SIZE.png).
func TestBrowserA11y(t *testing.T) {
	axe, err := os.ReadFile(axeFile)
	if err != nil {
		t.Fatalf("the vendored axe-core: %v", err)
	}
	actx := newChromium(t, 1280, 900, 4*time.Minute)
	alice := quickUp(t, "Alice")
	tab, cancel := chromedp.NewContext(actx)
	defer cancel()
	pg := newPages(t, func() string { return "\n--- Alice's node:\n" + alice.stderr() })
	run, poll, shot := pg.run, pg.poll, pg.shot
	run(tab, "log in", chromedp.Navigate(alice.login))
	poll(tab, "logged in", `location.pathname === "/" && document.querySelector("#me")?.textContent !== "" && document.querySelector("#pursuance").options.length > 0`)
	p, err := chromedp.Run(tab, callAPI("/pursuances", `{name: "Night Desk", template: "desk"}`, "pursuance"))
	if err != nil {
		t.Fatal(err)
	}
	p = strings.Trim(p, `"`)
	run(tab, "show it", chromedp.Evaluate[chromedp.Void](`current = "`+p+`"; loadPursuances()`))
	poll(tab, "Night Desk", `document.querySelector("#pursuance").selectedOptions[0]?.textContent === "Night Desk"`)
	var ids []string
	for _, title := range []string{"Verify the memo", "Call the source", "Draft the story"} {
		id, err := chromedp.Run(tab, callAPI("/p/"+p+"/tasks", `{title: "`+title+`", body: "Check the **letterhead**.", visible_to: [], due: "2026-12-31"}`, "task"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.Trim(id, `"`))
	}
	memo := ids[0]
	// A subtask, so that the tree has a level 2.
	if _, err := chromedp.Run(tab, callAPI("/p/"+p+"/tasks/"+ids[1]+"/move", `{parent: "`+memo+`"}`, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tab, callAPI("/p/"+p+"/tasks/"+memo+"/comments", `{text: "Dated *May*."}`, "")); err != nil {
		t.Fatal(err)
	}
	poll(tab, "the cards", `document.querySelectorAll(".card").length === 3`)

	// check runs axe on the page as it is, and fails on any serious or
	// critical violation.
	check := func(what string) {
		t.Helper()
		has, err := chromedp.Run(tab, chromedp.Evaluate[bool](`typeof axe === "object"`))
		if err != nil {
			t.Fatal(err)
		}
		if !has { // once per page load: the DevTools protocol is not bound by the page's CSP
			if err := chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](string(axe))); err != nil {
				t.Fatalf("inject axe: %v", err)
			}
		}
		// One exception, narrow: label-content-name-mismatch on a tree
		// item that has subtasks. The WAI-ARIA tree pattern puts their
		// group inside the item, and axe counts their text as the item's
		// visible text; the item is named by its own row (title and
		// status), which the rule then checks on every item without
		// subtasks.
		out, err := chromedp.Run(tab, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations.map(v => v.id !== "label-content-name-mismatch" ? v : {...v, nodes: v.nodes.filter(n => !document.querySelector(n.target.join(" "))?.matches('#tree-list [role="treeitem"][aria-expanded]'))}).filter(v => v.nodes.length > 0 && (v.impact === "serious" || v.impact === "critical")).map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " — " + n.failureSummary.replace(/\s+/g, " "))}))))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: axe: %v", what, err)
		}
		var vs []struct {
			ID, Impact, Help string
			Nodes            []string
		}
		if err := json.Unmarshal([]byte(out), &vs); err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			t.Errorf("%s: %s %s (%s):\n\t%s", what, v.Impact, v.ID, v.Help, strings.Join(v.Nodes, "\n\t"))
		}
		// Every field shown has a visible label: a placeholder or an
		// aria-label alone is gone once the user types, or never seen.
		unlabelled, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`[...document.querySelectorAll("input, select, textarea")].filter(f => f.type !== "hidden" && f.getClientRects().length > 0 && ![...f.labels].some(l => l.getClientRects().length > 0 && l.textContent.trim() !== "")).map(f => f.outerHTML.slice(0, 120))`))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range unlabelled {
			t.Errorf("%s: a field with no visible label: %s", what, f)
		}
	}
	show := func(v string) {
		t.Helper()
		switch v {
		case "discover", "devices":
			run(tab, v, press("#"+v+"-open"))
		case "task":
			run(tab, "the board", view("board"), chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll(".card")].find(c => c.textContent.includes("Verify the memo")).click()`))
			poll(tab, "the task", `!document.querySelector("#detail").classList.contains("hidden") && document.querySelector("#d-comments").textContent.includes("May")`)
			return
		case "search":
			run(tab, "search", chromedp.Evaluate[chromedp.Void](`runSearch("letterhead")`))
			poll(tab, "hits", `document.querySelectorAll("#search-list li").length === 3`)
			return
		default:
			run(tab, v, view(v))
		}
		poll(tab, "the "+v+" view", `!document.querySelector("#`+v+`").classList.contains("hidden")`)
		if v == "log" {
			run(tab, "the raw log too", chromedp.Evaluate[chromedp.Void](`document.querySelector("#raw-log").getAttribute("aria-expanded") === "true" || document.querySelector("#raw-log").click()`))
			poll(tab, "the feed and the log", `document.querySelectorAll("#feed li").length > 3 && !document.querySelector("#raw-log-box").classList.contains("hidden")`)
		}
		if v == "inbox" {
			poll(tab, "the inbox", `document.querySelector("#inbox-list").children.length > 0`)
		}
	}
	dark := `getComputedStyle(document.body).backgroundColor === "rgb(22, 24, 28)"`
	for _, size := range []struct {
		name string
		w, h int64
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		if size.name == "phone" {
			run(tab, "a phone", chromedp.EmulateViewport(size.w, size.h, chromedp.EmulateMobile))
		}
		for _, theme := range []string{"light", "dark"} {
			// Dark by the system's preference, the toggle on "System".
			scheme := map[string]string{"light": "light", "dark": "dark"}[theme]
			run(tab, theme, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
				return err
			}))
			if theme == "dark" {
				poll(tab, "dark by the system's choice", dark)
			} else {
				poll(tab, "light by the system's choice", `!(`+dark+`)`)
			}
			for _, v := range a11yViews {
				show(v)
				check(fmt.Sprintf("%s, %s, %s", v, theme, size.name))
				shot(tab, "a11y-"+v+"-"+theme+"-"+size.name)
				if v == "task" {
					run(tab, "close", press("#close"))
				}
			}
		}
	}
	// The toggle overrides the system and is remembered across a reload.
	run(tab, "pick dark", chromedp.SetValue(chromedp.CSS("#theme"), "dark"), chromedp.Evaluate[chromedp.Void](`document.querySelector("#theme").dispatchEvent(new Event("change"))`))
	poll(tab, "dark, picked, on a light system", dark)
	run(tab, "reload", chromedp.Reload())
	poll(tab, "still dark", `document.querySelector("#theme")?.value === "dark" && `+dark)
	check("board, dark picked")
	// The focus ring: a focused control shows a 3 px outline.
	// (A headless window never has the system's focus: emulated, as a
	// window in front has it.)
	run(tab, "a window in front", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
		return err
	}))
	run(tab, "focus the filter", chromedp.Evaluate[chromedp.Void](`document.querySelector('nav button[data-view="board"]').click(); document.querySelector("#filter").focus()`))
	poll(tab, "a visible focus ring", `getComputedStyle(document.querySelector("#filter")).outlineWidth === "3px" && getComputedStyle(document.querySelector("#filter")).outlineStyle === "solid"`)
}
