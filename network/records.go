package network

import (
	"net/netip"
	"time"
)

// netRecord is one network in the store ("networks" table, by id).
type netRecord struct {
	ID         string
	Name       string
	Created    time.Time
	Driver     string // bridge, host or null
	Bridge     string // the bridge device
	Subnet     netip.Prefix
	Gateway    netip.Addr
	IPRange    netip.Prefix
	Internal   bool
	Attachable bool
	Predefined bool // bridge, host, none: never removed
	// UserSubnet is set when the subnet came from the create request (it is
	// then shown in IPAM.Config as given, with IPRange).
	UserSubnet bool
	// AuxAddresses are IPAM's auxiliary addresses (--aux-address): reserved
	// in the subnet, never handed to a container.
	AuxAddresses map[string]netip.Addr `json:",omitempty"`
	Labels       map[string]string
	Options      map[string]string
	// IPAMOptions are IPAM's options as the create request gave them (nil
	// shows as null, as from dockerd).
	IPAMOptions map[string]string
	// NoIPv4 marks an IPv6-only network (EnableIPv4 false): Subnet,
	// Gateway, IPRange and AuxAddresses are then zero. Records written
	// before IPv6 have it false, as their networks have IPv4.
	NoIPv4 bool `json:",omitempty"`
	// IPv6 is the network's IPv6 configuration; nil when IPv6 is off.
	IPv6 *ipamRecord `json:",omitempty"`
}

// ipamRecord is one family's IPAM configuration of a network (IPv4's is
// spelt out in netRecord, which had it before IPv6).
type ipamRecord struct {
	Subnet  netip.Prefix
	Gateway netip.Addr
	IPRange netip.Prefix `json:",omitzero"`
	// UserSubnet: the subnet came from the create request (--subnet, or
	// --fixed-cidr-v6 for the default bridge).
	UserSubnet   bool                  `json:",omitempty"`
	AuxAddresses map[string]netip.Addr `json:",omitempty"`
}

// hasIPv4 reports whether the network has IPv4 addresses (a bridge that
// is not IPv6-only).
func (r *netRecord) hasIPv4() bool { return r.Driver == "bridge" && !r.NoIPv4 }

// endpointRecord is one container on one network ("endpoints" table, by
// <network id>/<container id>).
type endpointRecord struct {
	ID            string
	NetworkID     string
	ContainerID   string
	ContainerName string
	Hostname      string
	Aliases       []string
	IP            netip.Addr // zero on an IPv6-only network
	Static        bool
	// IPv6 is the endpoint's IPv6 address, zero on a network without IPv6;
	// Static6 says it was asked for (IPAMConfig.IPv6Address).
	IPv6    netip.Addr `json:",omitzero"`
	Static6 bool       `json:",omitempty"`
	// Gateway6 says the container's IPv6 default route goes through this
	// endpoint (Primary says it for IPv4; the two families pick their
	// gateway apart, as dockerd does).
	Gateway6 bool `json:",omitempty"`
	MAC      string
	IfName   string // inside the sandbox: eth0, eth1, ...
	HostVeth string
	NsPath   string
	Primary  bool
	Labels   map[string]string
	Links    map[string]string
	DNS      []netip.Addr // the container's own resolvers (--dns)
}

func epKey(networkID, containerID string) string { return networkID + "/" + containerID }

// portsRecord is what one container publishes ("ports" table, by container id).
type portsRecord struct {
	ContainerID string
	Ports       []portRecord
}

type portRecord struct {
	HostIP        netip.Addr
	HostPort      uint16
	Proto         string
	ContainerIP   netip.Addr
	ContainerPort uint16
	Bridge        string
}
