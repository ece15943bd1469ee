package server

import (
	"runtime"
	"runtime/debug"
)

// A Build names the build of a hub's binary: sparr version prints it and
// the hub exports it as sparr_build_info.
type Build struct {
	// Version is the release ("v1.2.3"), or "(devel)" for a build that
	// names none.
	Version string
	// Revision is the VCS commit the binary was built from; empty when
	// the build did not record one (go test, go run).
	Revision string
	// Modified reports a build from a work tree with uncommitted changes.
	Modified bool
	// GoVersion is the Go release that built the binary.
	GoVersion string
}

// ReadBuild reads the running binary's build information. version, if not
// empty, is the release set at build time and replaces the module
// version.
func ReadBuild(version string) Build {
	b := Build{Version: version, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}
