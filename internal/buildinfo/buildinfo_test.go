package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuild(t *testing.T) {
	for _, c := range []struct {
		name string
		set  string // Version as set by -ldflags
		bi   debug.BuildInfo
		want Info
	}{
		{"devel build in a checkout", "", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "false"}}},
			Info{Version: "dev", Commit: "abc123", Go: "go1.26.8"}},
		{"modified tree", "", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}},
			Info{Version: "dev", Commit: "abc123+dirty", Go: "go1.26.8"}},
		{"go install module@version", "", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			Info{Version: "v1.4.0", Go: "go1.26.8"}},
		{"release build", "v2.0.0", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "def"}}},
			Info{Version: "v2.0.0", Commit: "def", Go: "go1.26.8"}},
	} {
		bi := c.bi
		if got := fromBuild(Info{Version: c.set, Go: "unset"}, &bi); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}
