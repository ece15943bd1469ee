package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/sparr-dev/sparr/server"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3"; otherwise the module version.
var version = ""

func runVersion(_ context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "", "Version prints sparr's version, the commit it was built from, and the Go version.")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, versionString())
	return nil
}

// versionString is "sparr <version> (<commit>[, modified]) <go> <os>/<arch>".
func versionString() string {
	b := server.ReadBuild(version)
	s, rev := "sparr "+b.Version, b.Revision
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if b.Modified {
			rev += ", modified"
		}
		s += " (" + rev + ")"
	}
	return fmt.Sprintf("%s %s %s/%s", s, b.GoVersion, runtime.GOOS, runtime.GOARCH)
}
