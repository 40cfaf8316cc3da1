package buildkit_test

import (
	"github.com/berthd/berth/builder/buildkit"
	"github.com/berthd/berth/network"
)

// RUN steps get their namespaces from the network manager, without an
// adapter.
var _ buildkit.Sandboxes = network.BuildSandboxes{}
