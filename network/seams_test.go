package network_test

import (
	"github.com/berthd/berth/inventory"
	"github.com/berthd/berth/network"
	"github.com/berthd/berth/runtime"
)

// The network manager is, as it is, what its consumers declare they need:
// berthd hands it over without an adapter (the request types are declared
// once, in network/endpoint).
var (
	_ runtime.Networks  = (*network.Manager)(nil)
	_ inventory.Network = (*network.Manager)(nil)
)
