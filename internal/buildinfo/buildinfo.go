// Package buildinfo says which build of pursuance is running: its version,
// the commit it was built from and the Go toolchain, read from the build
// information Go embeds in every binary (runtime/debug). `pursuance
// version` prints it and the relay exports it as pursuance_build_info.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is the release version when the build sets one, with
// -ldflags "-X github.com/pursuance/pursuance/internal/buildinfo.Version=v1.2.3"
// (.ci/release does). Without it, the module version from the build
// information is used (set by `go install …@v1.2.3`), else "dev".
var Version = ""

// Commit is the commit the release was built from, when the build sets it
// with -ldflags "-X …/internal/buildinfo.Commit=…" (.ci/release does, as
// builds with -buildvcs=false record none); otherwise the VCS revision Go
// recorded, if any.
var Commit = ""

// Info is what `pursuance version --json` prints.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

// Get returns this binary's build information. Commit is the VCS revision
// the binary was built from, with "+dirty" when the tree had changes, or
// "" when the build recorded none (go test, a build outside a checkout,
// or -buildvcs=false).
func Get() Info {
	in := Info{Version: Version, Commit: Commit, Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if in.Version == "" {
			in.Version = "dev"
		}
		return in
	}
	return fromBuild(in, bi)
}

func fromBuild(in Info, bi *debug.BuildInfo) Info {
	if in.Version == "" {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			in.Version = v
		} else {
			in.Version = "dev"
		}
	}
	if bi.GoVersion != "" {
		in.Go = bi.GoVersion
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if in.Commit == "" {
				in.Commit = s.Value
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && in.Commit != "" && !strings.HasSuffix(in.Commit, "+dirty") {
		in.Commit += "+dirty"
	}
	return in
}
