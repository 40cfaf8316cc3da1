package ipam

import (
	"fmt"
	"net/netip"

	"github.com/containerd/errdefs"
)

// Subnet hands out the addresses of one network. Addresses are given in
// order after the last one handed out, wrapping around, so a released
// address is not reused at once (stale ARP and DNS caches of peers point at
// it for a while). Not safe for concurrent use: the network package
// serialises calls.
type Subnet struct {
	prefix  netip.Prefix
	lo, hi  uint32 // the allocatable range, inclusive (IPRange or the subnet's hosts)
	gateway netip.Addr
	used    map[netip.Addr]bool
	cursor  uint32
}

// NewSubnet checks a network's IPAM configuration and returns its allocator.
// ipRange is optional (the zero Prefix means the whole subnet); gateway must
// lie in the subnet and is never handed out.
func NewSubnet(prefix, ipRange netip.Prefix, gateway netip.Addr) (*Subnet, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() {
		return nil, fmt.Errorf("invalid subnet %s: %w", prefix, errdefs.ErrInvalidArgument)
	}
	if prefix.Bits() > 30 {
		return nil, fmt.Errorf("invalid subnet %s: a bridge network needs at least a /30: %w", prefix, errdefs.ErrInvalidArgument)
	}
	if !gateway.IsValid() || !prefix.Contains(gateway) {
		return nil, fmt.Errorf("invalid gateway %s: it does not belong to subnet %s: %w", gateway, prefix, errdefs.ErrInvalidArgument)
	}
	s := &Subnet{prefix: prefix, gateway: gateway, used: map[netip.Addr]bool{}}
	net := v4(prefix.Addr())
	bcast := net + (uint32(1) << (32 - prefix.Bits())) - 1
	s.lo, s.hi = net+1, bcast-1
	if ipRange.IsValid() {
		if !ipRange.Addr().Is4() || ipRange.Bits() < prefix.Bits() || !prefix.Contains(ipRange.Addr()) {
			return nil, fmt.Errorf("invalid ip-range %s: it does not belong to subnet %s: %w", ipRange, prefix, errdefs.ErrInvalidArgument)
		}
		rlo := v4(ipRange.Addr())
		rhi := rlo + (uint32(1) << (32 - ipRange.Bits())) - 1
		s.lo, s.hi = max(rlo, s.lo), min(rhi, s.hi)
	}
	s.cursor = s.lo - 1
	return s, nil
}

// Prefix is the subnet.
func (s *Subnet) Prefix() netip.Prefix { return s.prefix }

// Gateway is the bridge's address.
func (s *Subnet) Gateway() netip.Addr { return s.gateway }

// Allocate returns want when it is valid (in the subnet, not the network,
// broadcast or gateway address, not in use) or, when want is the zero Addr,
// the next free address of the range.
// A static address in use is ErrConflict ("Address already in use"); one
// outside the subnet is ErrInvalidArgument; a full range is
// ErrResourceExhausted.
func (s *Subnet) Allocate(want netip.Addr) (netip.Addr, error) {
	if want.IsValid() {
		if err := s.checkStatic(want); err != nil {
			return netip.Addr{}, err
		}
		s.used[want] = true
		return want, nil
	}
	n := s.hi - s.lo + 1
	c := s.cursor
	for i := uint32(0); i < n; i++ {
		c++
		if c > s.hi || c < s.lo {
			c = s.lo
		}
		a := fromV4(c)
		if a == s.gateway || s.used[a] {
			continue
		}
		s.used[a] = true
		s.cursor = c
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("no available IPv4 addresses on this network's address pools (%s): %w", s.prefix, errdefs.ErrResourceExhausted)
}

func (s *Subnet) checkStatic(a netip.Addr) error {
	if !a.Is4() || !s.prefix.Contains(a) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid IP address %s: It does not belong to any of this network's subnets", a))
	}
	u := v4(a)
	net := v4(s.prefix.Addr())
	bcast := net + (uint32(1) << (32 - s.prefix.Bits())) - 1
	if u == net || u == bcast || a == s.gateway || s.used[a] {
		return errdefs.ErrConflict.WithMessage("Address already in use")
	}
	return nil
}

// Reserve marks a as used (restoring state from the store); it does not
// check the range, so a record written under other rules still counts.
func (s *Subnet) Reserve(a netip.Addr) { s.used[a] = true }

// Release frees a; releasing a free address is a no-op.
func (s *Subnet) Release(a netip.Addr) { delete(s.used, a) }

// InUse is the number of addresses handed out.
func (s *Subnet) InUse() int { return len(s.used) }
