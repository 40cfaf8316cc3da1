package networks

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/internal/filters"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

func (r *Router) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.Parse(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	nets, err := r.backend.Networks(ctx, f)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, nets)
}

func (r *Router) inspect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	// verbose and scope only matter for swarm networks
	n, err := r.backend.InspectNetwork(ctx, vars["id"])
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, n)
}

// createBody is network.CreateRequest with the IPAM addresses as strings,
// so that a bad CIDR gets dockerd's message rather than a JSON error.
type createBody struct {
	network.CreateRequest
	CheckDuplicate *bool `json:",omitempty"` // removed in API 1.44; always on
	IPAM           *struct {
		Driver  string
		Options map[string]string
		Config  []struct {
			Subnet     string
			IPRange    string
			Gateway    string
			AuxAddress map[string]string `json:"AuxiliaryAddresses"`
		}
	}
}

func (r *Router) create(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	var body createBody
	if err := httputil.ReadJSON(req, &body, false); err != nil {
		return err
	}
	cr, err := body.toRequest()
	if err != nil {
		return err
	}
	resp, err := r.backend.CreateNetwork(ctx, cr)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusCreated, resp)
}

func (b *createBody) toRequest() (network.CreateRequest, error) {
	cr := b.CreateRequest
	cr.IPAM = nil
	if b.IPAM == nil {
		return cr, nil
	}
	cr.IPAM = &network.IPAM{Driver: b.IPAM.Driver, Options: b.IPAM.Options}
	for _, c := range b.IPAM.Config {
		var out network.IPAMConfig
		var err error
		if out.Subnet, err = parseCIDR(c.Subnet); err != nil {
			return cr, err
		}
		if out.IPRange, err = parseCIDR(c.IPRange); err != nil {
			return cr, err
		}
		if c.Gateway != "" {
			// older clients send "10.0.0.1/24"
			g, _, _ := strings.Cut(c.Gateway, "/")
			if out.Gateway, err = netip.ParseAddr(g); err != nil {
				return cr, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid gateway address %s", c.Gateway))
			}
		}
		for k, v := range c.AuxAddress {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return cr, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("non parsable secondary ip address (%s:%s) passed for network %s", k, v, b.Name))
			}
			if out.AuxAddress == nil {
				out.AuxAddress = map[string]netip.Addr{}
			}
			out.AuxAddress[k] = a
		}
		cr.IPAM.Config = append(cr.IPAM.Config, out)
	}
	return cr, nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid CIDR address: %s", s))
	}
	return p, nil
}

func (r *Router) remove(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := r.backend.RemoveNetwork(ctx, vars["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.Parse(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	rep, err := r.backend.PruneNetworks(ctx, f)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, rep)
}

func (r *Router) connect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body network.ConnectRequest
	if err := httputil.ReadJSON(req, &body, false); err != nil {
		return err
	}
	if body.Container == "" {
		return errdefs.ErrInvalidArgument.WithMessage("no container specified")
	}
	if err := r.containers.ConnectContainer(ctx, vars["id"], body.Container, body.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *Router) disconnect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body network.DisconnectRequest
	if err := httputil.ReadJSON(req, &body, false); err != nil {
		return err
	}
	if body.Container == "" {
		return errdefs.ErrInvalidArgument.WithMessage("no container specified")
	}
	if err := r.containers.DisconnectContainer(ctx, vars["id"], body.Container, body.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
