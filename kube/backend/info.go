package backend

import (
	"context"
	goruntime "runtime"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
)

// Version describes the daemon for GET /version: berth's engine in front of
// the cluster, whose version is a component.
type Version struct {
	Berth, APIVersion, MinAPIVersion string
}

// Info answers /info: the containers berth owns in the cluster and the
// cluster's version. Figures a cluster has no one value for (images,
// storage driver, kernel) are left empty.
func (b *Backend) Info(ctx context.Context) (*system.Info, error) {
	pods, err := b.ownedPods()
	if err != nil {
		return nil, err
	}
	info := &system.Info{
		ID:              "kubernetes",
		Name:            b.server(),
		Driver:          "kubernetes",
		OSType:          goruntime.GOOS,
		Architecture:    goruntime.GOARCH,
		OperatingSystem: "Kubernetes " + b.clusterVersion(),
		Containers:      len(pods),
		Labels:          []string{"berth.backend=kubernetes"},
	}
	now := b.now()
	for _, p := range pods {
		switch podState(p, now).status {
		case container.StateRunning:
			info.ContainersRunning++
		default:
			info.ContainersStopped++
		}
	}
	return info, nil
}

// VersionResponse is GET /version's answer.
func (b *Backend) VersionResponse(v Version) system.VersionResponse {
	details := map[string]string{"ApiVersion": v.APIVersion, "MinAPIVersion": v.MinAPIVersion, "Os": goruntime.GOOS, "Arch": goruntime.GOARCH, "GoVersion": goruntime.Version()}
	return system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth " + v.Berth + " (Kubernetes backend)"},
		Version:       v.Berth,
		APIVersion:    v.APIVersion,
		MinAPIVersion: v.MinAPIVersion,
		Os:            goruntime.GOOS,
		Arch:          goruntime.GOARCH,
		GoVersion:     goruntime.Version(),
		Components: []system.ComponentVersion{
			{Name: "Engine", Version: v.Berth, Details: details},
			{Name: "Kubernetes", Version: b.clusterVersion()},
		},
	}
}

func (b *Backend) clusterVersion() string {
	v, err := b.c.Discovery().ServerVersion()
	if err != nil {
		return "unknown"
	}
	return v.GitVersion
}

func (b *Backend) server() string {
	if rc := b.c.Discovery().RESTClient(); rc != nil {
		if u := rc.Get().URL(); u != nil {
			return u.Host
		}
	}
	return "kubernetes"
}
