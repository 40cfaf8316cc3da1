// Package endpoint declares, once, the requests a container's runtime makes
// of the network layer: attach a container to a network, restore a running
// container's network state after a daemon restart, and a network's
// identity. network implements them (*network.Manager); runtime consumes
// them through its own Networks interface. It is a leaf: it imports nothing
// of berth, so the runtime does not link netlink or iptables to name them.
package endpoint

import (
	"net/netip"

	"github.com/moby/moby/api/types/network"
)

// AttachRequest says which container joins which network, and how.
type AttachRequest struct {
	ContainerID   string
	ContainerName string // without the leading "/"
	Hostname      string
	// Network is a network's id, name or unique id prefix.
	Network string
	// Aliases are the network-scoped DNS aliases (--network-alias).
	Aliases []string
	// IPv4 is a static address (IPAMConfig.IPv4Address); zero picks one.
	IPv4 netip.Addr
	// IPv6 is a static IPv6 address (IPAMConfig.IPv6Address); zero picks
	// one on a network with IPv6.
	IPv6 netip.Addr
	// MAC is the interface's address ("02:42:0a:d2:00:02"); "" derives one
	// from the IP. A malformed one is ErrInvalidArgument.
	MAC string
	// Labels are the container's labels (DNS plugins such as compose
	// scoping read them).
	Labels map[string]string
	// Primary gives the container its default route through this network
	// (unless it is internal) and makes its gateway the resolv.conf
	// nameserver.
	Primary bool
	// Links maps the container's link aliases to the linked containers'
	// names (--link, compose links:): names only this container resolves.
	Links map[string]string
	// DNS are the container's own resolvers (HostConfig.Dns): berth's DNS
	// server forwards what it does not know there instead of to the
	// daemon's upstreams.
	DNS []netip.Addr
	// DriverOpts are the endpoint's driver options; berth reads
	// com.docker.network.endpoint.ifname (compose interface_name), the
	// interface's name in the container.
	DriverOpts map[string]string
}

// RestoreRequest describes a container that kept running across a daemon
// restart, as the runtime recorded it.
type RestoreRequest struct {
	ContainerID   string
	ContainerName string // without "/"
	Hostname      string
	NSPath        string
	// Endpoints are the container's NetworkSettings.Networks (by network
	// name); they rebuild an endpoint the store lost.
	Endpoints map[string]*network.EndpointSettings
	// Ports are the published ports as reported (NetworkSettings.Ports).
	Ports  network.PortMap
	Labels map[string]string
}

// NetworkRef is a network's identity.
type NetworkRef struct {
	ID, Name string
}
