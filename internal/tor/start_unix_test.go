//go:build unix

package tor

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// starter is the role of a process that starts a tor, prints its pid and
// waits to be killed.
func starter(dir string) int {
	os.Setenv(roleFakeTor, "1")
	os.Unsetenv(roleStarter)
	tr, err := Start(context.Background(), Config{Binary: os.Args[0], DataDir: filepath.Join(dir, "tor")})
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	info, err := tr.cc.getinfo(context.Background(), "process/pid")
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	fmt.Println("PID", info["process/pid"])
	select {}
}

// TestStartedTorDiesWithUs: a tor that Start started exits when the
// process that started it is killed (SIGKILL: no Close runs).
func TestStartedTorDiesWithUs(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleStarter+"="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	pidText, ok := strings.CutPrefix(strings.TrimSpace(line), "PID ")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil {
		cmd.Process.Kill()
		t.Fatalf("the starter said %q", line)
	}
	if !alive(pid) {
		t.Fatalf("tor (pid %d) is not running", pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	for deadline := time.Now().Add(20 * time.Second); alive(pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("tor (pid %d) outlived the process that started it by 20s", pid)
		}
	}
}

// alive reports whether process pid runs: it exists and, where /proc
// tells, is not a zombie waiting for a parent to reap it.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
