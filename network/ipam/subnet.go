package ipam

import (
	"fmt"
	"net/netip"

	"github.com/containerd/errdefs"
)

// Subnet hands out the addresses of one network's subnet of one family.
// Addresses are given in order after the last one handed out, wrapping
// around, so a released address is not reused at once (stale ARP/neighbour
// and DNS caches of peers point at it for a while). As in dockerd, the
// network address is never handed out, nor, for IPv4, the broadcast
// address; the last address of an IPv6 subnet is an ordinary one. Not safe
// for concurrent use: the network package serialises calls.
type Subnet struct {
	prefix  netip.Prefix
	v4      bool
	lo, hi  u128 // the allocatable range, inclusive (IPRange or the subnet's hosts)
	gateway netip.Addr
	used    map[netip.Addr]bool
	cursor  u128
}

// NewSubnet checks a network's IPAM configuration and returns its allocator.
// ipRange is optional (the zero Prefix means the whole subnet); gateway must
// lie in the subnet and is never handed out. All three are of one family.
func NewSubnet(prefix, ipRange netip.Prefix, gateway netip.Addr) (*Subnet, error) {
	if !prefix.IsValid() || prefix.Addr().Is4In6() || prefix.Addr().Zone() != "" {
		return nil, fmt.Errorf("invalid subnet %s: %w", prefix, errdefs.ErrInvalidArgument)
	}
	v4 := prefix.Addr().Is4()
	if most := maxBits(!v4); prefix.Bits() > most {
		return nil, fmt.Errorf("invalid subnet %s: a bridge network needs at least a /%d: %w", prefix, most, errdefs.ErrInvalidArgument)
	}
	if !gateway.IsValid() || !prefix.Contains(gateway) {
		return nil, fmt.Errorf("invalid gateway %s: it does not belong to subnet %s: %w", gateway, prefix, errdefs.ErrInvalidArgument)
	}
	s := &Subnet{prefix: prefix, v4: v4, gateway: gateway, used: map[netip.Addr]bool{}}
	s.lo, s.hi = toU128(prefix.Masked().Addr()).add(one), lastAddr(prefix)
	if v4 {
		s.hi = s.hi.sub(one) // broadcast
	}
	if ipRange.IsValid() {
		if ipRange.Addr().Is4() != v4 || ipRange.Bits() < prefix.Bits() || !prefix.Contains(ipRange.Addr()) {
			return nil, fmt.Errorf("invalid ip-range %s: it does not belong to subnet %s: %w", ipRange, prefix, errdefs.ErrInvalidArgument)
		}
		rlo, rhi := toU128(ipRange.Masked().Addr()), lastAddr(ipRange)
		if rlo.cmp(s.lo) > 0 {
			s.lo = rlo
		}
		if rhi.cmp(s.hi) < 0 {
			s.hi = rhi
		}
	}
	s.cursor = s.lo.sub(one)
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
	// Walking from the cursor, a free address turns up within the used
	// ones plus the gateway plus one, when the range has that many: the
	// loop is short even in a /64.
	n := s.hi.sub(s.lo).add(one).saturate()
	if s.lo.cmp(s.hi) > 0 {
		n = 0
	}
	n = min(n, uint64(len(s.used))+2)
	c := s.cursor
	for i := uint64(0); i < n; i++ {
		c = c.add(one)
		if c.cmp(s.hi) > 0 || c.cmp(s.lo) < 0 {
			c = s.lo
		}
		a := c.addr(s.v4)
		if a == s.gateway || s.used[a] {
			continue
		}
		s.used[a] = true
		s.cursor = c
		return a, nil
	}
	fam := "IPv6"
	if s.v4 {
		fam = "IPv4"
	}
	return netip.Addr{}, fmt.Errorf("no available %s addresses on this network's address pools (%s): %w", fam, s.prefix, errdefs.ErrResourceExhausted)
}

func (s *Subnet) checkStatic(a netip.Addr) error {
	if a.Is4() != s.v4 || a.Zone() != "" || !s.prefix.Contains(a) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid IP address %s: It does not belong to any of this network's subnets", a))
	}
	u := toU128(a)
	network := toU128(s.prefix.Masked().Addr())
	broadcast := s.v4 && u.cmp(lastAddr(s.prefix)) == 0
	if u.cmp(network) == 0 || broadcast || a == s.gateway || s.used[a] {
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
