package runtime

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// ListOptions are the options of GET /containers/json.
type ListOptions struct {
	All     bool
	Limit   int
	Size    bool
	Filters filters.Args
}

var psFilterKeys = []string{"id", "name", "label", "label!", "status", "exited", "ancestor", "before", "since", "volume", "network", "health", "publish", "expose", "is-task"}

var validStatus = map[string]bool{"created": true, "restarting": true, "running": true, "removing": true, "paused": true, "exited": true, "dead": true}

// List answers `docker ps`.
func (s *Service) List(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	f := opts.Filters
	if err := f.Validate(psFilterKeys...); err != nil {
		return nil, err
	}
	for _, st := range f.Get("status") {
		if !validStatus[st] {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'status=%s'", st))
		}
	}
	for _, h := range f.Get("health") {
		switch h {
		case "starting", "healthy", "unhealthy", "none":
		default:
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'health=%s'", h))
		}
	}
	var exited []int
	for _, e := range f.Get("exited") {
		n, err := strconv.Atoi(e)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'exited=%s'", e))
		}
		exited = append(exited, n)
	}
	before, err := s.boundary(f, "before")
	if err != nil {
		return nil, err
	}
	since, err := s.boundary(f, "since")
	if err != nil {
		return nil, err
	}
	ancestors, err := s.ancestorIDs(ctx, f)
	if err != nil {
		return nil, err
	}
	all := opts.All || opts.Limit > 0 || f.Has("status") || f.Has("exited")

	recs := s.views()
	sort.Slice(recs, func(i, j int) bool { return recs[i].Created.After(recs[j].Created) })
	linkNames := linkNamesByChild(recs)

	out := []container.Summary{}
	for _, rec := range recs {
		running := rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused || rec.State.Status == container.StateRestarting
		if !all && !running {
			continue
		}
		if !matchRecord(f, rec, exited, ancestors) {
			continue
		}
		if !before.IsZero() && !rec.Created.Before(before) {
			continue
		}
		if !since.IsZero() && !rec.Created.After(since) {
			continue
		}
		sum := s.summary(rec)
		sum.Names = append(sum.Names, linkNames[rec.ID]...)
		if opts.Size {
			if rw, total, err := s.d.Images.RootfsSize(ctx, rec.ID); err == nil {
				sum.SizeRw, sum.SizeRootFs = rw, total
			}
		}
		out = append(out, sum)
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
	}
	return out, nil
}

func matchRecord(f filters.Args, rec *Record, exited []int, ancestors map[string]bool) bool {
	name := strings.TrimPrefix(rec.Name, "/")
	if !f.FuzzyMatch("id", rec.ID) || !f.Match("name", name) && !f.Match("name", rec.Name) {
		return false
	}
	if !f.MatchKVList("label", rec.Config.Labels) || matchesNegLabel(f, rec.Config.Labels) {
		return false
	}
	if !f.ExactMatch("status", string(rec.State.Status)) {
		return false
	}
	if len(exited) > 0 {
		if rec.State.Status != container.StateExited {
			return false
		}
		ok := false
		for _, e := range exited {
			ok = ok || e == rec.State.ExitCode
		}
		if !ok {
			return false
		}
	}
	if f.Has("health") {
		h := string(container.NoHealthcheck)
		if rec.State.Health != nil {
			h = string(rec.State.Health.Status)
		}
		if !f.ExactMatch("health", h) {
			return false
		}
	}
	if ancestors != nil && !ancestors[rec.Image] {
		return false
	}
	if f.Has("network") {
		ok := false
		for n, ep := range rec.Networks {
			ok = ok || f.ExactMatch("network", n) || (ep != nil && ep.NetworkID != "" && f.FuzzyMatch("network", ep.NetworkID))
		}
		if !ok {
			return false
		}
	}
	if f.Has("volume") {
		ok := false
		for _, m := range rec.Mounts {
			ok = ok || (m.Spec.Type == "volume" && f.ExactMatch("volume", m.Spec.Source)) || f.ExactMatch("volume", m.Spec.Destination)
		}
		if !ok {
			return false
		}
	}
	if f.Has("publish") || f.Has("expose") {
		if !matchPorts(f, rec) {
			return false
		}
	}
	return true
}

func matchPorts(f filters.Args, rec *Record) bool {
	for _, v := range f.Get("publish") {
		p, proto, _ := strings.Cut(v, "/")
		found := false
		for port, bs := range rec.HostConfig.PortBindings {
			for _, b := range bs {
				found = found || (b.HostPort == p && (proto == "" || string(port.Proto()) == proto))
			}
		}
		if !found {
			return false
		}
	}
	for _, v := range f.Get("expose") {
		p, proto, _ := strings.Cut(v, "/")
		found := false
		for port := range rec.Config.ExposedPorts {
			found = found || (strconv.Itoa(int(port.Num())) == p && (proto == "" || string(port.Proto()) == proto))
		}
		if !found {
			return false
		}
	}
	return true
}

func matchesNegLabel(f filters.Args, labels map[string]string) bool {
	for _, v := range f.Get("label!") {
		k, want, hasValue := strings.Cut(v, "=")
		if got, ok := labels[k]; ok && (!hasValue || got == want) {
			return true
		}
	}
	return false
}

