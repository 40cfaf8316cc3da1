package runtime

import "context"

// restoreNetwork re-registers a running container's endpoints, ports and
// DNS records with the network layer after a daemon restart; call with
// c.mu held.
func (s *Service) restoreNetwork(ctx context.Context, c *ctr) error {
	rec := c.rec
	if rec.SandboxKey == "" {
		return nil
	}
	return s.d.Networks.Restore(ctx, RestoreRequest{
		ContainerID: rec.ID, ContainerName: rec.Name[1:], NSPath: rec.SandboxKey,
		Endpoints: rec.Endpoints, Ports: rec.Ports, Labels: rec.Config.Labels, Hostname: rec.Config.Hostname,
	})
}
