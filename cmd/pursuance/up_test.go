package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pursuance/pursuance/web"
)

// TestUpTwice: a second `up` on a home where a node runs refuses, exit
// status 1, naming the running node's web UI; `pursuance ui` gives the
// login link in force. After the node is killed (-9, leaving its files),
// neither the stale run file nor its lock fools anyone: `ui` says no node
// runs, and `up` starts.
func TestUpTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real nodes")
	}
	home := filepath.Join(t.TempDir(), "home")
	env := append(os.Environ(), "PURSUANCE_PASSPHRASE=pw")
	pursuance(t, env, "--home", home, "id", "new", "--name", "Alice", "--insecure-test-kdf")
	first := runUp(t, "Alice", home, env)

	bin, _ := exec.LookPath("pursuance")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second := exec.CommandContext(ctx, bin, "--home", home, "up", "--interval", "1h")
	second.Env = env
	var out, errOut bytes.Buffer
	second.Stdout, second.Stderr = &out, &errOut
	err := second.Run()
	if ctx.Err() != nil {
		t.Fatalf("a second up on the home ran as a second node (stopped after a minute); stderr:\n%s", errOut.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || out.Len() != 0 ||
		!strings.Contains(errOut.String(), "already running") || !strings.Contains(errOut.String(), first.ui+"/") {
		t.Fatalf("a second up: %v; stdout %q; stderr %q (want exit status 1 and the UI %s)", err, out.String(), errOut.String(), first.ui)
	}
	if got := strings.TrimSpace(pursuance(t, env, "--home", home, "ui")); got != first.login {
		t.Errorf("pursuance ui: %q, want the link in force %q", got, first.login)
	}

	// Killed: the run file stays, the lock goes with the process.
	first.cmd.Process.Kill()
	first.cmd.Wait()
	if _, err := os.Stat(filepath.Join(home, "running.json")); err != nil {
		t.Fatalf("a killed node's run file: %v", err)
	}
	ui := exec.Command(bin, "--home", home, "ui")
	ui.Env = env
	if b, err := ui.CombinedOutput(); err == nil || !strings.Contains(string(b), "no node is running") {
		t.Errorf("pursuance ui after the node was killed: %v %s", err, b)
	}
	again := runUp(t, "Alice", home, env)
	if again.login == first.login {
		t.Error("a new run took the old run's login link")
	}
	// Stopped by Ctrl-C, SIGTERM or a closed terminal (SIGHUP), it removes
	// its run file.
	for i, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGHUP, os.Interrupt} {
		if i > 0 {
			again = runUp(t, "Alice", home, env)
		}
		again.cmd.Process.Signal(sig)
		if err := again.cmd.Wait(); err != nil {
			t.Errorf("up stopped by %v with %v", sig, err)
		}
		if _, err := os.Stat(filepath.Join(home, "running.json")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a node stopped by %v left its run file: %v", sig, err)
		}
	}
}

// probeEnv carries what the probe (probeMain) is told: where the UI is, the
// IDs to put in its routes' patterns, and the files to try. No secret.
const probeEnv = "PURSUANCE_PROBE"

type probeTask struct {
	UI    string   `json:"ui"`
	IDs   []string `json:"ids"` // {p}, {t}, {m}
	Files []string `json:"files"`
}

type probeResult struct {
	Route  string `json:"route"`
	With   string `json:"with"`
	Status int    `json:"status"`
	Body   string `json:"body"`
}

type probeReport struct {
	UID       int           `json:"uid"`
	Results   []probeResult `json:"results"`
	FileErrs  []string      `json:"file_errors"` // "" when the file was read
	FileDenys []bool        `json:"file_denied"` // the error was a permission error
	FileBytes []string      `json:"file_bytes"`
}

