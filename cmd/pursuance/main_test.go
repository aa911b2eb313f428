package main

import (
	"os"
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
	})
}
