package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/cli"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur string
	for line := range strings.SplitSeq(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur = ""
	}
	return out
}

// execForm parses an instruction's JSON (exec) form.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		t.Fatalf("%s %s: not in exec form (a JSON list): no shell in a distroless image", in.cmd, in.args)
	}
	return v
}

// goVersion is go.mod's go line.
func goVersion(t *testing.T) string {
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no go line in go.mod")
	}
	return string(m[1])
}

// The Dockerfile's essentials, checked without an image builder: two
// stages, the build on go.mod's Go, a static -trimpath binary, a
// distroless final stage run as a non-root user, and a HEALTHCHECK on
// /healthz in exec form (the image has no shell); the port exposed is the
// one the relay listens on and the health check asks.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t)
	var froms []int
	for i, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, i)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("%d stages: want a build stage and a runtime stage", len(froms))
	}
	build := ins[froms[0]].args
	if want := "golang:" + goVersion(t); !strings.HasPrefix(build, want) || !strings.HasSuffix(build, " AS build") {
		t.Errorf("build stage FROM %s: want %s… AS build (go.mod's Go)", build, want)
	}
	final := ins[froms[len(froms)-1]:]
	if base := final[0].args; !strings.HasPrefix(base, "gcr.io/distroless/static") || !strings.HasSuffix(base, ":nonroot") {
		t.Errorf("runtime stage FROM %s: want distroless static, :nonroot", base)
	}
	var buildRun string
	for _, in := range ins[froms[0]:froms[len(froms)-1]] {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildRun = in.args
		}
		if in.cmd == "ADD" {
			t.Errorf("ADD %s: COPY only (no remote fetches)", in.args)
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-buildid=", "./cmd/pursuance"} {
		if !strings.Contains(buildRun, want) {
			t.Errorf("the build lacks %s: %s", want, buildRun)
		}
	}
	get := func(cmd string) instruction {
		var found instruction
		for _, in := range final {
			if in.cmd == cmd {
				found = in
			}
		}
		if found.cmd == "" {
			t.Fatalf("the runtime stage has no %s", cmd)
		}
		return found
	}
	user := get("USER").args
	if uid, _, _ := strings.Cut(user, ":"); uid == "0" || uid == "root" || uid == "" {
		t.Errorf("USER %s: want a non-root user", user)
	}
	if n, err := strconv.Atoi(strings.Split(user, ":")[0]); err != nil || n == 0 {
		t.Errorf("USER %s: want a numeric non-root uid (Kubernetes' runAsNonRoot checks it)", user)
	}
	health := get("HEALTHCHECK").args
	hcmd := instruction{"CMD", health[strings.Index(health, "CMD ")+4:]}
	hc := execForm(t, hcmd)
	entry := execForm(t, get("ENTRYPOINT"))
	args := execForm(t, get("CMD"))
	expose := get("EXPOSE").args
	volume := execForm(t, get("VOLUME"))
	if entry[0] != "/usr/local/bin/pursuance" || hc[0] != entry[0] {
		t.Errorf("ENTRYPOINT %v, HEALTHCHECK %v: want the binary the image holds", entry, hc)
	}
	listen := args[slices.Index(args, "--listen")+1]
	data := args[slices.Index(args, "--data")+1]
	url := hc[slices.Index(hc, "--url")+1]
	if _, port, _ := net.SplitHostPort(listen); port != expose || !strings.Contains(url, ":"+expose+"/healthz") {
		t.Errorf("listens on %s, exposes %s, health checks %s", listen, expose, url)
	}
	if !slices.Equal(volume, []string{data}) {
		t.Errorf("VOLUME %v, --data %s", volume, data)
	}

	// The image's command and health check, run by the real relay
	// command (in this process) on loopback: the relay starts with the
	// CMD's flags, and the HEALTHCHECK's command exits 0 against it, 1
	// once it is gone.
	relayArgs := append(slices.Clone(entry[1:]), args...)
	relayArgs[slices.Index(relayArgs, "--listen")+1] = "127.0.0.1:0"
	relayArgs[slices.Index(relayArgs, "--data")+1] = t.TempDir()
	base, stop := startRelay(t, relayArgs)
	healthArgs := slices.Clone(hc[1:])
	healthArgs[slices.Index(healthArgs, "--url")+1] = strings.Replace(url, "http://127.0.0.1:"+expose, base, 1)
	check := func() int {
		return cli.Run(healthArgs, &cli.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }, Context: context.Background()})
	}
	if code := check(); code != 0 {
		t.Fatalf("the HEALTHCHECK's command %v exits %d against a running relay", healthArgs, code)
	}
	stop()
	if code := check(); code == 0 {
		t.Fatal("the HEALTHCHECK passes with no relay")
	}
}

