package network

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// dumpTries is how often an interrupted netlink dump is asked again.
const dumpTries = 5

// redump runs a netlink dump until the kernel does not interrupt it. A dump
// is interrupted (netlink.ErrDumpInterrupted, with partial results) when the
// table changes meanwhile; on a host where other daemons' links, addresses
// and routes come and go that happens often enough to fail container
// starts ("results may be incomplete or inconsistent").
func redump[T any](dump func() ([]T, error)) ([]T, error) {
	var (
		out []T
		err error
	)
	for range dumpTries {
		if out, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return nil, err
}