// probeMain is `pursuance-probe`, the test binary run as a process that
// holds no secret (another Unix user, with setpriv): it tries every route
// of the UI, without credentials and with a guessed bearer token, and the
// files it is told, and prints what it got as JSON.
func probeMain() int {
	var task probeTask
	if err := json.Unmarshal([]byte(os.Getenv(probeEnv)), &task); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 2
	}
	s, err := web.New("127.0.0.1:1", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 2
	}
	fill := strings.NewReplacer("{p}", task.IDs[0], "{t}", task.IDs[1], "{m}", task.IDs[2], "{$}", "")
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	rep := probeReport{UID: os.Getuid()}
	for _, r := range s.Routes() {
		method, path, _ := strings.Cut(r.Pattern, " ")
		path = fill.Replace(path)
		if strings.HasSuffix(path, "/static/") {
			path += "app.js"
		}
		for _, with := range []string{"nothing", "a guessed bearer"} {
			req, _ := http.NewRequest(method, task.UI+path, strings.NewReader(`{"token":"x","title":"planted","code":"pi1x"}`))
			if with != "nothing" {
				req.Header.Set("Authorization", "Bearer "+strings.Repeat("A", 43))
			}
			res := probeResult{Route: r.Pattern, With: with}
			if resp, err := client.Do(req); err != nil {
				res.Body = "error: " + err.Error()
			} else {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
				resp.Body.Close()
				res.Status, res.Body = resp.StatusCode, string(b)
			}
			rep.Results = append(rep.Results, res)
		}
	}
	for _, f := range task.Files {
		b, err := os.ReadFile(f)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		rep.FileErrs, rep.FileDenys, rep.FileBytes = append(rep.FileErrs, msg), append(rep.FileDenys, errors.Is(err, fs.ErrPermission)), append(rep.FileBytes, string(b))
	}
	json.NewEncoder(os.Stdout).Encode(rep)
	return 0
}

