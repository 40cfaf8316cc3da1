package runtime

import (
	"context"
	"github.com/berthd/berth/runtime/oci"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
)

// Inspect answers GET /containers/{id}/json.
func (s *Service) Inspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error) {
	c, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	// a deep copy: the response shares nothing with the view other
	// readers see, whatever its callers do to it
	recp, err := cloneRecord(c.snapshot())
	if err != nil {
		return nil, err
	}
	rec := *recp
	execIDs := s.execs.ids(c)
	hc := *rec.HostConfig
	hc.Links = s.inspectLinks(&rec)
	if hc.Runtime == "" {
		hc.Runtime = RuntimeName // records from before create set it
	}
	st := rec.State
	dir := s.containerDir(rec.ID)
	resp := &container.InspectResponse{
		ID:      rec.ID,
		Created: rec.Created.Format(time.RFC3339Nano),
		Path:    rec.Path,
		Args:    nonNil(rec.Args),
		State: &container.State{
			Status:     st.Status,
			Running:    st.Status == container.StateRunning || st.Status == container.StatePaused,
			Paused:     st.Status == container.StatePaused,
			Restarting: st.Status == container.StateRestarting,
			OOMKilled:  st.OOMKilled,
			Dead:       st.Status == container.StateDead,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  timeString(st.StartedAt),
			FinishedAt: timeString(st.FinishedAt),
			Health:     st.Health,
		},
		Image:           rec.Image,
		ResolvConfPath:  filepath.Join(dir, "resolv.conf"),
		HostnamePath:    filepath.Join(dir, "hostname"),
		HostsPath:       filepath.Join(dir, "hosts"),
		LogPath:         s.inspectLogPath(&rec),
		Name:            rec.Name,
		RestartCount:    rec.RestartCount,
		Driver:          "overlay",
		Platform:        "linux",
		AppArmorProfile: oci.AppArmorProfile(hc.SecurityOpt),
		ExecIDs:         execIDs,
		HostConfig:      &hc,
		GraphDriver:     &storage.DriverData{Name: "overlay", Data: map[string]string{}},
		Mounts:          mountPoints(&rec),
		Config:          rec.Config,
		NetworkSettings: &container.NetworkSettings{
			SandboxID:  sandboxID(&rec),
			SandboxKey: rec.SandboxKey,
			Ports:      inspectPorts(&rec),
			Networks:   s.networkSettings(&rec),
		},
	}
	if len(resp.ExecIDs) == 0 {
		resp.ExecIDs = nil
	}
	if size {
		if rw, total, err := s.d.Images.RootfsSize(ctx, rec.ID); err == nil {
			resp.SizeRw, resp.SizeRootFs = &rw, &total
		}
	}
	return resp, nil
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sandboxID(rec *Record) string {
	if rec.SandboxKey == "" {
		return ""
	}
	return rec.ID
}

// inspectPorts lists every exposed port, bound or not (nil bindings), the
// way inspect shows them.
func inspectPorts(rec *Record) network.PortMap {
	out := network.PortMap{}
	for p := range rec.Config.ExposedPorts {
		out[p] = nil
	}
	for p, bs := range rec.Ports {
		out[p] = bs
	}
	return out
}

// networkSettings merges the wanted networks with what is attached now.
func (s *Service) networkSettings(rec *Record) map[string]*network.EndpointSettings {
	out := make(map[string]*network.EndpointSettings, len(rec.Networks))
	for name, want := range rec.Networks {
		if live := rec.Endpoints[name]; live != nil {
			out[name] = live.Copy()
			continue
		}
		ep := &network.EndpointSettings{}
		if want != nil {
			ep = want.Copy()
		}
		out[name] = ep
	}
	return out
}

func mountPoints(rec *Record) []container.MountPoint {
	out := make([]container.MountPoint, 0, len(rec.Mounts))
	for _, m := range rec.Mounts {
		if m.Spec.FromTmpfsMap {
			continue // dockerd lists these under HostConfig.Tmpfs only
		}
		out = append(out, m.Spec.ToMountPoint())
	}
	return out
}

// inspectLogPath is LogPath as dockerd shows it: the json-file log's path,
// "" for every other driver (their files are not an API).
func (s *Service) inspectLogPath(rec *Record) string {
	if rec.HostConfig.LogConfig.Type != "json-file" {
		return ""
	}
	return s.logPath(rec.ID)
}
