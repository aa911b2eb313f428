package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestThreatModelNamesRealTests: every test docs/threat-model.md and
// docs/metadata.md name as backing a claim exists — a Go test function
// (subtest names aside), or a script TestScripts/NAME under
// testdata/script — so neither can cite a test that was renamed or never
// written; and every line of docs/metadata.md names a test, a reason or
// a limit.
func TestThreatModelNamesRealTests(t *testing.T) {
	for _, doc := range []string{"threat-model.md", "metadata.md"} {
		t.Run(doc, func(t *testing.T) { checkCitedTests(t, doc) })
	}
}

func checkCitedTests(t *testing.T, file string) {
	doc, err := os.ReadFile("../../docs/" + file)
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "../.." {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllSubmatch(b, -1) {
			funcs[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Claims are the rows of the tables; the last cell names the tests.
	var cited []string
	testName := regexp.MustCompile(`\bTest[A-Za-z0-9_]+(/[A-Za-z0-9_-]+)?`)
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 2 {
			continue
		}
		last := cells[len(cells)-1]
		names := testName.FindAllString(last, -1)
		cited = append(cited, names...)
		if strings.Contains(line, "---") || strings.TrimSpace(last) == "backed by" {
			continue // a table's head
		}
		if file == "metadata.md" && len(names) == 0 && !strings.Contains(last, "reason") && !strings.Contains(last, "limit") {
			t.Errorf("docs/%s: a line backed by no test, reason or limit: %s", file, line)
		}
	}
	if len(cited) < 10 {
		t.Fatalf("only %d tests cited: is this docs/%s?", len(cited), file)
	}
	for _, c := range cited {
		name, sub, _ := strings.Cut(c, "/")
		if !funcs[name] {
			t.Errorf("docs/%s cites %s: no such test function", file, c)
			continue
		}
		if name == "TestScripts" && sub != "" {
			if _, err := os.Stat(filepath.Join("testdata/script", sub+".txtar")); err != nil {
				t.Errorf("docs/%s cites %s: no script %s.txtar", file, c, sub)
			}
		}
	}
}
