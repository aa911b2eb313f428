package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserDevices: a second home linked as a device in the web UI, in
// a real browser (Debian's chromium) against two real nodes (`pursuance
// up`) and a real relay on loopback (docs/devices.md). Alice founds Desk
// on the relay; her phone's home asks to be her device (`device request`,
// the only step outside the browser: the new home needs a keystore
// before its node runs). On her laptop's Devices page she pastes the
// request code (a mangled one first: refused under the field, until the
// good one goes through) and gets the approval code; on the phone's
// Devices page she pastes that and the phone holds Desk: both homes show the same
// pursuances, and the laptop lists the phone. She revokes the phone from
// the laptop's page, which then shows it revoked.
func TestBrowserDevices(t *testing.T) {
	actx := newChromium(t, 1280, 900, 2*time.Minute)
	rp := startRelay(t, t.TempDir())
	t.Cleanup(func() {
		rp.cmd.Process.Signal(syscall.SIGTERM)
		rp.cmd.Wait()
	})
	env := append(os.Environ(), "PURSUANCE_PASSPHRASE=devices")
	laptopHome, phoneHome := filepath.Join(t.TempDir(), "laptop"), filepath.Join(t.TempDir(), "phone")
	pursuance(t, env, "--home", laptopHome, "id", "new", "--name", "Alice", "--insecure-test-kdf")
	pursuance(t, env, "--home", laptopHome, "create", "--name", "Desk", "--relay", rp.url)
	req := strings.TrimSpace(pursuance(t, env, "--home", phoneHome, "device", "request", "--name", "phone", "--insecure-test-kdf"))
	if !strings.HasPrefix(req, "pursuance-device-request:") {
		t.Fatalf("device request printed %q", req)
	}
	laptop, phone := runUp(t, "laptop", laptopHome, env), runUp(t, "phone", phoneHome, env)

	ltab, cancelL := chromedp.NewContext(actx)
	defer cancelL()
	ptab, cancelP := chromedp.NewContext(ltab)
	defer cancelP()
	nodes := func() string {
		return "\n--- the laptop's node:\n" + laptop.stderr() + "\n--- the phone's node:\n" + phone.stderr()
	}
	pg := newPages(t, nodes)
	run, poll := pg.run, pg.poll
	login := func(tab context.Context, n *upNode) {
		t.Helper()
		run(tab, "log in", chromedp.Navigate(n.login))
		poll(tab, "logged in", loggedIn)
	}
	hasDesk := `[...document.querySelector("#pursuance").options].some((o) => o.textContent === "Desk")`

	login(ltab, laptop)
	poll(ltab, "the laptop holds Desk", hasDesk)
	run(ltab, "the Devices page", press("#devices-open"))
	poll(ltab, "the laptop alone", `document.querySelector("#devices-list").children.length === 1 && document.querySelector("#devices-list").textContent.includes("this home") && !document.querySelector("#device-approve").classList.contains("hidden")`)
	// A mangled code is refused under its field, and stays until it changes.
	codeErr := `(i => i.getAttribute("aria-invalid") === "true" && (e => e && e.getClientRects().length > 0 && document.querySelector("#device-approve").contains(e))(document.getElementById(i.getAttribute("aria-describedby"))))(document.querySelector('#device-approve input[name="code"]'))`
	run(ltab, "a mangled code", chromedp.SetValue(chromedp.CSS(`#device-approve input[name="code"]`), "pursuance-device-request:nonsense"), press(`#device-approve button`))
	poll(ltab, "refused under the field", codeErr)
	run(ltab, "approve the phone", chromedp.SetValue(chromedp.CSS(`#device-approve input[name="code"]`), req), press(`#device-approve button`))
	poll(ltab, "the refusal gone", `!document.querySelector('#device-approve input[name="code"]').hasAttribute("aria-invalid") && !document.querySelector("#device-approve .field-error")`)
	poll(ltab, "the approval code", `document.querySelector("#device-approval").value.startsWith("pursuance-device-approval:") && document.querySelector("#device-approval-name").textContent === "phone"`)
	approval, err := chromedp.Run(ltab, chromedp.Evaluate[string](`document.querySelector("#device-approval").value`))
	if err != nil {
		t.Fatal(err)
	}

	login(ptab, phone)
	poll(ptab, "no pursuance on the phone yet", `!(`+hasDesk+`)`)
	run(ptab, "the phone's Devices page", press("#devices-open"))
	poll(ptab, "the accept form", `!document.querySelector("#device-accept").classList.contains("hidden") && document.querySelector("#device-approve").classList.contains("hidden")`)
	run(ptab, "accept", chromedp.SetValue(chromedp.CSS(`#device-accept input[name="code"]`), approval), press(`#device-accept button`))
	poll(ptab, "the phone holds Desk", hasDesk)
	poll(ptab, "the phone lists itself and the laptop", `(t => t.includes("phone") && t.includes("Alice") && t.includes("this home"))(document.querySelector("#devices-list").textContent)`)
	// The phone founds through its root: the New form asks the laptop
	// (docs/devices.md §8) and says so, rather than refusing.
	run(ptab, "the New form", press("#new-pursuance"))
	poll(ptab, "the found form", `!document.querySelector("#found").classList.contains("hidden") && document.querySelector('#found select[name="template"]').options.length > 1`)
	run(ptab, "found on the phone", chromedp.SetValue(chromedp.CSS(`#found input[name="name"]`), "Phone Desk"), press(`#found button[type="submit"]`))
	poll(ptab, "asked the root", `document.querySelector("#notice").textContent.includes("Asked your root home")`)

	// The laptop reads the phone's add at its next sync (its button's
	// title says when the sync is done; the open page reloads on it).
	run(ltab, "sync", press("#sync"))
	poll(ltab, "the laptop synced", `document.querySelector("#sync").title.startsWith("Last sync")`)
	run(ltab, "the Devices page again", press("#devices-open"))
	poll(ltab, "the laptop lists the phone", `[...document.querySelectorAll("#devices-list li")].some((li) => li.textContent.includes("phone") && li.querySelector("button.danger"))`)
	run(ltab, "revoke the phone",
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		press(`#devices-list li:not(:first-child) button.danger`))
	poll(ltab, "the phone, revoked", `[...document.querySelectorAll("#devices-list li")].some((li) => li.textContent.includes("phone") && li.textContent.includes("revoked") && !li.querySelector("button"))`)
	// The phone's own page shows its revocation after a sync.
	run(ptab, "the phone syncs", press("#sync"))
	poll(ptab, "the phone synced", `document.querySelector("#sync").title.startsWith("Last sync")`)
	run(ptab, "the phone's Devices page again", press("#devices-open"))
	poll(ptab, "the phone sees itself revoked", `[...document.querySelectorAll("#devices-list li")].some((li) => li.textContent.includes("this home") && li.textContent.includes("revoked"))`)
}
