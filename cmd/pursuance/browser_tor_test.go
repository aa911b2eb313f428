package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserTor: the header's "private network" indicator of a node
// that goes through Tor (the home's setting, `pursuance tor on`, over the
// test double of tor): tor's bootstrap as a progress bar, then on, with
// the node's onion address once it is reachable; and an invite that names
// only that address says it needs Tor.
func TestBrowserTor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node and a browser")
	}
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (.ci/run installs it)")
	}
	fake, err := exec.LookPath("pursuance-faketor")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	torrc := filepath.Join(dir, "torrc")
	// Bootstrapping takes the double 10 s, 10% a second: long enough for
	// the page to show it on a loaded machine.
	os.WriteFile(torrc, []byte("FakeTorBootstrap 5 1s\nFakeTorUploadDelay 1s\n"), 0o600)
	home := filepath.Join(dir, "home")
	env := append(os.Environ(), "PURSUANCE_PASSPHRASE=pw", "PURSUANCE_TOR_BINARY="+fake, "PURSUANCE_TORRC="+torrc)
	pursuance(t, env, "--home", home, "id", "new", "--name", "Alice", "--insecure-test-kdf")
	pursuance(t, env, "--home", home, "tor", "on")
	node := runUp(t, "Alice", home, env)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1400, 900))...)
	defer acancel()
	tab, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	poll := func(what, js string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var err error
		for {
			err = chromedp.Do(tab, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(time.Until(deadline))))
			if err == nil || time.Now().After(deadline) || !navigated(err) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			header, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("header").innerText`))
			t.Fatalf("%s: %v; the header shows %q; node:\n%s", what, err, header, node.stderr())
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, steps...); err != nil {
			t.Fatalf("%s: %v; node:\n%s", what, err, node.stderr())
		}
	}
	do("log in", chromedp.Navigate(node.login))
	poll("logged in", `location.href === "`+node.ui+`/" && document.querySelector("#me")?.textContent !== ""`)
	poll("bootstrapping, as a bar", `document.querySelector("#private").textContent.includes("connecting") && !document.querySelector("#tor-progress").classList.contains("hidden") && document.querySelector("#tor-progress").value < 100`)
	poll("on, the onion address shown", `document.querySelector("#private").classList.contains("on") && document.querySelector("#private .label").textContent === "Private network (Tor): on" && document.querySelector("#tor-progress").classList.contains("hidden") && /^[a-z2-7]{56}\.onion$/.test(document.querySelector("#onion").textContent)`)

	do("new", chromedp.Click(chromedp.CSS("#new-pursuance")))
	poll("the found form", `!document.querySelector("#found").classList.contains("hidden")`)
	do("found", chromedp.SendKeys(chromedp.CSS(`#found input[name="name"]`), "Cell"), chromedp.Click(chromedp.CSS("#found button")))
	poll("the pursuance", `document.querySelector("#pursuance").selectedOptions[0]?.textContent === "Cell"`)
	poll("roles to invite into", `document.querySelector('#invite select').options.length > 1`)
	do("invite", chromedp.Click(chromedp.CSS(`nav button[data-view="members"]`)),
		chromedp.SetValue(chromedp.CSS(`#invite select[name="role"]`), "researcher"), chromedp.Click(chromedp.CSS("#invite button")),
		chromedp.WaitVisible(chromedp.CSS("#invite-code")))
	poll("the invite needs Tor", `document.querySelector("#invite-reach").textContent.startsWith("Needs Tor") && document.querySelector("#invite-reach").textContent.includes(document.querySelector("#onion").textContent)`)
	if shots := os.Getenv("PURSUANCE_SCREENSHOTS"); shots != "" {
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err == nil {
			os.WriteFile(filepath.Join(shots, "private-network.png"), png, 0o644)
		}
	}
}