// boundary resolves the before/since filter to a creation time.
func (s *Service) boundary(f filters.Args, key string) (time.Time, error) {
	vs := f.Get(key)
	if len(vs) == 0 {
		return time.Time{}, nil
	}
	c, err := s.lookup(vs[0])
	if err != nil {
		return time.Time{}, err
	}
	return c.snapshot().Created, nil
}

// ancestorIDs resolves the ancestor filter to image IDs (nil: no filter).
func (s *Service) ancestorIDs(ctx context.Context, f filters.Args) (map[string]bool, error) {
	if !f.Has("ancestor") {
		return nil, nil
	}
	ids := map[string]bool{}
	for _, ref := range f.Get("ancestor") {
		img, err := s.d.Images.Image(ctx, ref)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue
			}
			return nil, err
		}
		ids[img.ID] = true
	}
	return ids, nil
}

func untilFilter(f filters.Args) (time.Time, error) {
	vs := f.Get("until")
	if len(vs) == 0 {
		return time.Time{}, nil
	}
	v := vs[0]
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if sec, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Unix(0, int64(sec*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'until=%s'", v))
}

func (s *Service) summary(rec *Record) container.Summary {
	sum := container.Summary{
		ID:      rec.ID,
		Names:   []string{rec.Name},
		Image:   rec.Config.Image,
		ImageID: rec.Image,
		Command: commandLine(rec),
		Created: rec.Created.Unix(),
		Ports:   portSummaries(rec),
		Labels:  maps.Clone(rec.Config.Labels), // the view is shared: hand out a copy
		State:   rec.State.Status,
		Status:  statusString(rec, time.Now()),
		Mounts:  mountPoints(rec),
	}
	sum.HostConfig.NetworkMode = string(rec.HostConfig.NetworkMode)
	sum.NetworkSettings = &container.NetworkSettingsSummary{Networks: s.networkSettings(rec)}
	if h := rec.State.Health; h != nil {
		sum.Health = &container.HealthSummary{Status: h.Status, FailingStreak: h.FailingStreak}
	}
	return sum
}

// commandLine is the COMMAND of docker ps, by dockerd's rule: the path,
// then the arguments, each one that contains a space wrapped in single
// quotes as it is (no escaping).
func commandLine(rec *Record) string {
	if len(rec.Args) == 0 {
		return rec.Path
	}
	args := make([]string, len(rec.Args))
	for i, a := range rec.Args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		args[i] = a
	}
	return rec.Path + " " + strings.Join(args, " ")
}

func portSummaries(rec *Record) []container.PortSummary {
	out := []container.PortSummary{}
	seen := map[string]bool{}
	for port, bs := range rec.Ports {
		for _, b := range bs {
			hp, _ := strconv.Atoi(b.HostPort)
			out = append(out, container.PortSummary{IP: b.HostIP, PrivatePort: port.Num(), PublicPort: uint16(hp), Type: string(port.Proto())})
		}
		if len(bs) > 0 {
			seen[port.String()] = true
		}
	}
	for port := range rec.Config.ExposedPorts {
		if !seen[port.String()] {
			out = append(out, container.PortSummary{PrivatePort: port.Num(), Type: string(port.Proto())})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PrivatePort != out[j].PrivatePort {
			return out[i].PrivatePort < out[j].PrivatePort
		}
		return out[i].IP.String() < out[j].IP.String()
	})
	return out
}

func statusString(rec *Record, now time.Time) string {
	st := rec.State
	switch st.Status {
	case container.StateRunning, container.StatePaused:
		s := "Up " + HumanDuration(now.Sub(st.StartedAt))
		if st.Status == container.StatePaused {
			return s + " (Paused)"
		}
		if h := st.Health; h != nil {
			switch h.Status {
			case container.Starting:
				s += " (health: starting)"
			case container.Healthy, container.Unhealthy:
				s += " (" + string(h.Status) + ")"
			}
		}
		return s
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, HumanDuration(now.Sub(st.FinishedAt)))
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	case container.StateExited:
		if st.FinishedAt.IsZero() {
			return "Created"
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, HumanDuration(now.Sub(st.FinishedAt)))
	default:
		return "Created"
	}
}

// HumanDuration writes a duration the way `docker ps` does.
func HumanDuration(d time.Duration) string {
	if seconds := int(d.Seconds()); seconds < 1 {
		return "Less than a second"
	} else if seconds == 1 {
		return "1 second"
	} else if seconds < 60 {
		return fmt.Sprintf("%d seconds", seconds)
	} else if minutes := int(d.Minutes()); minutes == 1 {
		return "About a minute"
	} else if minutes < 60 {
		return fmt.Sprintf("%d minutes", minutes)
	} else if hours := int(d.Hours() + 0.5); hours == 1 {
		return "About an hour"
	} else if hours < 48 {
		return fmt.Sprintf("%d hours", hours)
	} else if hours < 24*7*2 {
		return fmt.Sprintf("%d days", hours/24)
	} else if hours < 24*30*2 {
		return fmt.Sprintf("%d weeks", hours/24/7)
	} else if hours < 24*365*2 {
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

func cloneHealth(h *container.Health) *container.Health {
	if h == nil {
		return nil
	}
	c := *h
	c.Log = append([]*container.HealthcheckResult(nil), h.Log...)
	return &c
}
