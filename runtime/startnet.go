package runtime

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"

	"github.com/berthd/berth/internal/safe"
)

// The network part of a container's start.

// startNetwork creates the container's network namespace (the spec needs
// its path) and starts attaching its networks and publishing its ports in
// the background, beside the OCI runtime's create: they need only the
// namespace, and the container's process runs after both. It returns the
// namespace path ("" for the host's) and the attach in flight; join it
// before reading rec.Endpoints or rec.Ports, and before undoing.
func (s *Service) startNetwork(ctx context.Context, c *ctr, u *undo) (string, *netSetup, error) {
	rec := c.rec
	mode := string(rec.HostConfig.NetworkMode)
	rec.Endpoints, rec.Ports = map[string]*network.EndpointSettings{}, nil
	none := &netSetup{}
	switch {
	case mode == "host":
		rec.Endpoints["host"] = &network.EndpointSettings{}
		return "", none, nil
	case strings.HasPrefix(mode, "container:"):
		other, err := s.lookup(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return "", nil, err
		}
		if other == c {
			return "", nil, errdefs.ErrInvalidArgument.WithMessage("cannot join own network namespace")
		}
		other.mu.Lock()
		key, running, name, status := other.rec.SandboxKey, other.running(), other.rec.Name, other.rec.State.Status
		other.mu.Unlock()
		if !running || key == "" {
			return "", nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot join network namespace of a non running container: container %s is %s", strings.TrimPrefix(name, "/"), status))
		}
		return key, none, nil
	}
	nsPath, err := s.d.Networks.CreateSandbox(ctx, rec.ID)
	if err != nil {
		return "", nil, err
	}
	u.add(func() { s.logErr(s.d.Networks.DeleteSandbox(ctx, rec.ID), "delete sandbox") })
	if mode == "none" {
		rec.Endpoints["none"] = &network.EndpointSettings{}
		return nsPath, none, nil
	}
	primary, ok := s.primaryNetwork(rec)
	if !ok {
		return nsPath, none, nil
	}
	n := &netSetup{done: make(chan struct{}), endpoints: map[string]*network.EndpointSettings{}}
	go func() {
		defer close(n.done)
		// a bug in a step fails the start, undone, as in startLocked
		defer func() {
			if v := recover(); v != nil {
				safe.Log("the network set-up of container "+rec.ID[:12], v)
				n.err = fmt.Errorf("internal error attaching container %s to its networks: %v", rec.ID[:12], v)
			}
		}()
		n.err = s.attachNetworks(ctx, c, nsPath, primary, n)
	}()
	return nsPath, n, nil
}

// netSetup is a container's network attach in flight (startNetwork). Its
// goroutine writes only its own fields; join hands them over.
type netSetup struct {
	done      chan struct{} // nil: nothing was started
	endpoints map[string]*network.EndpointSettings
	ports     network.PortMap
	undo      undo
	err       error
	joined    bool
}

// pending says whether an attach was started and not joined yet.
func (n *netSetup) pending() bool { return n.done != nil && !n.joined }

// join waits for the attach, then gives its endpoints and ports to rec and
// its cleanups to u (after everything u holds, so they run first). Only
// the first call waits and returns the attach's error.
func (n *netSetup) join(rec *Record, u *undo) error {
	if !n.pending() {
		return nil
	}
	<-n.done
	n.joined = true
	*u = append(*u, n.undo...)
	for name, ep := range n.endpoints {
		rec.Endpoints[name] = ep
	}
	rec.Ports = n.ports
	return n.err
}

// attachNetworks attaches the container to its networks, the primary
// first, and publishes its ports on the primary's address.
func (s *Service) attachNetworks(ctx context.Context, c *ctr, nsPath, primary string, n *netSetup) error {
	rec := c.rec
	for _, name := range attachOrder(rec.Networks, primary) {
		ep, err := s.attach(ctx, c, nsPath, name, name == primary)
		if err != nil {
			return err
		}
		n.undo.add(func() { s.logErr(s.d.Networks.Detach(ctx, rec.ID, name), "detach") })
		n.endpoints[name] = ep
	}
	if ep := n.endpoints[primary]; ep != nil && (len(rec.HostConfig.PortBindings) > 0 || rec.HostConfig.PublishAllPorts) {
		ip := ep.IPAddress
		if !ip.IsValid() {
			ip = ep.GlobalIPv6Address // an IPv6-only network
		}
		ports, err := s.d.Networks.PublishPorts(ctx, rec.ID, ip, rec.HostConfig.PortBindings, rec.HostConfig.PublishAllPorts, rec.Config.ExposedPorts)
		if err != nil {
			return err
		}
		n.undo.add(func() { s.logErr(s.d.Networks.UnpublishPorts(ctx, rec.ID), "unpublish ports") })
		n.ports = ports
	}
	return nil
}

func (s *Service) attach(ctx context.Context, c *ctr, nsPath, name string, primary bool) (*network.EndpointSettings, error) {
	rec := c.rec
	want := rec.Networks[name]
	req := AttachRequest{
		ContainerID: rec.ID, ContainerName: strings.TrimPrefix(rec.Name, "/"), Hostname: rec.Config.Hostname,
		Network: name, Labels: rec.Config.Labels, Primary: primary, DNS: rec.HostConfig.DNS,
	}
	links := parseLinks(rec.HostConfig.Links)
	if want != nil {
		req.Aliases = append(req.Aliases, want.Aliases...)
		for alias, target := range parseLinks(want.Links) {
			links[alias] = target
		}
		if want.IPAMConfig != nil {
			req.IPv4, req.IPv6 = want.IPAMConfig.IPv4Address, want.IPAMConfig.IPv6Address
		}
		req.MAC = want.MacAddress.String()
		req.DriverOpts = want.DriverOpts
	}
	if len(links) > 0 {
		req.Links = links
	}
	ep, err := s.d.Networks.Attach(ctx, nsPath, req)
	if err != nil {
		return nil, err
	}
	if want != nil {
		ep.IPAMConfig = want.IPAMConfig
		ep.Links = want.Links
		ep.DriverOpts = want.DriverOpts
		if len(ep.Aliases) == 0 {
			ep.Aliases = want.Aliases
		}
	}
	return ep, nil
}

// primaryNetwork is the network of NetworkMode, or the first by name.
func (s *Service) primaryNetwork(rec *Record) (string, bool) {
	mode := string(rec.HostConfig.NetworkMode)
	if _, ok := rec.Networks[mode]; ok {
		return mode, true
	}
	names := make([]string, 0, len(rec.Networks))
	for n := range rec.Networks {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "", false
	}
	sort.Strings(names)
	return names[0], true
}

func attachOrder(nets map[string]*network.EndpointSettings, primary string) []string {
	out := []string{primary}
	rest := make([]string, 0, len(nets))
	for n := range nets {
		if n != primary {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}
