package main

import (
	"os"
	"os/exec"
	"regexp"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// eventuallyPoll is how often `eventually` runs its command again.
const eventuallyPoll = 200 * time.Millisecond

// eventually TIMEOUT REGEXP pursuance ARGS...: runs the pursuance command
// (a real process, in the script's work directory, with its passphrase)
// again and again until its stdout matches REGEXP, failing after TIMEOUT.
// Scripts use it to wait for what a running node (node start) does in its
// background rounds, with no command of their own on that home but reads.
// The timeout is generous on purpose: a loaded 2-core machine runs other
// packages' tests at the same time, and a pass ends the wait at once.
func eventually(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 || args[2] != "pursuance" {
		ts.Fatalf("usage: eventually TIMEOUT REGEXP pursuance ARGS...")
	}
	timeout, err := time.ParseDuration(args[0])
	ts.Check(err)
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	bin, err := exec.LookPath("pursuance")
	ts.Check(err)
	var last []byte
	for deadline := time.Now().Add(timeout); ; time.Sleep(eventuallyPoll) {
		cmd := exec.Command(bin, args[3:]...)
		cmd.Dir = ts.Getenv("WORK")
		cmd.Env = append(os.Environ(), "PURSUANCE_PASSPHRASE="+ts.Getenv("PURSUANCE_PASSPHRASE"), "PURSUANCE_HOME="+ts.Getenv("PURSUANCE_HOME"), "GORACE="+ts.Getenv("GORACE"))
		out, err := cmd.Output()
		if err == nil && re.Match(out) {
			ts.Logf("eventually: %s matched", args[1])
			return
		}
		if err == nil {
			last = out
		}
		if time.Now().After(deadline) {
			ts.Fatalf("eventually: %q did not match the stdout of %v within %s (last: %q, %v)", args[1], args[3:], timeout, last, err)
		}
	}
}
