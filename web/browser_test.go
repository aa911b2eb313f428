package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/identity/keystore"
)

// home is a member's home with its UI served.
type home struct {
	url  string
	open func(context.Context) (*app.Node, error)
	ui   *Server
}

func newHome(t *testing.T, name string) home {
	t.Helper()
	dir := t.TempDir()
	id, err := identity.New(name, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.Create(dir, id, []byte("pw"), keystore.InsecureTestKDF, rand.Reader); err != nil {
		t.Fatal(err)
	}
	open := func(ctx context.Context) (*app.Node, error) {
		n, err := app.Open(ctx, dir, app.Options{})
		if err != nil {
			return nil, err
		}
		return n, n.Unlock(id)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Start()
	t.Cleanup(ts.Close)
	s, err := New(strings.TrimPrefix(ts.URL, "http://"), open)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s
	return home{url: ts.URL + "/", open: open, ui: s}
}

// transfer moves pursuance p's log from a to b as an export file would.
func transfer(t *testing.T, a, b home, p event.ID) {
	t.Helper()
	ctx := context.Background()
	na, err := a.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = na.Export(ctx, p, &buf)
	na.Close()
	if err != nil {
		t.Fatal(err)
	}
	nb, err := b.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if _, err := nb.Import(ctx, &buf); err != nil {
		t.Fatal(err)
	}
}

// TestBrowser drives the UI in a real browser (Debian's chromium, which
// .ci/run installs): Alice founds a pursuance, invites Bob, adds a task,
// assigns it to him and comments; Bob, on his own home, sees it and
// answers; Alice sees the answer. Screenshots of the main views go to
// $PURSUANCE_SCREENSHOTS (docs/screenshots with -update-screenshots).
func TestBrowser(t *testing.T) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (.ci/run installs it)")
	}
	shots := os.Getenv("PURSUANCE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1400, 900))...)
	defer acancel()
	alice, bob := newHome(t, "Alice"), newHome(t, "Bob")
	actab, cancelA := chromedp.NewContext(actx)
	defer cancelA()
	run := func(tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	value := func(tab context.Context, sel string) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Value(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("value of %s: %v", sel, err)
		}
		return v
	}
	shot := func(tab context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	poll := func(tab context.Context, what, js string) {
		t.Helper()
		if err := chromedp.Do(tab, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			page, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("main").innerText + " | error: " + document.querySelector("#error").textContent`))
			t.Fatalf("%s: %v; the page shows: %.1500s", what, err, page)
		}
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// Alice founds "Night Desk".
	run(actab, "open alice's UI", chromedp.Navigate(alice.url), chromedp.WaitVisible(css("#columns")))
	run(actab, "new", chromedp.Click(css("#new-pursuance")))
	poll(actab, "the found form", `!document.querySelector("#found").classList.contains("hidden")`)
	run(actab, "found",
		chromedp.SendKeys(css(`#found input[name="name"]`), "Night Desk"), chromedp.Click(css("#found button")))
	poll(actab, "the pursuance appears", `document.querySelector("#pursuance").textContent.includes("Night Desk")`)
	p, err := event.ParseID(value(actab, "#pursuance"))
	if err != nil {
		t.Fatal(err)
	}

	// Alice invites a researcher; Bob joins with the code.
	var code string
	poll(actab, "roles to invite into", `document.querySelector('#invite select').options.length > 1`)
	run(actab, "invite", chromedp.Click(css(`nav button[data-view="members"]`)),
		chromedp.SetValue(css(`#invite select[name="role"]`), "researcher"), chromedp.Click(css("#invite button")),
		chromedp.WaitVisible(css("#invite-code")))
	poll(actab, "the code", `document.querySelector("#invite-code textarea").value.startsWith("pi1")`)
	code = value(actab, "#invite-code textarea")
	poll(actab, "the QR code shows", `document.querySelector("#invite-code img").naturalWidth > 0`)
	shot(actab, "invite")
	c, err := app.ParseInviteCode(code)
	if err != nil {
		t.Fatal(err)
	}
	withNode := func(h home, fn func(n *app.Node) error) {
		t.Helper()
		n, err := h.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if err := fn(n); err != nil {
			t.Fatal(err)
		}
	}
	// (No relay here: Bob gets the log as a file; the code's keys open it.)
	withNode(bob, func(n *app.Node) error { return n.Accept(c) })
	transfer(t, alice, bob, p)
	btab, cancelB := chromedp.NewContext(actab)
	defer cancelB()
	run(btab, "open bob's UI", chromedp.Navigate(bob.url), chromedp.WaitVisible(css("#columns")), chromedp.Click(css("#new-pursuance")))
	poll(btab, "the join form", `!document.querySelector("#found").classList.contains("hidden")`)
	run(btab, "bob joins", chromedp.SendKeys(css(`#found input[name="code"]`), code), chromedp.Click(css("#join")))
	// (The log was on Bob's home already; the join is in once Bob is
	// among the members his UI lists.)
	poll(btab, "bob is in", `document.querySelector("#found").classList.contains("hidden") && document.querySelector("#members tbody").textContent.includes("Bob")`)
	transfer(t, bob, alice, p)
	withNode(alice, func(n *app.Node) error {
		s, err := n.State(ctx, p)
		if err == nil && len(s.Members()) != 2 {
			err = fmt.Errorf("alice's replica has %d members after bob's join", len(s.Members()))
		}
		return err
	})
	run(actab, "reload", chromedp.Reload(), chromedp.WaitVisible(css("#columns")), chromedp.Click(css(`nav button[data-view="members"]`)))
	poll(actab, "bob is a member", `document.querySelector("#members tbody").textContent.includes("Bob")`)
	shot(actab, "members")

	// Alice adds a task for researchers, assigns it to Bob, comments.
	poll(actab, "roles to make it visible to", `document.querySelector('#new-task select[name="visible_to"]').options.length > 1`)
	run(actab, "add a task", chromedp.Click(css(`nav button[data-view="board"]`)),
		chromedp.SendKeys(css(`#new-task input[name="title"]`), "Verify the memo"),
		chromedp.SendKeys(css(`#new-task input[name="body"]`), "Check the **date** and the [registry](https://example.org)."),
		chromedp.SetValue(css(`#new-task select[name="visible_to"]`), "researcher"),
		chromedp.Click(css("#new-task button")))
	poll(actab, "the card", `[...document.querySelectorAll(".card")].some(c => c.textContent.includes("Verify the memo"))`)
	run(actab, "open it", chromedp.Click(css(".card")), chromedp.WaitVisible(css("#detail")))
	poll(actab, "the body's markdown", `document.querySelector("#d-body strong")?.textContent === "date" && document.querySelector("#d-body a")?.href === "https://example.org/"`)
	run(actab, "assign", chromedp.SendKeys(css(`#d-assign input`), "Bob"), chromedp.Click(css("#d-assign button")))
	poll(actab, "assigned", `document.querySelector("#d-meta").textContent.includes("assigned to Bob")`)
	run(actab, "comment", chromedp.SendKeys(css(`#d-comment textarea`), "The memo is dated May."), chromedp.Click(css("#d-comment button")))
	poll(actab, "the comment", `document.querySelector("#d-comments").textContent.includes("dated May")`)
	shot(actab, "task")

	// A second task, moved under the first from the tree with Tab.
	run(actab, "close", chromedp.Click(css("#close")))
	poll(actab, "the panel closes and stays closed", `document.querySelector("#detail").classList.contains("hidden")`)
	time.Sleep(200 * time.Millisecond) // a refresh in flight must not reopen it
	poll(actab, "the panel is still closed", `document.querySelector("#detail").classList.contains("hidden")`)
	run(actab, "the second task",
		chromedp.SendKeys(css(`#new-task input[name="title"]`), "Call the source"), chromedp.Click(css("#new-task button")))
	poll(actab, "the second card", `[...document.querySelectorAll(".card")].some(c => c.textContent.includes("Call the source"))`)
	run(actab, "the tree", chromedp.Click(css(`nav button[data-view="tree"]`)))
	poll(actab, "two roots", `document.querySelectorAll("#tree-list > li").length === 2`)
	run(actab, "indent", chromedp.SendKeys(css(`#tree-list > li:nth-child(2) > .row`), kb.Tab))
	poll(actab, "a subtask", `document.querySelectorAll("#tree-list > li").length === 1 && document.querySelector("#tree-list li ul li .row").textContent.includes("Call the source")`)
	shot(actab, "tree")
	run(actab, "back to the board", chromedp.Click(css(`nav button[data-view="board"]`)))

	// Bob, on his own home, sees it and answers.
	transfer(t, alice, bob, p)
	run(btab, "bob reloads", chromedp.Reload(), chromedp.WaitVisible(css("#columns")))
	poll(btab, "bob sees the task", `[...document.querySelectorAll(".card")].some(c => c.textContent.includes("Verify the memo") && c.textContent.includes("@Bob"))`)
	shot(btab, "board")
	run(btab, "bob opens it", chromedp.Click(css(".card")), chromedp.WaitVisible(css("#detail")))
	poll(btab, "bob reads the comment", `document.querySelector("#d-comments").textContent.includes("dated May")`)
	run(btab, "bob answers", chromedp.SendKeys(css(`#d-comment textarea`), "On it."), chromedp.Click(css("#d-comment button")))
	poll(btab, "bob's comment", `document.querySelector("#d-comments").textContent.includes("On it.")`)
	run(btab, "bob starts", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#d-status"); s.value = "WorkingOn"; s.dispatchEvent(new Event("change")); })()`))
	poll(btab, "bob's board moves the task", `[...document.querySelectorAll(".column")].some(c => c.textContent.startsWith("Working on") && c.textContent.includes("Verify the memo"))`)

	// Alice sees the answer without reloading (the page polls).
	transfer(t, bob, alice, p)
	poll(actab, "alice's board moves the task", `[...document.querySelectorAll(".column")].some(c => c.textContent.startsWith("Working on") && c.textContent.includes("Verify the memo"))`)
	run(actab, "alice opens it", chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll(".card")].find(c => c.textContent.includes("Verify the memo")).click()`))
	poll(actab, "alice sees bob's answer", `document.querySelector("#d-comments").textContent.includes("On it.")`)
	run(actab, "the log", chromedp.Click(css(`nav button[data-view="log"]`)))
	poll(actab, "the log lists the comment", `document.querySelector("#log tbody").textContent.includes("task-comment")`)
	shot(actab, "log")
	run(actab, "the charter", chromedp.Click(css(`nav button[data-view="charter"]`)))
	poll(actab, "the charter shows", `document.querySelector("#charter-yaml").value.includes("name: Night Desk")`)
	shot(actab, "charter")
}
