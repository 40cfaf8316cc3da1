package containers

import (
	"fmt"
	"net"

	"github.com/berthd/berth/engine/compat"
	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// createBody is the create request as clients send it, with the
// container-wide Config.MacAddress that API < 1.44 clients (docker-py's
// mac_address among them) still send and the api module no longer has.
type createBody struct {
	container.CreateRequest
	MacAddress string `json:",omitempty"`
}

// containerWideMAC moves the container-wide MAC address to the endpoint of
// the NetworkMode network, as dockerd does; before API 1.44 an endpoint's
// own MacAddress is ignored. From 1.44 on both may be given if they agree,
// and the answer carries dockerd's deprecation warning. Errors are
// ErrInvalidArgument, in dockerd's words.
func containerWideMAC(mac string, hc *container.HostConfig, nc *network.NetworkingConfig, version string) (warning string, err error) {
	old := compat.EndpointMACIgnored(version)
	if mac == "" {
		if old {
			for _, ep := range nc.EndpointsConfig {
				if ep != nil {
					ep.MacAddress = nil
				}
			}
		}
		return "", nil
	}
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid MAC address: %s", mac))
	}
	if hc.NetworkMode == "" || hc.NetworkMode.IsDefault() {
		hc.NetworkMode = network.NetworkBridge
		if ep, ok := nc.EndpointsConfig[network.NetworkDefault]; ok {
			nc.EndpointsConfig[network.NetworkBridge] = ep
			delete(nc.EndpointsConfig, network.NetworkDefault)
		}
	}
	if !hc.NetworkMode.IsBridge() && !hc.NetworkMode.IsUserDefined() {
		if old {
			return "", errdefs.ErrInvalidArgument.WithMessage("conflicting options: mac-address and the network mode")
		}
		return deprecatedMAC, nil
	}
	ep, err := endpointForNetworkMode(hc.NetworkMode, nc, old)
	if err != nil {
		if old {
			return "", err
		}
		return "", errclass.Wrap(errdefs.ErrInvalidArgument, "unable to migrate container-wide MAC address to a specific network", err)
	}
	switch {
	case old || len(ep.MacAddress) == 0:
		ep.MacAddress = network.HardwareAddr(hw)
	case net.HardwareAddr(ep.MacAddress).String() != hw.String():
		return "", errdefs.ErrInvalidArgument.WithMessage("the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty")
	}
	if old {
		return "", nil
	}
	return deprecatedMAC, nil
}

const deprecatedMAC = "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead."

// endpointForNetworkMode is the endpoint config of the NetworkMode network,
// made when there is none; with other endpoints keyed otherwise it cannot
// be told apart (dockerd refuses, except for old clients, which send one).
func endpointForNetworkMode(mode container.NetworkMode, nc *network.NetworkingConfig, old bool) (*network.EndpointSettings, error) {
	name := mode.NetworkName()
	if len(nc.EndpointsConfig) == 0 {
		ep := &network.EndpointSettings{}
		nc.EndpointsConfig = map[string]*network.EndpointSettings{name: ep}
		return ep, nil
	}
	if old {
		for k, ep := range nc.EndpointsConfig {
			if ep == nil {
				ep = &network.EndpointSettings{}
				nc.EndpointsConfig[k] = ep
			}
			return ep, nil
		}
	}
	ep, ok := nc.EndpointsConfig[name]
	if !ok {
		return nil, errdefs.ErrInvalidArgument.WithMessage("HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks")
	}
	if ep == nil {
		ep = &network.EndpointSettings{}
		nc.EndpointsConfig[name] = ep
	}
	return ep, nil
}
