package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version and revision are empty unless a release build sets them:
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.revision=$(git rev-parse HEAD)" ./cmd/smppgw
//
// Without them, `smppgw version` reports what the Go toolchain stamped into the binary: the module
// version (`go install ...@v1.2.0`) and the VCS revision, time and dirty flag (a build in a git
// checkout). A container build has no .git in its context, so deploy/Dockerfile passes both.
var (
	version  string
	revision string
)

// buildVersion is what `smppgw version` prints: one line, e.g.
// "smppgw v1.2.0 (revision 0123abcd, 2026-11-28T03:01:00Z, modified) go1.26.8 linux/amd64".
func buildVersion(info *debug.BuildInfo, ok bool) string {
	v, rev, at, modified := version, revision, "", false
	goVersion := runtime.Version()
	if ok {
		goVersion = info.GoVersion
		if v == "" && info.Main.Version != "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	var details []string
	if rev != "" {
		details = append(details, "revision "+rev)
	}
	if at != "" {
		details = append(details, at)
	}
	if modified {
		details = append(details, "modified")
	}
	out := "smppgw " + v
	if len(details) > 0 {
		out += " (" + strings.Join(details, ", ") + ")"
	}
	return fmt.Sprintf("%s %s %s/%s", out, goVersion, runtime.GOOS, runtime.GOARCH)
}

// versionLine is buildVersion of the running binary.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	return buildVersion(info, ok)
}
