package buildkit

import (
	"runtime/debug"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/version"
)

// buildkitVersion is the BuildKit module berthd was built with, which
// buildx shows (docker buildx ls, inspect); BuildKit's own binaries get it
// from the linker.
func buildkitVersion() client.BuildkitVersion {
	v := client.BuildkitVersion{Package: version.Package, Version: version.Version, Revision: version.Revision}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/moby/buildkit" {
				v.Version = m.Version
				if m.Replace != nil {
					v.Version = m.Replace.Version
				}
			}
		}
	}
	if v.Revision == "" {
		v.Revision = "berth"
	}
	return v
}
