package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pursuance/pursuance/app"
)

// TestBrowserGovernance runs a collective (the template whose role
// changes, removals and amendments need a majority) from the web UI alone,
// in chromium against two real nodes: Alice founds it, sees its role
// described, invites twice with the least-privileged role already chosen;
// she revokes the second, pending (which rotates the keys at once), and
// Bob joins with the first;
// Alice's own row offers no Remove, Bob's says a removal would be
// proposed; Alice marks Bob's
// fingerprint verified; she proposes an amendment of the charter (a new
// name), Bob's page shows the proposal with its quorum (1 of 2 approvals)
// and expiry, he approves it, and both pages show the new name and no
// open proposal; the new charter's role description, written with markup,
// shows as text in both pages. Bob's side is at a phone's width (390×844).
func TestBrowserGovernance(t *testing.T) {
	actx := newChromium(t, 1280, 900, 3*time.Minute)
	start := func(name string) *upNode {
		home := filepath.Join(t.TempDir(), "home")
		env := append(os.Environ(), "PURSUANCE_PASSPHRASE=gov "+name)
		pursuance(t, env, "--home", home, "id", "new", "--name", name, "--insecure-test-kdf")
		return runUp(t, name, home, env)
	}
	alice, bob := start("Alice"), start("Bob")
	atab, cancelA := chromedp.NewContext(actx)
	defer cancelA()
	btab, cancelB := chromedp.NewContext(atab)
	defer cancelB()
	pg := newPages(t, func() string {
		return "\n--- Alice's node:\n" + alice.stderr() + "\n--- Bob's node:\n" + bob.stderr()
	})
	run, poll, shot := pg.run, pg.poll, pg.shot
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	// Confirmations are answered yes, as a person would here.
	yes := chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`)
	login := func(tab context.Context, n *upNode) {
		t.Helper()
		run(tab, "log in", chromedp.Navigate(n.login))
		poll(tab, "logged in", loggedIn)
		run(tab, "confirm", yes)
	}
	login(atab, alice)
	run(atab, "new", press("#new-pursuance"))
	poll(atab, "the templates", `document.querySelector('#found select[name="template"]').options.length > 1`)
	run(atab, "found a collective", chromedp.SetValue(css(`#found select[name="template"]`), "collective"),
		chromedp.SendKeys(css(`#found input[name="name"]`), "Co-op"), press("#found button[type=submit]"))
	poll(atab, "the collective", `document.querySelector("#pursuance").selectedOptions[0]?.textContent === "Co-op"`)

	run(atab, "members", view("members"))
	poll(atab, "the role, described", `document.querySelector("#role-list").textContent.includes("One of the co-equals.")`)
	poll(atab, "invite into member, chosen", `document.querySelector('#invite select[name="role"]').value === "member" && !document.querySelector("#invite button").disabled`)
	// Two invites: the second is revoked from the pending list.
	code := ""
	for i := range 2 {
		run(atab, "invite", press("#invite button"))
		poll(atab, "the code", `document.querySelector("#invite-code textarea").value.startsWith("pi1") && document.querySelectorAll("#pending-invites li[data-id]").length === `+[]string{"1", "2"}[i])
		if i == 0 {
			c, err := chromedp.Run(atab, chromedp.Value(css("#invite-code textarea")))
			if err != nil {
				t.Fatal(err)
			}
			code = c
		}
	}

	// The second is revoked before the first is used: the revocation
	// rotates the keys at once, sealed to the members only.
	first, err := app.ParseInviteCode(code)
	if err != nil {
		t.Fatal(err)
	}
	other := `#pending-invites li[data-id]:not([data-id="` + first.Invite.String() + `"]) button`
	run(atab, "revoke the other", press(other))
	poll(atab, "one invite pending", `document.querySelectorAll("#pending-invites li[data-id]").length === 1 && document.querySelector("#pending-invites li[data-id]").dataset.id === "`+first.Invite.String()+`" && document.querySelector("#notice").textContent.includes("revoked")`)

	// Bob joins on a phone, with the code still valid.
	run(btab, "a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	login(btab, bob)
	run(btab, "new", press("#new-pursuance"))
	poll(btab, "the join form", `!document.querySelector("#found").classList.contains("hidden")`)
	run(btab, "Bob joins", chromedp.SendKeys(css(`#found input[name="code"]`), code), press("#join"))
	poll(btab, "Bob is in", `document.querySelector("#pursuance").selectedOptions[0]?.textContent === "Co-op"`)
	poll(btab, "Bob sees both", `document.querySelector("#members tbody").textContent.includes("Alice") && document.querySelector("#members tbody").textContent.includes("Bob")`)
	poll(atab, "Alice sees Bob", `document.querySelector("#members tbody").textContent.includes("Bob")`)
	poll(atab, "no invite pending", `document.querySelectorAll("#pending-invites li[data-id]").length === 0`)

	// Alice's own row has no Remove; Bob's says it would be proposed.
	me := `[...document.querySelectorAll("#members tbody tr")].find(r => r.classList.contains("me"))`
	bobRow := `[...document.querySelectorAll("#members tbody tr")].find(r => r.children[0].textContent === "Bob")`
	poll(atab, "no Remove on her own row", me+` && !`+me+`.querySelector("[data-act=remove]") && !`+me+`.querySelector("td.fp button")`)
	poll(atab, "removing Bob is a proposal", bobRow+`.querySelector("[data-act=remove]") && !`+bobRow+`.querySelector("[data-act=remove]").disabled && `+bobRow+`.textContent.includes("Proposed: takes effect with 2 approvals")`)
	// A live reload redraws the table and the governance view decorates it
	// again a moment later: click the button in the same poll that finds it.
	poll(atab, "mark Bob verified", `(b => b ? (b.click(), true) : false)(`+bobRow+`?.querySelector("td.fp button"))`)
	poll(atab, "Bob is verified", bobRow+`.querySelector(".verified").textContent.includes("Verified")`)
	shot(atab, "governance-members")

	// Alice proposes a new name.
	run(atab, "the charter", view("charter"))
	poll(atab, "the charter loaded", `document.querySelector("#charter-yaml").value.includes("name: Co-op")`)
	// The new charter also describes the role with markup: it must show as text.
	run(atab, "rename", chromedp.Evaluate[chromedp.Void](`(t => { t.value = t.value.replace(/^name: .*$/m, "name: Co-operative").replace(/description: .*$/m, "description: '<img src=x onerror=window.pwned=1> Co-equals.'"); })(document.querySelector("#charter-yaml"))`), press("#amend"))
	poll(atab, "proposed", `document.querySelector("#notice").textContent.includes("proposed")`)
	run(atab, "members", view("members"))
	poll(atab, "her proposal, approved by her", `document.querySelector("#proposals").textContent.includes("Alice proposes to amend the charter: name \"Co-op\" → \"Co-operative\"; the rules") && document.querySelector("#proposals").textContent.includes("You approved it.")`)
	shot(atab, "governance-proposal")

	// Bob's page, not reloaded, shows it with its quorum and expiry.
	run(btab, "Bob's members", view("members"))
	prop := `document.querySelector("#proposals li.proposal")`
	poll(btab, "the proposal", prop+` && `+prop+`.textContent.includes("Alice proposes to amend the charter") && `+prop+`.textContent.includes("1 of 2 approvals (Alice)") && `+prop+`.querySelector("progress").value === 1 && /Expires \d{4}-\d\d-\d\d/.test(`+prop+`.textContent)`)
	poll(btab, "the members view fits the phone", `![...document.querySelectorAll("#members *")].some(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.left < -1 || r.right > window.innerWidth + 1); })`)
	shot(btab, "governance-proposal-phone")
	run(btab, "Bob approves", press(`#proposals li.proposal button`))
	poll(btab, "it carried", `document.querySelector("#pursuance").selectedOptions[0]?.textContent === "Co-operative" && document.querySelector("#proposals").textContent.includes("No open proposals.")`)
	poll(atab, "Alice's page shows the new name", `document.querySelector("#pursuance").selectedOptions[0]?.textContent === "Co-operative" && document.querySelector("#proposals").textContent.includes("No open proposals.")`)
	poll(btab, "Bob may leave", `!document.querySelector("#leave").disabled`)
	for _, tab := range []context.Context{atab, btab} {
		poll(tab, "the description, as text", `document.querySelector("#role-list").textContent.includes("<img src=x onerror=window.pwned=1> Co-equals.") && !document.querySelector("#role-list img") && !window.pwned`)
	}
}
