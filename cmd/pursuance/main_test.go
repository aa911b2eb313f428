package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pursuance/pursuance/internal/cli"
)

// TestMain lets the test binary act as the pursuance command inside scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"pursuance": func() { os.Exit(cli.Main()) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/script, each against the
// real command in a fresh working directory.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// Each script starts with its own home and no passphrase.
			env.Setenv("PURSUANCE_HOME", env.WorkDir+"/home")
			// Under -race, each process otherwise sleeps a second at exit.
			if os.Getenv("GORACE") == "" {
				env.Setenv("GORACE", "atexit_sleep_ms=0")
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"capture": capture,
		},
	})
}

// capture VAR [REGEXP] sets the environment variable VAR to the last
// command's stdout, trimmed, or to REGEXP's first submatch in it. Scripts
// use it to carry IDs and invite codes from one command to the next.
func capture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: capture VAR [REGEXP]")
	}
	out := ts.ReadFile("stdout")
	val := strings.TrimSpace(out)
	if len(args) == 2 {
		m := regexp.MustCompile(args[1]).FindStringSubmatch(out)
		if len(m) < 2 {
			ts.Fatalf("capture: %q does not match stdout %q", args[1], out)
		}
		val = m[1]
	}
	ts.Setenv(args[0], val)
}
