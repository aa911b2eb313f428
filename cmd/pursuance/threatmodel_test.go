package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestThreatModelNamesRealTests: every test docs/threat-model.md names as
// backing a claim exists — a Go test function (subtest names aside), or a
// script TestScripts/NAME under testdata/script — so the model cannot
// cite a test that was renamed or never written.
func TestThreatModelNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("../../docs/threat-model.md")
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
		cited = append(cited, testName.FindAllString(cells[len(cells)-1], -1)...)
	}
	if len(cited) < 20 {
		t.Fatalf("only %d tests cited: is this the threat model?", len(cited))
	}
	for _, c := range cited {
		name, sub, _ := strings.Cut(c, "/")
		if !funcs[name] {
			t.Errorf("docs/threat-model.md cites %s: no such test function", c)
			continue
		}
		if name == "TestScripts" && sub != "" {
			if _, err := os.Stat(filepath.Join("testdata/script", sub+".txtar")); err != nil {
				t.Errorf("docs/threat-model.md cites %s: no script %s.txtar", c, sub)
			}
		}
	}
}
