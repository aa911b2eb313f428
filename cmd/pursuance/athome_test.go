package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// athome HOME... -- VALUE... reads every file under each HOME (file names
// included: a directory listing is something a thief sees too) and fails
// if any VALUE shows in any of the forms a program could have written it
// in: the text itself, UTF-16, hex and base64 of it, and for a pursuance,
// event or task ID or a member ID, its raw 32 bytes and their hex and
// base64; for a URL, its host:port too. The only values allowed, each in
// one file, are those docs/keystore.md lists as clear: the home owner's
// own name and member ID in identity.json (which `pursuance id show`
// prints without the passphrase), and the node's own loopback URLs in
// node.json and running.json.
func athome(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("athome: no negation")
	}
	sep := slices.Index(args, "--")
	if sep < 1 || sep == len(args)-1 {
		ts.Fatalf("usage: athome HOME... -- VALUE...")
	}
	homes, values := args[:sep], args[sep+1:]
	var hits []string
	var files []string
	for _, h := range homes {
		home := ts.MkAbs(h)
		allowed := allowedAtRest(ts, home)
		err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
			// The node may be running: SQLite removes a -shm or -wal file
			// between the listing and the read. What is gone holds
			// nothing at rest.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(filepath.Dir(home), path)
			inHome, _ := filepath.Rel(home, path)
			name := []byte(rel)
			var content []byte
			if d.Type().IsRegular() {
				if content, err = os.ReadFile(path); errors.Is(err, fs.ErrNotExist) {
					return nil
				} else if err != nil {
					return err
				}
				files = append(files, rel)
			}
			for _, v := range values {
				if slices.Contains(allowed[inHome], v) {
					continue
				}
				for form, b := range atRestForms(v) {
					switch {
					case bytes.Contains(content, b):
						hits = append(hits, fmt.Sprintf("%q (%s) in %s", v, form, rel))
					case bytes.Contains(name, b):
						hits = append(hits, fmt.Sprintf("%q (%s) in the name %s", v, form, rel))
					}
				}
			}
			return nil
		})
		ts.Check(err)
	}
	if len(files) == 0 {
		ts.Fatalf("athome: no files under %v", homes)
	}
	if len(hits) > 0 {
		slices.Sort(hits)
		ts.Fatalf("in the clear at rest:\n\t%s", strings.Join(slices.Compact(hits), "\n\t"))
	}
	ts.Logf("athome: %d values, none in the clear in %s", len(values), strings.Join(files, " "))
}

// allowedAtRest returns the values that may show in home, by file name:
// the owner's name and member ID in identity.json, the URLs node.json
// holds.
func allowedAtRest(ts *testscript.TestScript, home string) map[string][]string {
	out := map[string][]string{}
	if b, err := os.ReadFile(filepath.Join(home, "identity.json")); err == nil {
		var f struct {
			Public struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"public"`
		}
		ts.Check(json.Unmarshal(b, &f))
		out["identity.json"] = []string{f.Public.ID, f.Public.Name}
	}
	// node.json and (while the node runs) running.json name the node's
	// own loopback URLs.
	for _, name := range []string{"node.json", "running.json"} {
		b, err := os.ReadFile(filepath.Join(home, name))
		if err != nil {
			continue
		}
		var f struct {
			Relay string `json:"relay"`
			UI    string `json:"ui"`
		}
		ts.Check(json.Unmarshal(b, &f))
		for _, u := range []string{f.Relay, f.UI} {
			if u != "" {
				out[name] = append(out[name], u, strings.TrimSuffix(u, "/"))
			}
		}
	}
	return out
}

// atRestForms returns the byte strings v could be written as, by the name
// of the form.
func atRestForms(v string) map[string][]byte {
	out := map[string][]byte{}
	text := func(what string, s string) {
		out[what] = []byte(s)
		var u16 []byte
		for _, r := range utf16.Encode([]rune(s)) {
			u16 = append(u16, byte(r), byte(r>>8))
		}
		out[what+", UTF-16LE"] = u16
		out[what+", hex"] = []byte(hex.EncodeToString([]byte(s)))
		out[what+", base64"] = []byte(base64.StdEncoding.EncodeToString([]byte(s)))
	}
	raw := func(b []byte) {
		out["raw"] = b
		out["raw, hex"] = []byte(hex.EncodeToString(b))
		out["raw, base64"] = []byte(strings.TrimRight(base64.StdEncoding.EncodeToString(b), "="))
		out["raw, base64url"] = []byte(base64.RawURLEncoding.EncodeToString(b))
	}
	text("text", v)
	if id, err := event.ParseID(strings.ToLower(v)); err == nil {
		raw(id[:])
	}
	if pk, err := identity.ParseMemberID(v); err == nil {
		raw(pk[:])
	}
	if rest, ok := strings.CutPrefix(v, "http://"); ok {
		text("host:port", strings.TrimSuffix(rest, "/"))
	}
	return out
}