// TestUIOtherUser runs `pursuance up` on a home holding a pursuance with a
// task restricted to a role, and tries its web UI from processes that hold
// no secret: one of the same user that did not read the run file, and
// (where the machine allows: root and setpriv, as in CI) one of another
// Unix user, nobody. Every route answers 401 (public ones serve nothing
// of the pursuance), the run file cannot be read by the other user even
// through a home others may enter, and the node's command line holds no
// secret. The member, with the file or the printed link, reads it all.
func TestUIOtherUser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	// A directory others may enter, with a copy of this binary they may
	// run (the go build cache and t.TempDir are closed to them).
	dir, err := os.MkdirTemp("", "pursuance-other-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	env := append(os.Environ(), "PURSUANCE_PASSPHRASE=pw")
	pursuance(t, env, "--home", home, "id", "new", "--name", "Alice Quill", "--insecure-test-kdf")
	pursuance(t, env, "--home", home, "create", "--name", "Lantern Cell")
	pursuance(t, env, "--home", home, "task", "add", "Lantern Cell", "--title", "Source lives at 12 Elm St", "--visible-to", "editor")
	node := runUp(t, "Alice", home, env)

	// The member: the file gives the bearer token, the link a session.
	var rf struct{ UI, Login, Bearer string }
	b, err := os.ReadFile(filepath.Join(home, "running.json"))
	if err != nil || json.Unmarshal(b, &rf) != nil || rf.Login != node.login || rf.UI != node.ui+"/" {
		t.Fatalf("run file %s (%v); printed %s", b, err, node.login)
	}
	if fi, err := os.Stat(filepath.Join(home, "running.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("run file mode %v %v", fi.Mode(), err)
	}
	get := func(path string, hdr map[string]string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", node.ui+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s as the member: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	bearer := map[string]string{"Authorization": "Bearer " + rf.Bearer}
	var ps []struct{ Pursuance string }
	json.Unmarshal([]byte(get("/api/pursuances", bearer)), &ps)
	var me struct{ ID string }
	json.Unmarshal([]byte(get("/api/me", bearer)), &me)
	if len(ps) != 1 || me.ID == "" {
		t.Fatalf("pursuances %v, me %v", ps, me)
	}
	p := ps[0].Pursuance
	var tasks []struct{ ID, Title string }
	json.Unmarshal([]byte(get("/api/p/"+p+"/tasks", bearer)), &tasks)
	if len(tasks) != 1 || tasks[0].Title != "Source lives at 12 Elm St" {
		t.Fatalf("the member's tasks: %v", tasks)
	}
	// The printed link logs in once (as the login page does).
	_, tok, _ := strings.Cut(node.login, "#")
	resp, err := http.Post(node.ui+"/login", "application/json", strings.NewReader(`{"token":"`+tok+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var sess struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("login with the printed link: %d", resp.StatusCode)
	}
	cookie := resp.Cookies()[0]
	get("/api/p/"+p+"/tasks/"+tasks[0].ID, map[string]string{"Cookie": cookie.Name + "=" + cookie.Value, web.TokenHeader: sess.Token})
	// What must show nowhere else: the pursuance, the task, the member,
	// and every secret (the link in force now, the used one, the bearer,
	// the session's).
	b, _ = os.ReadFile(filepath.Join(home, "running.json"))
	json.Unmarshal(b, &rf)
	_, now, _ := strings.Cut(rf.Login, "#")
	secrets := []string{"Lantern Cell", "Source lives at", "Alice Quill", p, me.ID, tasks[0].ID, tok, now, rf.Bearer, sess.Token, cookie.Value}

	// The node's command line, which every user can read, holds none.
	if cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", node.cmd.Process.Pid)); err == nil {
		for _, s := range secrets {
			if strings.Contains(string(cl), s) {
				t.Errorf("the node's command line holds %q", s)
			}
		}
	}

	probe := filepath.Join(dir, "pursuance-probe")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(probe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	bin = nil
	task, _ := json.Marshal(probeTask{UI: node.ui, IDs: []string{p, tasks[0].ID, me.ID},
		Files: []string{filepath.Join(home, "running.json")}})
	check := func(t *testing.T, rep probeReport, otherUser bool) {
		routes, _ := web.New("127.0.0.1:1", nil)
		access := map[string]web.Access{}
		for _, r := range routes.Routes() {
			access[r.Pattern] = r.Access
		}
		if len(rep.Results) != 2*len(access) {
			t.Errorf("the probe tried %d requests, want 2 for each of %d routes", len(rep.Results), len(access))
		}
		for _, r := range rep.Results {
			want := http.StatusUnauthorized
			if access[r.Route] == web.Public && strings.HasPrefix(r.Route, "GET ") {
				want = http.StatusOK
			}
			if r.Status != want {
				t.Errorf("%s with %s: %d, want %d: %.200s", r.Route, r.With, r.Status, want, r.Body)
			}
			for _, s := range secrets {
				if strings.Contains(r.Body, s) {
					t.Errorf("%s with %s shows %q", r.Route, r.With, s)
				}
			}
		}
		if otherUser {
			if len(rep.FileDenys) != 1 || !rep.FileDenys[0] || rep.FileBytes[0] != "" {
				t.Errorf("the other user reading the run file: %q", rep.FileErrs)
			}
		}
	}
	runProbe := func(t *testing.T, prefix ...string) probeReport {
		args := append(prefix, probe)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), probeEnv+"="+string(task))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("the probe: %v: %s", err, stderr.Bytes())
		}
		var rep probeReport
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("the probe printed %s: %v", out, err)
		}
		return rep
	}

	t.Run("same user without the token", func(t *testing.T) {
		check(t, runProbe(t), false)
	})
	t.Run("another user", func(t *testing.T) {
		setpriv, err := exec.LookPath("setpriv")
		if os.Geteuid() != 0 || err != nil {
			t.Skipf("needs root and setpriv to run a process as another user (euid %d, setpriv: %v); CI has both", os.Geteuid(), err)
		}
		// The home as some users have it (others may enter it): only the
		// run file's own mode keeps it from them.
		if err := os.Chmod(home, 0o711); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(home, 0o700)
		rep := runProbe(t, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--")
		if rep.UID != 65534 {
			t.Fatalf("the probe ran as uid %d", rep.UID)
		}
		t.Logf("the other user (uid %d): %d requests, run file: %q", rep.UID, len(rep.Results), rep.FileErrs)
		check(t, rep, true)
	})
}
