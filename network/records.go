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
}

// endpointRecord is one container on one network ("endpoints" table, by
// <network id>/<container id>).
type endpointRecord struct {
	ID            string
	NetworkID     string
	ContainerID   string
	ContainerName string
	Hostname      string
	Aliases       []string
	IP            netip.Addr
	Static        bool
	MAC           string
	IfName        string // inside the sandbox: eth0, eth1, ...
	HostVeth      string
	NsPath        string
	Primary       bool
	Labels        map[string]string
	Links         map[string]string
	DNS           []netip.Addr // the container's own resolvers (--dns)
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