// startRelay runs the relay command with args in this process until stop
// is called, and returns its URL.
func startRelay(t *testing.T, args []string) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(args, &cli.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: pw, Getenv: func(string) string { return "" }, Context: ctx})
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http") {
		cancel()
		t.Fatalf("pursuance %v: %q %v", args, line, err)
	}
	go io.Copy(io.Discard, pr)
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("the relay exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("the relay did not stop")
		}
	}
	t.Cleanup(stop)
	return strings.TrimSpace(line), stop
}

// unitKeys parses a systemd unit's [Service] settings (a key may repeat).
func unitKeys(t *testing.T) map[string][]string {
	b, err := os.ReadFile("pursuance-relay.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	section := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "[Service]" {
			keys[k] = append(keys[k], v)
		}
	}
	return keys
}

// maxExposure is the most `systemd-analyze security` may rate the unit
// (0 is fully locked down, 10 fully exposed; below 2 is "OK").
const maxExposure = 2.0

// The unit runs the relay as a dynamic user with the file system read-only
// but for its state, no privileges, no capabilities and a system call
// filter; where systemd-analyze is installed, `verify` accepts it and
// `security` rates its exposure at most maxExposure.
func TestSystemdUnit(t *testing.T) {
	keys := unitKeys(t)
	for k, want := range map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
		"MemoryDenyWriteExecute": "yes", "LockPersonality": "yes", "RestrictNamespaces": "yes",
		"StateDirectory": "pursuance-relay", "KillSignal": "SIGTERM", "UMask": "0077",
	} {
		if v, ok := keys[k]; !ok || v[len(v)-1] != want {
			t.Errorf("%s=%v, want %q", k, v, want)
		}
	}
	if !slices.Contains(keys["SystemCallFilter"], "@system-service") || keys["RestrictAddressFamilies"] == nil {
		t.Errorf("no system call filter or address families: %v %v", keys["SystemCallFilter"], keys["RestrictAddressFamilies"])
	}
	exec0 := keys["ExecStart"][0]
	if !strings.HasPrefix(exec0, "/usr/local/bin/pursuance relay ") || !strings.Contains(exec0, "--data ${STATE_DIRECTORY}") {
		t.Errorf("ExecStart=%s", exec0)
	}
	// The unit's command, with its directories (this one's relay.yaml
	// as the configuration) and on loopback, starts the relay.
	line := strings.NewReplacer("${CONFIGURATION_DIRECTORY}", ".", "${STATE_DIRECTORY}", t.TempDir()).Replace(exec0)
	_, stop := startRelay(t, append(strings.Fields(line)[1:], "--listen", "127.0.0.1:0"))
	stop()

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit's keys are checked, not the unit") // .ci/run installs it
		return
	}
	// verify wants the command to exist: this test's own binary stands in.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile("pursuance-relay.service")
	unit := filepath.Join(t.TempDir(), "pursuance-relay.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/pursuance", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=true", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security said no exposure level:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > maxExposure {
		t.Errorf("exposure %.1f, want at most %.1f:\n%s", level, maxExposure, out)
	}
}
