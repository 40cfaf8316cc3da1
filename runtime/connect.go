package runtime

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// ConnectContainer joins a container to a network: at once when it runs,
// at its next start otherwise.
func (s *Service) ConnectContainer(ctx context.Context, netIDOrName, name string, cfg *network.EndpointSettings) error {
	if err := s.restored(ctx); err != nil {
		return err
	}
	c, err := s.lookup(name)
	if err != nil {
		return err
	}
	ref, err := s.d.Networks.Network(ctx, netIDOrName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.rec
	mode := string(rec.HostConfig.NetworkMode)
	switch {
	case mode == "host" || ref.Name == "host":
		return errdefs.ErrPermissionDenied.WithMessage("container cannot be disconnected from host network or connected to host network")
	case mode == "none" || ref.Name == "none":
		return errdefs.ErrPermissionDenied.WithMessage("container cannot be connected to multiple networks with one of the networks in private (none) mode")
	case isContainerMode(mode):
		return errdefs.ErrPermissionDenied.WithMessage("conflicting options: container cannot be connected to a network when it shares the network of another container")
	}
	if _, ok := rec.Networks[ref.Name]; ok {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("endpoint with name %s already exists in network %s", strings.TrimPrefix(rec.Name, "/"), ref.Name))
	}
	ep := &network.EndpointSettings{}
	if cfg != nil {
		ep = cfg.Copy()
	}
	ep.NetworkID = ref.ID
	if rec.Networks == nil {
		rec.Networks = map[string]*network.EndpointSettings{}
	}
	rec.Networks[ref.Name] = ep
	if c.task != nil && rec.SandboxKey != "" {
		live, err := s.attach(ctx, c, rec.SandboxKey, ref.Name, false)
		if err != nil {
			delete(rec.Networks, ref.Name)
			return err
		}
		if rec.Endpoints == nil {
			rec.Endpoints = map[string]*network.EndpointSettings{}
		}
		rec.Endpoints[ref.Name] = live
		// the nameserver may have been the gateway of a network the
		// container has left
		s.logErr(s.refreshResolvConf(rec), "rewrite resolv.conf")
	}
	if err := s.save(c); err != nil {
		return err
	}
	c.notify()
	return nil
}

// DisconnectContainer takes a container off a network. A container that
// is not on it is an error, with force too (dockerd's 500); force lets a
// container leave a network that was removed meanwhile.
func (s *Service) DisconnectContainer(ctx context.Context, netIDOrName, name string, force bool) error {
	if err := s.restored(ctx); err != nil {
		return err
	}
	c, err := s.lookup(name)
	if err != nil {
		return err
	}
	ref, err := s.d.Networks.Network(ctx, netIDOrName)
	if err != nil && !(force && errdefs.IsNotFound(err)) {
		return err
	}
	if err != nil {
		ref = NetworkRef{Name: netIDOrName}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.rec
	if ref.Name == "host" || string(rec.HostConfig.NetworkMode) == "host" {
		return errdefs.ErrPermissionDenied.WithMessage("container cannot be disconnected from host network or connected to host network")
	}
	if _, ok := rec.Networks[ref.Name]; !ok {
		// dockerd's words and status (500), force or not: force only
		// lets a container leave a network that no longer exists
		if c.task == nil || ref.ID == "" {
			return errdefs.ErrInternal.WithMessage(fmt.Sprintf("container %s is not connected to the network %s", rec.ID, ref.Name))
		}
		return errdefs.ErrInternal.WithMessage(fmt.Sprintf("container %s is not connected to network %s", rec.ID, ref.Name))
	}
	_, live := rec.Endpoints[ref.Name]
	live = live && c.task != nil
	if live {
		if err := s.d.Networks.Detach(ctx, rec.ID, ref.Name); err != nil && !force {
			return err
		}
		delete(rec.Endpoints, ref.Name)
	}
	// NetworkMode stays as it was, as in dockerd: the next start uses the
	// remaining networks
	delete(rec.Networks, ref.Name)
	if live {
		// the nameserver may have been this network's gateway
		s.logErr(s.refreshResolvConf(rec), "rewrite resolv.conf")
	}
	if err := s.save(c); err != nil {
		return err
	}
	c.notify()
	return nil
}
