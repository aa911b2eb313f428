package event_test

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The pure core does no I/O, reads no clock and keeps no global state
// (docs/architecture.md). TestPurity enforces that for the packages below
// by reading their non-test source files: it needs no network and no go
// command. Add each new pure package (keys, ...) here.
var purePackages = []string{
	".",           // event
	"../identity", // identity (not identity/keystore, which does I/O)
	"../charter",  // charter: roles, rules, templates
	"../state",    // state: the fold of a log into a pursuance's state
	"../keys",     // keys: the key schedule, envelopes, sealed seeds
	"../profile",  // profile: public profile records, join requests, answers
}

// forbiddenImports may not be imported directly by a pure package. (They are
// reached indirectly through fmt and the like; what matters is that the
// package's own code does not use them.)
var forbiddenImports = map[string]string{
	"crypto/rand":  "randomness is passed in as an io.Reader",
	"io/ioutil":    "file I/O",
	"log":          "logging is passed in",
	"log/slog":     "logging is passed in",
	"math/rand":    "randomness is passed in",
	"math/rand/v2": "randomness is passed in",
	"net":          "network I/O",
	"net/http":     "network I/O",
	"os":           "I/O and the environment",
	"os/exec":      "subprocesses",
	"os/signal":    "process state",
	"syscall":      "I/O",
	"unsafe":       "",
}

// clockFuncs read the wall clock or wait on it.
var clockFuncs = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"AfterFunc": true, "Tick": true, "NewTicker": true, "NewTimer": true,
}

// allowedVars are the package-level variables that are tables, fixed once
// at initialisation and never written. Errors (Err* = errors.New or
// fmt.Errorf) are allowed without listing. Anything else is global state.
var allowedVars = map[string]string{
	"event.kindNames":           "kind name table",
	"identity.memberIDEncoding": "base32 alphabet",
	"identity.kem":              "the KEM algorithm descriptor",
	"identity.nameScripts":      "script names of unicode.Scripts, fixed at init",
	"identity.allowedMixes":     "script mixes names may use (UTS #39)",
	"identity.lookAlike":        "look-alike character table",
	"charter.templateFiles":     "embedded template files, read-only",
	"state.encMode":             "CBOR encoder options, fixed at init",
	"state.decMode":             "CBOR decoder options, fixed at init",
	"state.statusNames":         "status name table",
	"state.kinds":               "op kind table",
	"state.noRare":              "the empty nodeRare nodes without one share, never written (sameState checks)",
	"keys.buckets":              "envelope size table",
	"profile.encMode":           "CBOR encoder options, fixed at init",
	"profile.decMode":           "CBOR decoder options, fixed at init",
}

func TestPurity(t *testing.T) {
	for _, dir := range purePackages {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if len(pkg.GoFiles) == 0 {
			t.Fatalf("%s: no Go files", dir)
		}
		for _, imp := range pkg.Imports {
			if why, bad := forbiddenImports[imp]; bad || strings.HasPrefix(imp, "net/") {
				t.Errorf("package %s imports %s (%s); pure packages may not", pkg.Name, imp, why)
			}
		}
		fset := token.NewFileSet()
		for _, name := range pkg.GoFiles {
			path := filepath.Join(dir, name)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(src), "time.Now") {
				t.Errorf("%s/%s mentions time.Now; pure packages take times as arguments", pkg.Name, name)
			}
			f, err := parser.ParseFile(fset, path, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			checkClock(t, fset, pkg.Name, f)
			checkVars(t, fset, pkg.Name, f)
		}
	}
}

// checkClock reports calls or references to the clock functions of package
// time, under whatever name the file imports it.
func checkClock(t *testing.T, fset *token.FileSet, pkg string, f *ast.File) {
	timeName := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	if timeName == "" {
		return
	}
	if timeName == "." || timeName == "_" {
		t.Errorf("%s: %s imports time as %q", pkg, fset.Position(f.Package), timeName)
		return
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == timeName && clockFuncs[sel.Sel.Name] {
			t.Errorf("%s: %s uses time.%s; pure packages take times as arguments", pkg, fset.Position(sel.Pos()), sel.Sel.Name)
		}
		return true
	})
}

// checkVars reports package-level variables that are neither errors nor
// listed tables.
func checkVars(t *testing.T, fset *token.FileSet, pkg string, f *ast.File) {
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if name.Name == "_" {
					continue // var _ I = (*T)(nil)
				}
				if _, ok := allowedVars[pkg+"."+name.Name]; ok {
					continue
				}
				if strings.HasPrefix(name.Name, "Err") && i < len(vs.Values) && isErrorCtor(vs.Values[i]) {
					continue
				}
				t.Errorf("%s: package-level var %s.%s is neither an error nor a listed table; pure packages keep no global state",
					fset.Position(name.Pos()), pkg, name.Name)
			}
		}
	}
}

func isErrorCtor(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && (id.Name == "errors" && sel.Sel.Name == "New" || id.Name == "fmt" && sel.Sel.Name == "Errorf")
}
