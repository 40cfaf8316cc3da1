package compat

import "github.com/berthd/berth/engine/httputil"

// What a request of an older API version means. Each function names one
// change in dockerd's API history; handlers ask them instead of comparing
// versions themselves.

// before reports whether version is older than the version that made a change.
func before(version, change string) bool { return httputil.VersionLessThan(version, change) }

// DefaultIPCShareable: before 1.40 a container created without an IPC mode
// got dockerd's old default, "shareable".
func DefaultIPCShareable(version string) bool { return before(version, "1.40") }

// CreatePlatform: from 1.41 a create's "platform" query parameter chooses the
// image's platform; older clients' parameter is ignored.
func CreatePlatform(version string) bool { return !before(version, "1.41") }

// DefaultNetworkOnly: before 1.44 a create used only the endpoint settings of
// its NetworkMode network; the others in EndpointsConfig were ignored.
func DefaultNetworkOnly(version string) bool { return before(version, "1.44") }

// ReadOnlyNonRecursive: before 1.44 a read-only bind mount was not made
// read-only recursively.
func ReadOnlyNonRecursive(version string) bool { return before(version, "1.44") }

// EndpointMACIgnored: before 1.44 an endpoint's own MacAddress was ignored
// and only the container-wide one counted.
func EndpointMACIgnored(version string) bool { return before(version, "1.44") }

// ImageManifests: from 1.47 an image list may carry each image's manifests.
func ImageManifests(version string) bool { return !before(version, "1.47") }

// PruneAllVolumes: before 1.42 a volume prune removed every unused volume,
// not only anonymous ones (1.42 made prune anonymous-only).
func PruneAllVolumes(version string) bool { return before(version, "1.42") }

// BuildPruneKeepStorage: before 1.48 a build cache prune took keep-storage;
// from 1.48 reserved-space, max-used-space and min-free-space.
func BuildPruneKeepStorage(version string) bool { return before(version, "1.48") }

// StreamContentType is the content type of an attach, exec or logs stream:
// from 1.42 a stream without a TTY says it is multiplexed.
func StreamContentType(version string, tty bool) string {
	if !tty && !before(version, "1.42") {
		return "application/vnd.docker.multiplexed-stream"
	}
	return "application/vnd.docker.raw-stream"
}
