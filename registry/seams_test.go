package registry_test

import (
	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/registry"
	"github.com/berthd/berth/runtime"
)

// The image service is, as it is, what its consumers declare they need:
// berthd hands it over without an adapter.
var (
	_ runtime.Images       = (*registry.Service)(nil)
	_ compose.ImagePuller  = (*registry.Service)(nil)
	_ compose.ImageService = (*registry.Service)(nil)
)
