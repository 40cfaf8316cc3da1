package images

import "github.com/berthd/berth/registry"

var _ Backend = (*registry.Service)(nil)
