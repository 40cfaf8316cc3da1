package main

import (
	"context"

	"github.com/berthd/berth/inventory"
	"github.com/berthd/berth/network"
)

// netInventory lets the network manager answer the daemon's inventory.
type netInventory struct{ m *network.Manager }

var _ inventory.Network = netInventory{}

func (n netInventory) State(ctx context.Context) (*inventory.NetworkState, error) {
	inv, err := n.m.Inventory(ctx)
	if err != nil {
		return nil, err
	}
	return &inventory.NetworkState{
		Bridges: inv.Bridges, Veths: inv.Veths, Netns: inv.Netns, Rules: inv.Rules, Ports: inv.Ports,
		Endpoints: inv.Endpoints, DNSRecords: inv.Records, Addresses: n.m.AllocatedAddresses(),
	}, nil
}
