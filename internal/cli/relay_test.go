package cli

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// Every setting of `pursuance relay` is a flag and a key of the same
// name, listed in docs/relay.md's settings table, and the example file
// there is one the command reads.
func TestRelaySettingsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/relay.md")
	if err != nil {
		t.Fatal(err)
	}
	e, _, _ := testEnv(nil, nil)
	cmd := newRelayCmd(e)
	typ := reflect.TypeFor[relayFile]()
	for i := range typ.NumField() {
		key := typ.Field(i).Tag.Get("yaml")
		if cmd.Flags().Lookup(key) == nil {
			t.Errorf("the file's key %q is no flag", key)
		}
		if row := "| `--" + key + "` / `" + key + "` |"; !strings.Contains(string(doc), row) {
			t.Errorf("docs/relay.md's settings lack %q", row)
		}
	}
	if n := strings.Count(cmd.Flags().FlagUsages(), "\n"); n != typ.NumField()+1 { // and --config
		t.Errorf("%d flags, %d keys in the file", n-1, typ.NumField())
	}
	m := regexp.MustCompile("(?s)Example `relay.yaml`:\n\n```yaml\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no example relay.yaml in docs/relay.md")
	}
	var f relayFile
	if err := yaml.UnmarshalWithOptions(m[1], &f, yaml.Strict()); err != nil {
		t.Fatalf("the example relay.yaml: %v", err)
	}
	if err := checkRelayLimits(f); err != nil || len(f.TrustedProxies) != 1 || f.TopicQuota != 4<<30 {
		t.Errorf("the example relay.yaml: %+v %v", f, err)
	}
	if _, err := parsePrefix(f.TrustedProxies[0]); err != nil {
		t.Error(err)
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":       "10.0.0.0/8",
		"10.1.2.3/8":       "10.0.0.0/8",
		"192.0.2.1":        "192.0.2.1/32",
		"::ffff:192.0.2.1": "192.0.2.1/32",
		"2001:db8::/32":    "2001:db8::/32",
		"2001:db8::1":      "2001:db8::1/128",
	} {
		p, err := parsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("%s: %v %v, want %s", in, p, err, want)
		}
	}
	if _, err := parsePrefix("proxy.example"); err == nil {
		t.Error("a name taken as an address")
	}
}
