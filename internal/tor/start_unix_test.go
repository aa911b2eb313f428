//go:build unix

package tor

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// starter is the role of a process that starts a tor, prints its control
// port's address and waits to be killed.
func starter(dir string) int {
	os.Setenv(roleFakeTor, "1")
	os.Unsetenv(roleStarter)
	tr, err := Start(context.Background(), Config{Binary: os.Args[0], DataDir: filepath.Join(dir, "tor")})
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	fmt.Println("CONTROL", tr.ControlAddr())
	select {}
}

// TestStartedTorDiesWithUs: a tor that Start started exits when the
// process that started it is killed (SIGKILL: no Close runs): its
// control port stops answering. (Its port, not its PID: in a PID
// namespace of internal/tortest's, the PID may outlive it as a zombie.)
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
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "CONTROL ")
	if !ok {
		cmd.Process.Kill()
		t.Fatalf("the starter said %q", line)
	}
	answers := func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	if !answers() {
		t.Fatalf("tor's control port %s does not answer", addr)
	}
	cmd.Process.Kill()
	cmd.Wait()
	for deadline := time.Now().Add(20 * time.Second); answers(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("tor (control port %s) outlived the process that started it by 20s", addr)
		}
	}
}
